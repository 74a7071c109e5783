"""Temporal windows as the official detection evaluation scores them: IoU, ragged lists padded into
arrays, greedy matching of ranked predictions to ground truth, and average precision per query over IoU
thresholds (the VOC-style interpolated AP of ActivityNet's and Moment-DETR's evaluations). Vectorised over
queries and thresholds with numpy; used by the QVHighlights and the R1/R5/mIoU metrics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# The official mAP's IoU thresholds, 0.5 to 0.95 by 0.05 (rounded as the official script rounds them).
MAP_THRESHOLDS = tuple(float(f"{t:.2f}") for t in np.linspace(0.5, 0.95, 10))


def to_percent(fraction: float) -> float:
    """A fraction as a percentage rounded to 2 decimals, the way the official evaluation prints it."""
    return float(f"{100 * fraction:.2f}")


def temporal_iou_cross(windows_a: np.ndarray, windows_b: np.ndarray) -> np.ndarray:
    """IoU of every pair of windows, ``(..., N, 2) x (..., M, 2) -> (..., N, M)``.

    The union is ``len_a + len_b - intersection`` (the official mAP and R1 window choice use this form).
    """
    length_a = windows_a[..., 1] - windows_a[..., 0]
    length_b = windows_b[..., 1] - windows_b[..., 0]
    left = np.maximum(windows_a[..., :, None, 0], windows_b[..., None, :, 0])
    right = np.minimum(windows_a[..., :, None, 1], windows_b[..., None, :, 1])
    intersection = np.clip(right - left, 0, None)
    union = length_a[..., :, None] + length_b[..., None, :] - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        return intersection / union


def temporal_iou_hull(windows_a: np.ndarray, windows_b: np.ndarray) -> np.ndarray:
    """IoU of paired windows, ``(..., 2) x (..., 2) -> (...)``, the official R1 form.

    The denominator is the span covering both windows: the union whenever they overlap (the IoU
    is 0 otherwise either way), and an IoU of 0 where that span is empty.
    """
    intersection = np.maximum(
        0.0,
        np.minimum(windows_a[..., 1], windows_b[..., 1]) - np.maximum(windows_a[..., 0], windows_b[..., 0]),
    )
    hull = np.maximum(windows_a[..., 1], windows_b[..., 1]) - np.minimum(windows_a[..., 0], windows_b[..., 0])
    return np.divide(intersection, hull, out=np.zeros_like(intersection), where=hull != 0)


def pad_ragged(
    values: np.ndarray, counts: np.ndarray, max_items: int | None = None, fill: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Lay concatenated per-row items out as a padded batch.

    Args:
        values: ``(total, ...)`` items of all rows, row after row.
        counts: ``(rows,)`` items per row.
        max_items: keep only each row's first ``max_items`` items.

    Returns:
        ``padded`` of shape ``(rows, width, ...)`` filled with ``fill`` and ``valid`` ``(rows, width)``.
    """
    starts = np.cumsum(counts) - counts
    rows = np.repeat(np.arange(len(counts)), counts)
    columns = np.arange(len(values)) - np.repeat(starts, counts)
    width = int(counts.max(initial=0))
    if max_items is not None:
        keep = columns < max_items
        rows, columns, values, width = rows[keep], columns[keep], values[keep], min(width, max_items)
    padded = np.full((len(counts), width, *values.shape[1:]), fill, dtype=np.float64)
    valid = np.zeros((len(counts), width), dtype=bool)
    padded[rows, columns] = values
    valid[rows, columns] = True
    return padded, valid


