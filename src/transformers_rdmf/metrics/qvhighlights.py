"""QVHighlights moment retrieval and highlight detection metrics, as the official evaluation computes them.

The numbers equal those of Moment-DETR's standalone evaluation (Lei et al., "QVHighlights:
Detecting Moments and Highlights in Videos via Natural Language Queries", NeurIPS 2021) to the
last printed digit; the output is the superset of its keys and of CG-DETR's copy (which adds R1 at
0.3..0.45 and mIoU). Everything is vectorised over queries and IoU thresholds with numpy.

Command line, with the official script's interface::

    python -m transformers_rdmf.metrics.qvhighlights --submission_path P --gt_path G --save_path S
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence

import numpy as np

from transformers_rdmf.atomic import atomic_write_json, check_not_replacing, check_output_paths
from transformers_rdmf.errors import OneLineParser, run_command
from transformers_rdmf.metrics.inputs import (
    WINDOW_END_TOLERANCE,
    MetricInputError,
    Records,
    align_by_qid,
    as_records,
    first_flagged_item,
    ragged_numbers,
    require_ordered_windows,
    require_windows_in_video,
    video_durations,
)
from transformers_rdmf.metrics.windows import (
    MAP_THRESHOLDS,
    average_precision_per_query,
    first_window_iou,
    pad_ragged,
    to_percent,
    windows_in_range,
)

__all__ = [
    "LENGTH_RANGES",
    "R1_THRESHOLDS",
    "SALIENCY_LEVELS",
    "evaluate_qvhighlights",
    "highlight_average_precision",
    "highlight_hit_at_one",
    "main",
]

R1_THRESHOLDS = tuple(float(f"{t:.2f}") for t in np.linspace(0.3, 0.95, 14))
# Ground-truth window lengths in seconds, (low, high]; "full" keeps every window.
LENGTH_RANGES: dict[str, tuple[float, float] | None] = {
    "short": (0.0, 10.0),
    "middle": (10.0, 30.0),
    "long": (30.0, 150.0),
    "full": None,
}
SALIENCY_LEVELS = {"Fair": 2, "Good": 3, "VeryGood": 4}
CLIP_SECONDS = 2.0
MAX_PREDICTED_WINDOWS = 10
NUM_ANNOTATORS = 3

PathOrRows = Records | str | os.PathLike | Sequence[Mapping]


def range_scores(average_precision: np.ndarray, iou: np.ndarray) -> dict:
    """Official per-range dict from ``(Q, T)`` AP and ``(Q,)`` first-window IoU."""
    map_per_threshold = average_precision.mean(axis=0)
    mean_ap = {str(t): to_percent(v) for t, v in zip(MAP_THRESHOLDS, map_per_threshold)}
    mean_ap["average"] = to_percent(np.mean(map_per_threshold))
    recall_at_one = np.mean(iou[:, None] >= np.asarray(R1_THRESHOLDS), axis=0)
    return {
        "MR-mIoU": to_percent(np.mean(iou)),
        "MR-mAP": mean_ap,
        "MR-R1": {str(t): to_percent(v) for t, v in zip(R1_THRESHOLDS, recall_at_one)},
    }


def empty_range_scores() -> dict:
    """A length range without queries: every value 0, as CG-DETR's copy reports (Moment-DETR's gives NaN)."""
    return range_scores(np.zeros((1, len(MAP_THRESHOLDS))), np.zeros(1))


def moment_retrieval_scores(
    pred_windows: np.ndarray, pred_valid: np.ndarray, gt_windows: np.ndarray, gt_valid: np.ndarray
) -> dict:
    """Per length range ``{"MR-mIoU", "MR-mAP", "MR-R1"}``, shapes as in :func:`average_precision_per_query`.

    The queries of all ranges are stacked into one batch, each with its in-range windows only.
    """
    range_masks = [windows_in_range(gt_windows, gt_valid, bounds) for bounds in LENGTH_RANGES.values()]
    range_queries = [np.flatnonzero(mask.any(axis=1)) for mask in range_masks]
    queries = np.concatenate(range_queries)
    in_range = np.concatenate([mask[rows] for mask, rows in zip(range_masks, range_queries)])
    average_precision = average_precision_per_query(
        pred_windows[queries], pred_valid[queries], gt_windows[queries], in_range
    )
    iou = first_window_iou(pred_windows[queries, 0, :2], gt_windows[queries], in_range)
    bounds = np.cumsum([0] + [len(rows) for rows in range_queries])
    scores = {}
    for name, start, stop in zip(LENGTH_RANGES, bounds[:-1], bounds[1:]):
        empty = start == stop
        scores[name] = (
            empty_range_scores() if empty else range_scores(average_precision[start:stop], iou[start:stop])
        )
    return scores


def highlight_hit_at_one(
    saliency: np.ndarray, saliency_valid: np.ndarray, positive: np.ndarray
) -> np.ndarray:
    """Whether each query's top-scored clip (first on ties) is positive for any annotator.

    Args:
        saliency: ``(Q, S)`` predicted scores as given (not cut or padded); saliency_valid: ``(Q, S)``.
        positive: ``(Q, C, A)`` binary labels of the ground-truth clips (False past a video's clips).

    Returns:
        ``(Q,)`` booleans; a top clip past the ground truth is a miss.
    """
    top_clip = np.argmax(np.where(saliency_valid, saliency, -np.inf), axis=1)
    inside = top_clip < positive.shape[1]
    labels = positive[np.arange(len(top_clip)), np.minimum(top_clip, positive.shape[1] - 1)]
    return inside & labels.any(axis=-1)


def highlight_average_precision(
    scores: np.ndarray, clip_valid: np.ndarray, positive: np.ndarray
) -> np.ndarray:
    """Ranking AP of each query and label set, with tied scores ranked as one group.

    This is the official ``get_ap``: the mean, over the distinct recall levels reached by the
    score thresholds, of the interpolated precision (the best precision at that recall or higher).
    A video whose clips are all negative scores 0, all positive 1.

    Args:
        scores: ``(Q, C)`` predicted scores cut or zero-padded to each video's clips.
        clip_valid: ``(Q, C)`` whether the clip exists in the video.
        positive: ``(Q, K, C)`` binary labels (K label sets, e.g. annotators x levels).

    Returns:
        ``(Q, K)`` AP in [0, 1].
    """
    positive = positive & clip_valid[:, None, :]
    order = np.argsort(np.where(clip_valid, -scores, np.inf), axis=1, kind="stable")
    ranked_scores = np.take_along_axis(scores, order, axis=1)
    ranked_valid = np.take_along_axis(clip_valid, order, axis=1)
    ranked_positive = np.take_along_axis(positive, order[:, None, :], axis=2)
    closes_group = np.ones_like(ranked_valid)
    closes_group[:, :-1] = (ranked_scores[:, 1:] != ranked_scores[:, :-1]) | ~ranked_valid[:, 1:]
    group_end = (ranked_valid & closes_group)[:, None, :]  # (Q, 1, C)
    true_positive = np.cumsum(ranked_positive, axis=2, dtype=np.int32)  # (Q, K, C)
    precision = true_positive / np.arange(1, scores.shape[1] + 1, dtype=np.float64)
    envelope = np.maximum.accumulate(np.where(group_end, precision, -1.0)[..., ::-1], axis=2)[..., ::-1]
    tp_at_group_end = np.maximum.accumulate(np.where(group_end, true_positive, 0), axis=2)
    new_recall = np.empty(true_positive.shape, dtype=bool)
    new_recall[..., 0] = true_positive[..., 0] > 0
    new_recall[..., 1:] = true_positive[..., 1:] > tp_at_group_end[..., :-1]
    new_recall &= group_end
    levels = new_recall.sum(axis=2)
    average_precision = (new_recall * envelope).sum(axis=2) / np.maximum(levels, 1)
    num_positive = true_positive[..., -1]
    num_clips = clip_valid.sum(axis=1)[:, None]
    return np.where(num_positive == 0, 0.0, np.where(num_positive == num_clips, 1.0, average_precision))


def highlight_scores(
    saliency: np.ndarray, saliency_valid: np.ndarray, gt_saliency: np.ndarray, clip_valid: np.ndarray
) -> dict:
    """``HL-min-{Fair,Good,VeryGood}`` dicts of ``HL-mAP`` and ``HL-Hit1``.

    Args:
        saliency: ``(Q, S)`` predicted clip scores; saliency_valid: ``(Q, S)``.
        gt_saliency: ``(Q, C, 3)`` annotator scores 0..4 (0 for clips outside the relevant ones).
        clip_valid: ``(Q, C)`` the ``int(duration / 2)`` clips of each video.
    """
    num_clips = gt_saliency.shape[1]
    if saliency.shape[1] < num_clips:
        padding = ((0, 0), (0, num_clips - saliency.shape[1]))
        saliency, saliency_valid = np.pad(saliency, padding), np.pad(saliency_valid, padding)
    cut_scores = np.where(clip_valid, saliency[:, :num_clips], 0.0)
    minimums = np.array(list(SALIENCY_LEVELS.values()))
    by_annotator = gt_saliency.transpose(0, 2, 1)  # (Q, 3, C)
    positive = by_annotator[:, None] >= minimums[:, None, None]  # (Q, levels, 3, C)
    average_precision = highlight_average_precision(
        cut_scores, clip_valid, positive.reshape(len(positive), -1, num_clips)
    ).reshape(len(positive), len(minimums), NUM_ANNOTATORS)
    scores = {}
    for level, name in enumerate(SALIENCY_LEVELS):
        hit = highlight_hit_at_one(
            saliency, saliency_valid, positive[:, level].transpose(0, 2, 1) & clip_valid[..., None]
        )
        scores[f"HL-min-{name}"] = {
            "HL-mAP": to_percent(np.mean(average_precision[:, level])),
            "HL-Hit1": to_percent(np.mean(hit)),
        }
    return scores


def pack_moment_inputs(predictions: Records, references: Records, reference_rows: np.ndarray):
    """Validated ``(pred_windows, pred_valid, gt_windows, gt_valid)``, all in prediction order."""
    windows, counts = ragged_numbers(predictions, "pred_relevant_windows", width=3)
    require_ordered_windows(predictions, "pred_relevant_windows", windows, counts)
    pred_windows, pred_valid = pad_ragged(windows, counts, max_items=MAX_PREDICTED_WINDOWS)
    gt, gt_counts = ragged_numbers(references, "relevant_windows", width=2)
    require_ordered_windows(references, "relevant_windows", gt, gt_counts, positive_length=True)
    # refused, not clipped: what is accepted is scored exactly as the official script scores it
    require_windows_in_video(
        references, "relevant_windows", gt, gt_counts, WINDOW_END_TOLERANCE, duration_optional=True
    )
    gt_windows, gt_valid = pad_ragged(gt, gt_counts, fill=1.0)
    return pred_windows, pred_valid, gt_windows[reference_rows], gt_valid[reference_rows]


def pack_highlight_inputs(predictions: Records, references: Records, reference_rows: np.ndarray):
    """Validated ``(saliency, saliency_valid, gt_saliency, clip_valid)``, all in prediction order."""
    saliency, counts = ragged_numbers(predictions, "pred_saliency_scores")
    saliency, saliency_valid = pad_ragged(saliency, counts)
    num_clips = clips_per_video(references)
    clip_ids, id_counts = ragged_numbers(references, "relevant_clip_ids", min_count=0)
    annotator_scores, score_counts = ragged_numbers(
        references, "saliency_scores", width=NUM_ANNOTATORS, min_count=0
    )
    check_clip_ids(references, clip_ids, id_counts, score_counts, num_clips)
    rows = np.repeat(np.arange(len(references)), id_counts)
    gt_saliency = np.zeros((len(references), int(num_clips.max()), NUM_ANNOTATORS))
    gt_saliency[rows, clip_ids.astype(np.int64)] = annotator_scores
    clip_valid = np.arange(gt_saliency.shape[1]) < num_clips[:, None]
    return saliency, saliency_valid, gt_saliency[reference_rows], clip_valid[reference_rows]


def clips_per_video(references: Records) -> np.ndarray:
    """``(rows,)`` ``int(duration / 2)``, the number of 2 s clips the official evaluation scores."""
    num_clips = []
    for index, duration in enumerate(video_durations(references).tolist()):
        if int(duration / CLIP_SECONDS) < 1:
            raise references.error(
                index, "duration", f"{duration} s is shorter than one {CLIP_SECONDS:g} s clip"
            )
        num_clips.append(int(duration / CLIP_SECONDS))
    return np.array(num_clips, dtype=np.int64)


def check_clip_ids(
    references: Records,
    clip_ids: np.ndarray,
    id_counts: np.ndarray,
    score_counts: np.ndarray,
    num_clips: np.ndarray,
) -> None:
    """Clip ids must be integers inside the video, one row of annotator scores each."""
    mismatch = np.flatnonzero(id_counts != score_counts)
    if len(mismatch):
        row = int(mismatch[0])
        raise references.error(
            row, "saliency_scores", f"{score_counts[row]} score rows for {id_counts[row]} relevant_clip_ids"
        )
    limit = np.repeat(num_clips, id_counts)
    bad = (clip_ids != np.round(clip_ids)) | (clip_ids < 0) | (clip_ids >= limit)
    if bad.any():
        flat_index, row, _ = first_flagged_item(bad, id_counts)
        raise references.error(
            row,
            "relevant_clip_ids",
            f"clip id {clip_ids[flat_index]:g} is not an integer in [0, {num_clips[row]}) "
            f"(the video has int(duration / {CLIP_SECONDS:g}) = {num_clips[row]} clips)",
        )


def evaluate_qvhighlights(predictions: PathOrRows, references: PathOrRows) -> dict:
    """The official QVHighlights metrics dict (superset of Moment-DETR's and CG-DETR's keys).

    Args:
        predictions: a jsonl path or rows with ``qid``, ``pred_relevant_windows`` (``[start, end,
            score]``, best first) and/or ``pred_saliency_scores`` (one score per 2 s clip).
            Which tasks are scored follows the first row, as in the official evaluation.
        references: a jsonl path or rows with ``qid``, ``duration``, ``relevant_windows`` and, for
            highlights, ``relevant_clip_ids`` and ``saliency_scores``.

    Returns:
        ``{"brief": {...}, "HL-min-Fair": ..., "HL-min-Good": ..., "HL-min-VeryGood": ...,
        "full": ..., "long": ..., "middle": ..., "short": ...}``, values in percent rounded to 2
        decimals.

    Raises:
        MetricInputError: naming the file, line and field of the first bad input.
    """
    predictions = as_records(predictions, "predictions")
    references = as_records(references, "ground truth")
    if not len(predictions):
        raise MetricInputError(f"{predictions.source}: no predictions")
    reference_rows = align_by_qid(predictions, references)
    first = predictions.rows[0]
    if "pred_relevant_windows" not in first and "pred_saliency_scores" not in first:
        raise predictions.error(0, None, "needs 'pred_relevant_windows' and/or 'pred_saliency_scores'")
    metrics, brief = {}, {}
    if "pred_relevant_windows" in first:
        metrics.update(moment_retrieval_scores(*pack_moment_inputs(predictions, references, reference_rows)))
        brief.update(sorted(moment_retrieval_brief(metrics).items()))
    if "pred_saliency_scores" in first:
        highlights = highlight_scores(*pack_highlight_inputs(predictions, references, reference_rows))
        metrics.update(highlights)
        for level, values in highlights.items():
            brief.update({f"{level}-{key.split('-')[1]}": value for key, value in values.items()})
    return {"brief": brief, **dict(sorted(metrics.items()))}


def moment_retrieval_brief(metrics: dict) -> dict:
    """The moment retrieval entries of the official ``brief`` dict."""
    full = metrics["full"]
    return {
        "MR-full-mAP": full["MR-mAP"]["average"],
        "MR-full-mAP@0.5": full["MR-mAP"]["0.5"],
        "MR-full-mAP@0.75": full["MR-mAP"]["0.75"],
        "MR-short-mAP": metrics["short"]["MR-mAP"]["average"],
        "MR-middle-mAP": metrics["middle"]["MR-mAP"]["average"],
        "MR-long-mAP": metrics["long"]["MR-mAP"]["average"],
        "MR-full-mIoU": full["MR-mIoU"],
        "MR-full-R1@0.3": full["MR-R1"]["0.3"],
        "MR-full-R1@0.5": full["MR-R1"]["0.5"],
        "MR-full-R1@0.7": full["MR-R1"]["0.7"],
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: write the metrics JSON to ``--save_path`` and print the brief dict.

    ``--save_path`` may not be an input; it is written whole or not at all, as strict JSON. A bad input is
    one line naming the file (`errors.run_command`), exit 2.
    """
    parser = OneLineParser(
        prog="python -m transformers_rdmf.metrics.qvhighlights",
        description="QVHighlights moment retrieval and highlight detection evaluation",
    )
    parser.add_argument("--submission_path", required=True, help="predictions jsonl")
    parser.add_argument("--gt_path", required=True, help="ground-truth jsonl")
    parser.add_argument("--save_path", required=True, help="where to write the metrics JSON")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --save_path")
    parser.add_argument("--not_verbose", action="store_true", help="do not print the brief dict")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = parser.parse_args(argv)

    def work() -> None:
        check_output_paths(
            {"--save_path": args.save_path},
            {"--submission_path": args.submission_path, "--gt_path": args.gt_path},
        )
        check_not_replacing({"--save_path": args.save_path}, args.overwrite)
        results = evaluate_qvhighlights(args.submission_path, args.gt_path)
        atomic_write_json(args.save_path, results, indent=4)
        if not args.not_verbose:
            print(json.dumps(results["brief"], indent=4))

    status = run_command(parser.prog, work, debug=args.debug)
    if status:
        sys.exit(status)


if __name__ == "__main__":
    main(sys.argv[1:])
