"""Inference on videos of any length: clip features in overlapping windows, predictions merged.

Models of the field are trained on videos of at most about 150 s: their ``num_moment_queries`` spans are
relative to the input's duration, so one pass over a two-hour video asks each query for a moment of a
few seconds out of 7,200. `predict_long_video` instead runs the model on windows of ``window_clips``
clips (default 75: 150 s of 2 s clips), ``windows_per_batch`` windows at a time, reading each window's
rows from the feature array (a ``np.memmap`` works), so memory depends on the window, not on the video.

Merging (each clip belongs to exactly one window's *core*: overlaps are split at their middle):

- **Saliency** of a clip is taken from the window whose core holds it. RDMF's saliency of a clip depends
  only on the clips within its receptive field, ``diffusion_steps + reaction_steps`` clips on each side
  (banded diffusion, nearest-neighbour Gray-Scott steps, per-clip heads; the query enters as a sentence
  vector). With ``overlap_clips >= 2 *`` that field (the default), every core clip is at least that far
  from its window's inner edges, so **windowed saliency equals the single pass** (to float rounding).
- **Moments**: each window's moments are shifted to the video's time; a moment is kept from the window
  whose core holds its centre; all are ranked by score (eq. 13), non-maximum suppression removes
  overlaps across windows, and the ``top_k`` best remain. The decoder sees one window, so moments are
  not the single pass's: a moment is at most a window long, and scores compare across windows as
  foreground probabilities and predicted IoUs do. Where the video fits in one window, the result *is*
  the single pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .post_processing import post_process_moment_retrieval, rank_spans
from .video_processing_rdmf import iter_clip_frames, plan_clips, preprocess_frames, read_frame_timestamps

DEFAULT_WINDOW_CLIPS = 75


@dataclass(frozen=True)
class Window:
    """Clips ``[start, end)`` run together; the clips ``[core_start, core_end)`` take their predictions from it."""

    start: int
    end: int
    core_start: int
    core_end: int


@dataclass
class LongVideoPrediction:
    """``moments``: ``{"start", "end", "score"}`` in seconds, best first; ``saliency``: one
    ``{"start", "end", "saliency"}`` per clip (sigmoid probabilities); ``windows``: the windows used."""

    moments: list[dict]
    saliency: list[dict]
    windows: list[Window]


def receptive_field(config) -> int:
    """Clips on each side that can change a clip's saliency: diffusion steps plus Gray-Scott steps."""
    diffusion = config.diffusion_steps if config.use_temporal_diffusion else 0
    reaction = config.reaction_steps if config.fusion_type == "reaction_diffusion" else 0
    return diffusion + reaction


def default_overlap(config, window_clips: int) -> int:
    """Twice the model's `receptive_field`, so windowed saliency equals the single pass (less than a window)."""
    return min(2 * receptive_field(config), window_clips - 1)


