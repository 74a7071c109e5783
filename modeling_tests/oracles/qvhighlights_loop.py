"""The QVHighlights evaluation as a plain per-query Python loop.

A second, independently written code path for :mod:`transformers_rdmf.metrics.qvhighlights`: the
tests check that both agree, and the speed benchmark uses this as its baseline. It does not
validate its input; use :func:`~transformers_rdmf.metrics.evaluate_qvhighlights` for that.
"""

from __future__ import annotations

import itertools

from transformers_rdmf.metrics.qvhighlights import (
    LENGTH_RANGES,
    MAX_PREDICTED_WINDOWS,
    R1_THRESHOLDS,
    SALIENCY_LEVELS,
)
from transformers_rdmf.metrics.windows import MAP_THRESHOLDS, to_percent

__all__ = ["detection_ap_loop", "evaluate_qvhighlights_loop", "ranking_ap_loop"]


def window_iou(a: list[float], b: list[float]) -> float:
    intersection = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    return intersection / ((a[1] - a[0]) + (b[1] - b[0]) - intersection)


def window_iou_hull(a: list[float], b: list[float]) -> float:
    intersection = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    hull = max(a[1], b[1]) - min(a[0], b[0])
    return intersection / hull if hull != 0 else 0.0


def detection_ap_loop(
    pred_windows: list[list[float]], gt_windows: list[list[float]], threshold: float
) -> float:
    """AP of one query's ``[start, end, score]`` windows (first 10, stable-sorted by score)."""
    predictions = sorted(pred_windows[:MAX_PREDICTED_WINDOWS], key=lambda window: -window[2])
    taken = [False] * len(gt_windows)
    hits = []
    for window in predictions:
        ious = [window_iou(window, gt) for gt in gt_windows]
        hit = False
        for j in sorted(range(len(gt_windows)), key=lambda j: (-ious[j], -j)):
            if ious[j] < threshold:
                break
            if not taken[j]:
                taken[j] = hit = True
                break
        hits.append(hit)
    true_positives = list(itertools.accumulate(hits))
    precisions = [tp / rank for rank, tp in enumerate(true_positives, start=1)]
    recalls = [tp / len(gt_windows) for tp in true_positives]
    average_precision, previous_recall = 0.0, 0.0
    for k, recall in enumerate(recalls):
        if recall != previous_recall:
            average_precision += (recall - previous_recall) * max(precisions[k:])
            previous_recall = recall
    return average_precision


def first_window_iou_loop(pred_windows: list[list[float]], gt_windows: list[list[float]]) -> float:
    first = pred_windows[0]
    ious = [window_iou(first, gt) for gt in gt_windows]
    return window_iou_hull(first, gt_windows[ious.index(max(ious))])


def ranking_ap_loop(scores: list[float], labels: list[bool]) -> float:
    """Mean interpolated precision over the recall levels reached by the distinct score thresholds."""
    if all(labels):
        return 1.0
    if not any(labels):
        return 0.0
    ranked = sorted(zip(scores, labels), key=lambda pair: -pair[0])
    points = []  # (precision, true positives) at each distinct threshold, best first
    true_positives = seen = 0
    for _, group in itertools.groupby(ranked, key=lambda pair: pair[0]):
        group = list(group)
        true_positives += sum(label for _, label in group)
        seen += len(group)
        points.append((true_positives / seen, true_positives))
    levels, previous = [], 0
    for k, (_, tp) in enumerate(points):
        if tp != previous:
            levels.append(max(precision for precision, _ in points[k:]))
            previous = tp
    return sum(levels) / len(levels)


