"""From model outputs to moments in seconds and per-clip saliency, as plain Python structures."""

import warnings

import torch

from .span_utils import span_cxw_to_xx, temporal_iou


def temporal_nms(spans: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression of 1-D spans.

    Args:
        spans: ``(n, 2)`` (start, end); scores: ``(n,)``.
        iou_threshold: a span is dropped when its IoU with a kept, higher-scored span exceeds this.

    Returns:
        Indices of the kept spans, best first (ties keep the input order).
    """
    order = torch.sort(scores, descending=True, stable=True).indices
    iou = temporal_iou(spans[order], spans[order])
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for rank in range(len(order)):
        if suppressed[rank]:
            continue
        keep.append(int(order[rank]))
        suppressed |= iou[rank] > iou_threshold
    return torch.tensor(keep, dtype=torch.long)


def rank_spans(
    spans: torch.Tensor, scores: torch.Tensor, top_k: int | None, nms_threshold: float | None
) -> torch.Tensor:
    """Indices of ``spans`` ``(n, 2)`` best first by ``scores`` ``(n,)`` (stable), with overlaps above
    ``nms_threshold`` suppressed when it is set, cut to ``top_k`` (all when None)."""
    if nms_threshold is None:
        order = torch.sort(scores, descending=True, stable=True).indices
    else:
        order = temporal_nms(spans, scores, nms_threshold)
    return order[:top_k] if top_k is not None else order


def post_process_moment_retrieval(
    outputs, durations, top_k: int | None = 10, nms_threshold: float | None = None
) -> list[list[dict]]:
    """Ranked moments in seconds for every video of a batch.

    Args:
        outputs: an ``RDMFMomentRetrievalOutput`` (``pred_spans`` normalised (center, width), ``scores``).
        durations: the videos' durations in seconds, one per batch row.
        top_k: keep this many moments per video (all when None).
        nms_threshold: when set, drop a moment whose IoU with a better one exceeds this.

    Returns:
        Per video, a list of ``{"start": s, "end": e, "score": p}`` (seconds, clipped to ``[0, duration]``),
        sorted by score, best first.
    """
    warn_if_moment_head_untrained(outputs)
    spans, scores = outputs.pred_spans.detach().float().cpu(), outputs.scores.detach().float().cpu()
    if len(durations) != len(spans):
        raise ValueError(f"durations: expected {len(spans)} values (one per video), got {len(durations)}.")
    results = []
    for video_spans, video_scores, duration in zip(spans, scores, durations):
        if not duration > 0:
            raise ValueError(f"durations: each must be a positive number of seconds, got {duration!r}.")
        seconds = (span_cxw_to_xx(video_spans) * float(duration)).clamp(min=0, max=float(duration))
        keep = rank_spans(seconds, video_scores, top_k, nms_threshold)
        results.append(
            [
                {"start": float(seconds[i, 0]), "end": float(seconds[i, 1]), "score": float(video_scores[i])}
                for i in keep
            ]
        )
    return results


def warn_if_moment_head_untrained(outputs) -> None:
    """Warn when the outputs come from a checkpoint whose ``config.trained_heads`` lacks ``"moments"``."""
    heads = getattr(outputs, "trained_heads", None)
    if heads is not None and "moments" not in heads:
        warnings.warn(
            f"this checkpoint's moment head was not trained (config.trained_heads={list(heads)}): its "
            "moments come from untrained weights; rank clips by saliency instead (post_process_highlights, "
            "top_clips)",
            UserWarning,
            stacklevel=3,
        )


def post_process_highlights(outputs, clip_length: float) -> list[list[dict]]:
    """Per-clip saliency probabilities (``sigmoid`` of eq. 12's logit, in [0, 1]) with each clip's time span.

    Returns:
        Per video, ``[{"start": s, "end": e, "saliency": p}, ...]`` for its valid clips.
    """
    probabilities = outputs.saliency_logits.detach().float().sigmoid().cpu()
    lengths = outputs.video_mask.sum(dim=1).tolist()
    return [
        [
            {"start": i * clip_length, "end": (i + 1) * clip_length, "saliency": float(p)}
            for i, p in enumerate(row[:n].tolist())
        ]
        for row, n in zip(probabilities, lengths)
    ]


def top_clips(saliency: list[dict], top_k: int | None = 5) -> list[dict]:
    """The ``top_k`` clips of one video by saliency, best first (ties keep clip order).

    Args:
        saliency: one video's list from `post_process_highlights`.
        top_k: how many clips to keep (all when None).

    Returns:
        ``[{"rank": r, "start": s, "end": e, "saliency": p}, ...]`` with ``rank`` from 1.
    """
    order = sorted(range(len(saliency)), key=lambda i: -saliency[i]["saliency"])  # sorted() is stable
    return [{"rank": rank, **saliency[i]} for rank, i in enumerate(order[:top_k], 1)]


__all__ = [
    "post_process_highlights",
    "post_process_moment_retrieval",
    "rank_spans",
    "temporal_nms",
    "top_clips",
    "warn_if_moment_head_untrained",
]
