"""Highlight detection on TVSum (top-5 mAP) and YouTube Highlights (mAP).

The protocols of UMT (Liu et al., CVPR 2022), which QD-DETR and CG-DETR report: per video, clips
are ranked by predicted saliency (stable sort, so ties keep clip order) and the ranking is scored
by the trapezoid-rule average precision of :func:`trapezoid_average_precision`; videos are averaged
per domain, and the domains are averaged with equal weight.

- **TVSum:** for each of the 20 annotators a clip is positive when its score is above that
  annotator's median for the video; only the top 5 clips are scored; the 20 APs are averaged.
- **YouTube Highlights:** a clip is positive when its label (``match``) is > 0; the whole ranking
  is scored.

Predicted scores and labels whose lengths differ by at most ``max_length_difference`` clips (the
released features have one row more or less than the labels for a few videos) are truncated to the
shorter; a larger difference is an error.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from transformers_rdmf.metrics.inputs import (
    MetricInputError,
    Records,
    align_by_qid,
    as_records,
    ragged_numbers,
)

__all__ = [
    "evaluate_tvsum",
    "evaluate_youtube_highlights",
    "trapezoid_average_precision",
    "tvsum_video_ap",
    "youtube_video_ap",
]

TVSUM_TOP_K = 5

PathOrRows = Records | str | os.PathLike | Sequence[Mapping]


def trapezoid_average_precision(ranked_positive: np.ndarray) -> np.ndarray:
    """Average precision of rankings by the trapezoid rule.

    ``AP = sum_j (recall_j - recall_{j-1}) * (precision_{j-1} + precision_j) / 2`` with
    ``precision_0 = 1`` and ``recall_0 = 0``; recall is normalised by the positives in the ranking
    given (for a top-k ranking, the positives among the top k); 0 when there are none.

    Args:
        ranked_positive: ``(..., N)`` binary labels in ranked order, best first.

    Returns:
        ``(...)`` AP in [0, 1].
    """
    hits = np.cumsum(ranked_positive, axis=-1, dtype=np.float64)
    precision = hits / np.arange(1, hits.shape[-1] + 1)
    total = hits[..., -1:]
    recall = hits / np.maximum(total, 1.0)
    previous_precision = np.concatenate([np.ones_like(precision[..., :1]), precision[..., :-1]], axis=-1)
    previous_recall = np.concatenate([np.zeros_like(recall[..., :1]), recall[..., :-1]], axis=-1)
    average_precision = np.sum((recall - previous_recall) * (previous_precision + precision) / 2, axis=-1)
    return np.where(total[..., 0] > 0, average_precision, 0.0)


def rank_clips(scores: np.ndarray) -> np.ndarray:
    """Clip indices by decreasing score, ties in clip order; ``(C,) -> (C,)``."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def tvsum_video_ap(scores: np.ndarray, annotator_scores: np.ndarray, top_k: int = TVSUM_TOP_K) -> float:
    """TVSum top-k AP of one video, averaged over annotators.

    Args:
        scores: ``(C,)`` predicted saliency.
        annotator_scores: ``(C, A)`` importance scores (1..5) of A annotators; a clip is positive
            for an annotator when above that annotator's median over the whole video.
    """
    annotator_scores = np.asarray(annotator_scores, dtype=np.float64)
    positive = annotator_scores > np.median(annotator_scores, axis=0)
    length = min(len(scores), len(positive))
    top_clips = rank_clips(scores[:length])[:top_k]
    return float(np.mean(trapezoid_average_precision(positive[top_clips].T)))


def youtube_video_ap(scores: np.ndarray, labels: np.ndarray) -> float:
    """YouTube Highlights AP of one video over the full ranking; ``(C,)`` scores and labels (> 0 is positive)."""
    positive = np.asarray(labels).reshape(len(labels), -1)[:, 0] > 0
    length = min(len(scores), len(positive))
    return float(trapezoid_average_precision(positive[:length][rank_clips(scores[:length])]))


def label_width(references: Records) -> int | None:
    """Numbers per clip in the first row's ``label`` (None when each clip holds a bare number)."""
    labels = references.rows[0].get("label") if len(references) else None
    if isinstance(labels, (list, tuple)) and labels and isinstance(labels[0], (list, tuple)):
        return len(labels[0])
    return None