def moment_scores_loop(pairs: list[tuple[dict, list[list[float]]]]) -> dict:
    """One length range: ``pairs`` of (prediction row, in-range ground-truth windows)."""
    if not pairs:
        zeros = {str(t): 0.0 for t in MAP_THRESHOLDS}
        return {
            "MR-mIoU": 0.0,
            "MR-mAP": {**zeros, "average": 0.0},
            "MR-R1": {str(t): 0.0 for t in R1_THRESHOLDS},
        }
    per_threshold = []
    for threshold in MAP_THRESHOLDS:
        values = [detection_ap_loop(row["pred_relevant_windows"], gt, threshold) for row, gt in pairs]
        per_threshold.append(sum(values) / len(values))
    ious = [first_window_iou_loop(row["pred_relevant_windows"], gt) for row, gt in pairs]
    mean_ap = {str(t): to_percent(v) for t, v in zip(MAP_THRESHOLDS, per_threshold)}
    mean_ap["average"] = to_percent(sum(per_threshold) / len(per_threshold))
    return {
        "MR-mIoU": to_percent(sum(ious) / len(ious)),
        "MR-mAP": mean_ap,
        "MR-R1": {str(t): to_percent(sum(iou >= t for iou in ious) / len(ious)) for t in R1_THRESHOLDS},
    }


def highlight_scores_loop(predictions: list[dict], ground_truth: dict) -> dict:
    scores = {}
    for name, minimum in SALIENCY_LEVELS.items():
        average_precisions, hits = [], []
        for row in predictions:
            gt = ground_truth[row["qid"]]
            num_clips = int(gt["duration"] / 2)
            annotator_scores = [[0, 0, 0] for _ in range(num_clips)]
            for clip, clip_scores in zip(gt["relevant_clip_ids"], gt["saliency_scores"]):
                annotator_scores[clip] = clip_scores
            predicted = list(row["pred_saliency_scores"][:num_clips])
            predicted += [0.0] * (num_clips - len(predicted))
            for annotator in range(3):
                labels = [clip_scores[annotator] >= minimum for clip_scores in annotator_scores]
                average_precisions.append(ranking_ap_loop(predicted, labels))
            saliency = row["pred_saliency_scores"]
            top = saliency.index(max(saliency))
            hits.append(top < num_clips and any(score >= minimum for score in annotator_scores[top]))
        scores[f"HL-min-{name}"] = {
            "HL-mAP": to_percent(sum(average_precisions) / len(average_precisions)),
            "HL-Hit1": to_percent(sum(hits) / len(hits)),
        }
    return scores


def evaluate_qvhighlights_loop(predictions: list[dict], references: list[dict]) -> dict:
    """The same dict as :func:`~transformers_rdmf.metrics.evaluate_qvhighlights`, query by query."""
    ground_truth = {row["qid"]: row for row in references}
    metrics = {}
    for name, length_range in LENGTH_RANGES.items():
        pairs = []
        for row in predictions:
            windows = ground_truth[row["qid"]]["relevant_windows"]
            if length_range is not None:
                windows = [w for w in windows if length_range[0] < w[1] - w[0] <= length_range[1]]
            if windows:
                pairs.append((row, windows))
        metrics[name] = moment_scores_loop(pairs)
    metrics.update(highlight_scores_loop(predictions, ground_truth))
    full = metrics["full"]
    brief = {
        "MR-full-R1@0.3": full["MR-R1"]["0.3"],
        "MR-full-R1@0.5": full["MR-R1"]["0.5"],
        "MR-full-R1@0.7": full["MR-R1"]["0.7"],
        "MR-full-mAP": full["MR-mAP"]["average"],
        "MR-full-mAP@0.5": full["MR-mAP"]["0.5"],
        "MR-full-mAP@0.75": full["MR-mAP"]["0.75"],
        "MR-full-mIoU": full["MR-mIoU"],
        "MR-long-mAP": metrics["long"]["MR-mAP"]["average"],
        "MR-middle-mAP": metrics["middle"]["MR-mAP"]["average"],
        "MR-short-mAP": metrics["short"]["MR-mAP"]["average"],
    }
    for level in SALIENCY_LEVELS:
        values = metrics[f"HL-min-{level}"]
        brief.update({f"HL-min-{level}-mAP": values["HL-mAP"], f"HL-min-{level}-Hit1": values["HL-Hit1"]})
    return {"brief": brief, **dict(sorted(metrics.items()))}
