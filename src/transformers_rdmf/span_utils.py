"""Temporal spans: conversions and (generalised) IoU.

Spans are ``(center, width)`` ("cxw") or ``(start, end)`` ("xx"), normalised to the video's duration
or in seconds; every function works for either unit.
"""

import torch


def span_cxw_to_xx(spans: torch.Tensor) -> torch.Tensor:
    """``(..., 2)`` (center, width) -> ``(..., 2)`` (start, end)."""
    center, width = spans.unbind(-1)
    return torch.stack([center - 0.5 * width, center + 0.5 * width], dim=-1)


def span_xx_to_cxw(spans: torch.Tensor) -> torch.Tensor:
    """``(..., 2)`` (start, end) -> ``(..., 2)`` (center, width)."""
    start, end = spans.unbind(-1)
    return torch.stack([0.5 * (start + end), end - start], dim=-1)


def _intersection_and_union(
    spans_a: torch.Tensor, spans_b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    start_a, end_a = spans_a[:, None, 0], spans_a[:, None, 1]
    start_b, end_b = spans_b[None, :, 0], spans_b[None, :, 1]
    intersection = (torch.minimum(end_a, end_b) - torch.maximum(start_a, start_b)).clamp(min=0)
    union = (end_a - start_a) + (end_b - start_b) - intersection
    return intersection, union


def temporal_iou(spans_a: torch.Tensor, spans_b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of ``(n, 2)`` and ``(m, 2)`` (start, end) spans -> ``(n, m)``; 0 where the union is empty."""
    intersection, union = _intersection_and_union(spans_a, spans_b)
    return torch.where(union > 0, intersection / union.clamp(min=1e-12), torch.zeros_like(union))


def generalized_temporal_iou(spans_a: torch.Tensor, spans_b: torch.Tensor) -> torch.Tensor:
    """Pairwise generalised IoU (Rezatofighi et al. 2019) in 1-D -> ``(n, m)``, in [-1, 1].

    ``GIoU = IoU - (hull - union) / hull`` with ``hull`` the smallest span enclosing both.
    """
    intersection, union = _intersection_and_union(spans_a, spans_b)
    iou = intersection / union.clamp(min=1e-12)
    hull = torch.maximum(spans_a[:, None, 1], spans_b[None, :, 1]) - torch.minimum(
        spans_a[:, None, 0], spans_b[None, :, 0]
    )
    return iou - (hull - union) / hull.clamp(min=1e-12)


__all__ = ["generalized_temporal_iou", "span_cxw_to_xx", "span_xx_to_cxw", "temporal_iou"]