def plan_windows(num_clips: int, window_clips: int, overlap_clips: int) -> list[Window]:
    """Windows of ``window_clips`` clips every ``window_clips - overlap_clips``, the last ending at the video's end.

    A video of at most ``window_clips`` clips is one window.
    """
    if window_clips < 1 or not 0 <= overlap_clips < window_clips:
        raise ValueError(
            f"window_clips, overlap_clips: expected 0 <= overlap < window, got {window_clips}, {overlap_clips}"
        )
    if num_clips <= window_clips:
        return [Window(0, num_clips, 0, num_clips)]
    stride = window_clips - overlap_clips
    starts = list(range(0, num_clips - window_clips, stride)) + [num_clips - window_clips]
    ends = [start + window_clips for start in starts]
    splits = [(following + previous_end) // 2 for following, previous_end in zip(starts[1:], ends[:-1])]
    cores = zip([0, *splits], [*splits, num_clips])
    return [Window(s, e, cs, ce) for s, e, (cs, ce) in zip(starts, ends, cores)]


def _window_features(video_features, window: Window, normalize: bool) -> torch.Tensor:
    rows = video_features[window.start : window.end]
    rows = (
        rows.float() if isinstance(rows, torch.Tensor) else torch.from_numpy(np.array(rows, dtype=np.float32))
    )
    return torch.nn.functional.normalize(rows, dim=-1) if normalize else rows


def _repeat(inputs: dict, count: int) -> dict:
    """One query's model inputs (batch 1) repeated for ``count`` windows."""
    return {name: value.expand(count, *value.shape[1:]) for name, value in inputs.items()}


@torch.no_grad()
def predict_long_video(
    model,
    video_features,
    query_inputs: dict,
    clip_length: float,
    duration: float | None = None,
    window_clips: int = DEFAULT_WINDOW_CLIPS,
    overlap_clips: int | None = None,
    windows_per_batch: int = 8,
    top_k: int | None = 10,
    nms_threshold: float | None = 0.7,
    normalize: bool = False,
) -> LongVideoPrediction:
    """Moments and per-clip saliency for one query over a video of any length.

    Args:
        model: an `RDMFForMomentRetrieval` in eval mode.
        video_features: ``(clips, video_feature_dim)`` array-like (tensor, array, ``np.memmap``); only one
            batch of windows is read at a time.
        query_inputs: the query's model inputs with batch 1: ``{"text_features": (1, tokens, dim)}``
            (optionally ``text_mask``) or ``{"input_ids", "attention_mask"}``.
        clip_length: seconds per feature row. duration: the video's seconds (default: clips x clip_length).
        window_clips, overlap_clips: the window and the overlap of consecutive windows, in clips; the
            overlap defaults to twice the model's `receptive_field` (so saliency equals the single pass).
        windows_per_batch: windows run together (memory grows with ``windows_per_batch * window_clips``).
        top_k, nms_threshold: as `post_process_moment_retrieval`, applied after the merge.
        normalize: L2-normalise each row as it is read (for raw features on disk).
    """
    num_clips = len(video_features)
    duration = float(duration) if duration is not None else num_clips * clip_length
    if overlap_clips is None:
        overlap_clips = default_overlap(model.config, window_clips)
    windows = plan_windows(num_clips, window_clips, overlap_clips)
    device = next(model.parameters()).device
    query_inputs = {name: value.to(device) for name, value in query_inputs.items()}
    saliency = np.zeros(num_clips, dtype=np.float64)
    candidates: list[dict] = []
    for first in range(0, len(windows), windows_per_batch):
        batch = windows[first : first + windows_per_batch]
        features = torch.stack([_window_features(video_features, w, normalize) for w in batch]).to(device)
        outputs = model(video_features=features, **_repeat(query_inputs, len(batch)))
        window_seconds = [_window_duration(w, num_clips, clip_length, duration) for w in batch]
        moments = post_process_moment_retrieval(outputs, window_seconds, top_k=None)
        probabilities = outputs.saliency_logits.float().sigmoid().cpu().numpy()
        for window, window_moments, row in zip(batch, moments, probabilities):
            saliency[window.core_start : window.core_end] = row[
                window.core_start - window.start : window.core_end - window.start
            ]
            candidates += _core_moments(window_moments, window, num_clips, clip_length, duration)
    return LongVideoPrediction(
        moments=merge_moments(candidates, top_k, nms_threshold),
        saliency=[
            {"start": i * clip_length, "end": (i + 1) * clip_length, "saliency": float(p)}
            for i, p in enumerate(saliency)
        ],
        windows=windows,
    )


def _window_duration(window: Window, num_clips: int, clip_length: float, duration: float) -> float:
    """A window's seconds; the window ending the video runs to its duration (a last partial clip included)."""
    if window.end == num_clips:
        return duration - window.start * clip_length
    return (window.end - window.start) * clip_length


def _core_moments(moments: list[dict], window: Window, num_clips, clip_length, duration) -> list[dict]:
    """A window's moments in the video's seconds, those whose centre lies in the window's core."""
    offset = window.start * clip_length
    core_start = window.core_start * clip_length
    core_end = duration if window.core_end == num_clips else window.core_end * clip_length
    last = window.core_end == num_clips
    kept = []
    for moment in moments:
        start, end = moment["start"] + offset, moment["end"] + offset
        centre = (start + end) / 2
        if core_start <= centre and (centre < core_end or (last and centre <= core_end)):
            kept.append({"start": start, "end": end, "score": moment["score"]})
    return kept


@torch.no_grad()
def embed_video_file(model, video_processor, path, clips_per_batch: int = 32) -> torch.Tensor:
    """A video of any length through the model's own video backbone, decoded a batch of clips at a time.

    Returns:
        ``(clips, video_feature_dim)``: what the model computes from the processor's ``pixel_values``.
    """
    stamps = read_frame_timestamps(path, video_processor.clip_length)
    frames_per_clip = video_processor.frames_per_clip
    sampling = plan_clips(stamps.times, stamps.duration, video_processor.clip_length, frames_per_clip)
    device = next(model.parameters()).device
    parts = []
    for frames in iter_clip_frames(path, stamps.pts, sampling, clips_per_batch):
        pixels = preprocess_frames(video_processor, frames, frames_per_clip).unsqueeze(0).to(device)
        mask = torch.ones(pixels.shape[:2], dtype=torch.long, device=device)
        features, _ = model.rdmf.embed_video(pixels, mask, None)
        parts.append(features[0].cpu())
    return torch.cat(parts)


def merge_moments(moments: list[dict], top_k: int | None, nms_threshold: float | None) -> list[dict]:
    """Rank moments from all windows by score (stable), suppress overlaps above ``nms_threshold``, keep ``top_k``."""
    if not moments:
        return []
    spans = torch.tensor([[m["start"], m["end"]] for m in moments], dtype=torch.float64)
    scores = torch.tensor([m["score"] for m in moments], dtype=torch.float64)
    return [moments[int(i)] for i in rank_spans(spans, scores, top_k, nms_threshold)]


__all__ = [
    "DEFAULT_WINDOW_CLIPS",
    "LongVideoPrediction",
    "Window",
    "default_overlap",
    "embed_video_file",
    "merge_moments",
    "plan_windows",
    "predict_long_video",
    "receptive_field",
]