def sort_windows_by_score(windows: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stable sort of each query's ``(start, end, score)`` windows by decreasing score, padding last.

    Args:
        windows: ``(queries, P, 3)``; valid: ``(queries, P)``.
    """
    order = np.argsort(np.where(valid, -windows[..., 2], np.inf), axis=1, kind="stable")
    return np.take_along_axis(windows, order[..., None], axis=1), np.take_along_axis(valid, order, axis=1)


def match_windows_greedily(
    iou: np.ndarray, valid: np.ndarray, gt_valid: np.ndarray, thresholds: np.ndarray
) -> np.ndarray:
    """True positives of score-sorted predictions, each matched to at most one ground-truth window.

    A prediction takes the free ground-truth window of highest IoU at or above the threshold; on
    equal IoU the later window is taken first, as the official loop visits them in reversed
    (stable) argsort order.

    Args:
        iou: ``(Q, P, G)`` IoU of each sorted prediction with each ground-truth window.
        valid: ``(Q, P)``; gt_valid: ``(Q, G)``; thresholds: ``(T,)``.

    Returns:
        ``(P, Q, T)`` booleans, rank first.
    """
    num_queries, num_predictions, num_gt = iou.shape
    taken = np.zeros((num_queries, len(thresholds), num_gt), dtype=bool)
    true_positive = np.zeros((num_predictions, num_queries, len(thresholds)), dtype=bool)
    for rank in range(num_predictions):
        rank_iou = iou[:, rank, None, :]  # (Q, 1, G)
        free = (rank_iou >= thresholds[:, None]) & gt_valid[:, None, :] & ~taken & valid[:, rank, None, None]
        reversed_preference = np.where(free, rank_iou, -1.0)[..., ::-1]
        chosen = num_gt - 1 - np.argmax(reversed_preference, axis=-1)  # (Q, T)
        hit = free.any(axis=-1)
        query_index, threshold_index = np.nonzero(hit)
        taken[query_index, threshold_index, chosen[query_index, threshold_index]] = True
        true_positive[rank] = hit
    return true_positive


def average_precision_per_query(
    pred_windows: np.ndarray,
    pred_valid: np.ndarray,
    gt_windows: np.ndarray,
    gt_valid: np.ndarray,
    thresholds: Sequence[float] = MAP_THRESHOLDS,
) -> np.ndarray:
    """Detection AP of each query at each IoU threshold (VOC-style interpolated precision).

    Queries are processed in buckets of similar ground-truth window counts, so that the few
    queries with many windows do not widen the whole batch.

    Args:
        pred_windows: ``(Q, P, 3)`` predicted ``(start, end, score)`` in list order (the official
            evaluation keeps the first 10); pred_valid: ``(Q, P)``, each query with at least one.
        gt_windows: ``(Q, G, 2)``; gt_valid: ``(Q, G)``, each query with at least one.

    Returns:
        ``(Q, T)`` average precision in [0, 1].
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    gt_windows, gt_valid = valid_windows_first(gt_windows, gt_valid)
    windows, valid = sort_windows_by_score(pred_windows, pred_valid)
    counts = gt_valid.sum(axis=1)
    average_precision = np.zeros((len(counts), len(thresholds)))
    low = 0
    while low < counts.max(initial=0):
        high = max(1, 2 * low)
        rows = np.flatnonzero((counts > low) & (counts <= high))
        if len(rows):
            average_precision[rows] = sorted_average_precision(
                windows[rows], valid[rows], gt_windows[rows, :high], gt_valid[rows, :high], thresholds
            )
        low = high
    return average_precision


def valid_windows_first(windows: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move each row's valid windows to the front, keeping their order; ``(Q, G, ...)``, ``(Q, G)``."""
    order = np.argsort(~valid, axis=1, kind="stable")
    return np.take_along_axis(windows, order[..., None], axis=1), np.take_along_axis(valid, order, axis=1)


def sorted_average_precision(
    windows: np.ndarray,
    valid: np.ndarray,
    gt_windows: np.ndarray,
    gt_valid: np.ndarray,
    thresholds: np.ndarray,
) -> np.ndarray:
    """:func:`average_precision_per_query` for windows already sorted by score, ``(Q, T)``."""
    iou = temporal_iou_cross(windows[..., :2], gt_windows)
    true_positive = match_windows_greedily(iou, valid, gt_valid, thresholds)
    false_positive = valid.T[:, :, None] & ~true_positive
    tp_count = np.cumsum(true_positive, axis=0, dtype=np.float64)  # (P, Q, T)
    fp_count = np.cumsum(false_positive, axis=0, dtype=np.float64)
    recall = tp_count / gt_valid.sum(axis=1, dtype=np.float64)[:, None]
    precision = tp_count / (tp_count + fp_count)
    zeros = np.zeros((1, *recall.shape[1:]))
    recall = np.concatenate([zeros, recall, np.ones_like(zeros)])
    precision = np.concatenate([zeros, precision, zeros])
    envelope = np.maximum.accumulate(precision[::-1], axis=0)[::-1]
    # Summed over ranks in order (axis 0), as the official per-query sum runs.
    return np.sum(np.diff(recall, axis=0) * envelope[1:], axis=0)


def first_window_iou(first_windows: np.ndarray, gt_windows: np.ndarray, gt_valid: np.ndarray) -> np.ndarray:
    """IoU of each query's first predicted window (list order) with its best ground-truth window.

    Args:
        first_windows: ``(Q, 2)``; gt_windows: ``(Q, G, 2)``; gt_valid: ``(Q, G)``.

    Returns:
        ``(Q,)`` IoU in [0, 1].
    """
    cross = temporal_iou_cross(first_windows[:, None, :], gt_windows)[:, 0, :]
    best = np.argmax(np.where(gt_valid, cross, -np.inf), axis=1)
    best_windows = np.take_along_axis(gt_windows, best[:, None, None], axis=1)[:, 0]
    return temporal_iou_hull(first_windows, best_windows)


def windows_in_range(gt_windows: np.ndarray, gt_valid: np.ndarray, length_range: tuple[float, float] | None):
    """``(Q, G)`` mask of the ground-truth windows whose length lies in ``(low, high]``."""
    if length_range is None:
        return gt_valid
    low, high = length_range
    length = gt_windows[..., 1] - gt_windows[..., 0]
    return gt_valid & (length > low) & (length <= high)
