"""Moment retrieval metrics of Charades-STA and ActivityNet Captions: R1@{0.3,0.5,0.7}, R5@{0.5,0.7}, mIoU.

``R1@t``: the first predicted window (list order, best first) has IoU >= t with a ground-truth
window; ``R5@t``: one of the first five does; ``mIoU``: the mean IoU of the first window. The IoU of
a prediction is its best IoU over the query's ground-truth windows. All in percent, 2 decimals.

Ground-truth windows ending past the video's duration by at most ``clip_tolerance`` seconds
(``WINDOW_END_TOLERANCE``: 5 ActivityNet val windows end 0.01 s past, a rounding in the release) are
clipped to the duration with a warning that counts them; a window further past, or starting before
0 s, is an error.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from transformers_rdmf.metrics.inputs import (
    WINDOW_END_TOLERANCE,
    Records,
    align_by_qid,
    as_records,
    ragged_numbers,
    require_ordered_windows,
    require_windows_in_video,
)
from transformers_rdmf.metrics.windows import pad_ragged, temporal_iou_cross, to_percent

__all__ = ["R1_THRESHOLDS", "R5_THRESHOLDS", "evaluate_moment_retrieval", "top_k_iou"]

R1_THRESHOLDS = (0.3, 0.5, 0.7)
R5_THRESHOLDS = (0.5, 0.7)
TOP_K = 5

PathOrRows = Records | str | os.PathLike | Sequence[Mapping]


def top_k_iou(pred_windows: np.ndarray, gt_windows: np.ndarray, gt_valid: np.ndarray) -> np.ndarray:
    """Best IoU of each predicted window over the query's ground-truth windows.

    Args:
        pred_windows: ``(Q, K, 2)``; gt_windows: ``(Q, G, 2)``; gt_valid: ``(Q, G)``.

    Returns:
        ``(Q, K)`` IoU in [0, 1].
    """
    iou = temporal_iou_cross(pred_windows, gt_windows)
    return np.where(gt_valid[:, None, :], iou, 0.0).max(axis=-1)


def clip_to_duration(
    references: Records, windows: np.ndarray, counts: np.ndarray, tolerance: float
) -> np.ndarray:
    """Clip ground-truth ends past the duration by at most ``tolerance``; ``(N, 2)`` windows of all rows.
    A window starting before 0 s or ending further past is an error (`require_windows_in_video`)."""
    duration = require_windows_in_video(references, "relevant_windows", windows, counts, tolerance)
    overshoot = windows[:, 1] - duration
    clipped = overshoot > 0
    if clipped.any():
        warnings.warn(
            f"{references.source}: clipped {int(clipped.sum())} ground-truth window(s) ending at most "
            f"{tolerance} s past the video's duration",
            stacklevel=3,
        )
        windows = windows.copy()
        windows[clipped, 1] = duration[clipped]
    return windows


def evaluate_moment_retrieval(
    predictions: PathOrRows, references: PathOrRows, clip_tolerance: float = WINDOW_END_TOLERANCE
) -> dict:
    """R1@{0.3,0.5,0.7}, R5@{0.5,0.7} and mIoU in percent (2 decimals).

    Args:
        predictions: a jsonl path or rows with ``qid`` and ``pred_relevant_windows`` (``[start, end]``
            or ``[start, end, score]``, best first).
        references: a jsonl path or rows with ``qid``, ``duration`` and ``relevant_windows``.

    Returns:
        ``{"R1@0.3", "R1@0.5", "R1@0.7", "R5@0.5", "R5@0.7", "mIoU"}``.
    """
    predictions = as_records(predictions, "predictions")
    references = as_records(references, "ground truth")
    reference_rows = align_by_qid(predictions, references)
    first_window = predictions.rows[0].get("pred_relevant_windows") if len(predictions) else None
    width = len(first_window[0]) if isinstance(first_window, list) and first_window and first_window[0] else 3
    windows, counts = ragged_numbers(predictions, "pred_relevant_windows", width=width)
    require_ordered_windows(predictions, "pred_relevant_windows", windows, counts)
    pred_windows, pred_valid = pad_ragged(windows[:, :2], counts, max_items=TOP_K)
    gt, gt_counts = ragged_numbers(references, "relevant_windows", width=2)
    require_ordered_windows(references, "relevant_windows", gt, gt_counts, positive_length=True)
    gt = clip_to_duration(references, gt, gt_counts, clip_tolerance)
    gt_windows, gt_valid = pad_ragged(gt, gt_counts, fill=1.0)
    iou = top_k_iou(pred_windows, gt_windows[reference_rows], gt_valid[reference_rows])
    iou = np.where(pred_valid, iou, 0.0)
    scores = {f"R1@{t}": to_percent(np.mean(iou[:, 0] >= t)) for t in R1_THRESHOLDS}
    scores.update({f"R5@{t}": to_percent(np.mean((iou >= t).any(axis=1))) for t in R5_THRESHOLDS})
    scores["mIoU"] = to_percent(np.mean(iou[:, 0]))
    return scores