def per_video_inputs(
    predictions: PathOrRows, references: PathOrRows, max_length_difference: int
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Validated ``(domain, scores (C,), labels (C', ...))`` per video, in prediction order."""
    predictions = as_records(predictions, "predictions")
    references = as_records(references, "ground truth")
    reference_rows = align_by_qid(predictions, references)
    scores, score_counts = ragged_numbers(predictions, "pred_saliency_scores")
    labels, label_counts = ragged_numbers(references, "label", width=label_width(references))
    score_starts = np.cumsum(score_counts) - score_counts
    label_starts = np.cumsum(label_counts) - label_counts
    videos = []
    for index, row in enumerate(reference_rows):
        domain = references.rows[row].get("domain")
        if not isinstance(domain, str):
            raise references.error(int(row), "domain", f"expected the video's domain name, got {domain!r}")
        if abs(int(score_counts[index]) - int(label_counts[row])) > max_length_difference:
            raise predictions.error(
                index,
                "pred_saliency_scores",
                f"{score_counts[index]} scores for {label_counts[row]} labelled clips "
                f"(at most {max_length_difference} apart are truncated to the shorter)",
            )
        video_scores = scores[score_starts[index] : score_starts[index] + score_counts[index]]
        video_labels = labels[label_starts[row] : label_starts[row] + label_counts[row]]
        videos.append((domain, video_scores, video_labels))
    return videos


def domain_means(domains: list[str], values: list[float]) -> dict:
    """``{"per_domain": {domain: percent}, "mean": percent}``: videos averaged per domain, domains equally."""
    by_domain = defaultdict(list)
    for domain, value in zip(domains, values):
        by_domain[domain].append(value)
    per_domain = {domain: float(np.mean(by_domain[domain])) for domain in sorted(by_domain)}
    return {
        "mean": float(f"{100 * np.mean(list(per_domain.values())):.2f}"),
        "per_domain": {domain: float(f"{100 * value:.2f}") for domain, value in per_domain.items()},
    }


def per_video_scores(predictions: PathOrRows, values: list[float]) -> dict[str, float]:
    """``{qid: percent}`` of per-video values given in prediction order (as `per_video_inputs` returns them)."""
    rows = as_records(predictions, "predictions").rows
    return {str(row["qid"]): float(f"{100 * value:.4f}") for row, value in zip(rows, values)}


def evaluate_tvsum(
    predictions: PathOrRows,
    references: PathOrRows,
    top_k: int = TVSUM_TOP_K,
    max_length_difference: int = 1,
    per_video: bool = False,
) -> dict:
    """TVSum top-5 mAP, per category and the mean over categories, in percent (2 decimals).

    Args:
        predictions: a jsonl path or rows with ``qid`` and ``pred_saliency_scores`` (one per clip).
        references: a jsonl path or rows with ``qid``, ``domain`` and ``label`` (clips x 20
            annotators' scores), as in ``tvsum_val_release.jsonl``.

    Returns:
        ``{"top5_mAP": float, "per_domain": {category: float}}``; with ``per_video``, also
        ``"per_video": {qid: float}`` (each video's top-5 AP, the numbers a paired test compares).
    """
    videos = per_video_inputs(predictions, references, max_length_difference)
    if any(labels.ndim != 2 for _, _, labels in videos):
        raise MetricInputError("TVSum 'label' must hold one list of annotator scores per clip")
    values = [tvsum_video_ap(scores, labels, top_k) for _, scores, labels in videos]
    result = domain_means([domain for domain, _, _ in videos], values)
    scores = {f"top{top_k}_mAP": result["mean"], "per_domain": result["per_domain"]}
    return {**scores, "per_video": per_video_scores(predictions, values)} if per_video else scores


def evaluate_youtube_highlights(
    predictions: PathOrRows, references: PathOrRows, max_length_difference: int = 1, per_video: bool = False
) -> dict:
    """YouTube Highlights mAP, per domain and the mean over domains, in percent (2 decimals).

    Args:
        predictions: a jsonl path or rows with ``qid`` and ``pred_saliency_scores`` (one per clip).
        references: a jsonl path or rows with ``qid``, ``domain`` and ``label`` (per clip a number
            or a one-number list; > 0 is a highlight), as in ``youtube_highlight_val_release.jsonl``.

    Returns:
        ``{"mAP": float, "per_domain": {domain: float}}``; with ``per_video``, also ``"per_video"``.
    """
    videos = per_video_inputs(predictions, references, max_length_difference)
    values = [youtube_video_ap(scores, labels) for _, scores, labels in videos]
    result = domain_means([domain for domain, _, _ in videos], values)
    scores = {"mAP": result["mean"], "per_domain": result["per_domain"]}
    return {**scores, "per_video": per_video_scores(predictions, values)} if per_video else scores
