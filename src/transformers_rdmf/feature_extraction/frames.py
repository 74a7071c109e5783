"""Decoded frames of a video, a batch of clips at a time."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import numpy as np
import torch

from ..video_processing_rdmf import (
    ClipSampling,
    iter_wanted_frames,
)

logger = logging.getLogger(__name__)


def iter_clip_frames(
    path: str | os.PathLike, pts: np.ndarray, sampling: ClipSampling, clips_per_batch: int
) -> Iterator[torch.Tensor]:
    """Decode ``path`` once, yielding the sampled frames of ``clips_per_batch`` clips at a time.

    Only the frames still needed by a clip not yet yielded are kept, so memory is one batch of clips
    whatever the video's length.

    Args:
        pts: ``(frames,)`` the stream's presentation timestamps (`read_frame_timestamps`).
        sampling: the clip plan (`plan_clips`) over those frames.

    Yields:
        ``(clips_in_batch * frames_per_clip, 3, height, width)`` uint8, clip-major, in clip order.
    """
    wanted = pts[sampling.frame_indices]  # (clips, frames_per_clip)
    wanted_set = set(wanted.reshape(-1).tolist())
    kept: dict[int, np.ndarray] = {}
    next_clip, batch = 0, []
    for frame_pts, image in iter_wanted_frames(path, wanted_set):
        kept[frame_pts] = image
        while next_clip < len(wanted) and all(int(p) in kept for p in wanted[next_clip]):
            batch.extend(kept[int(p)] for p in wanted[next_clip])
            next_clip += 1
            if next_clip < len(wanted):
                oldest_needed = int(wanted[next_clip:].min())
                kept = {p: f for p, f in kept.items() if p >= oldest_needed}
            if len(batch) == clips_per_batch * wanted.shape[1]:
                yield torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2)
                batch = []
        if next_clip == len(wanted):
            break
    if next_clip < len(wanted):
        missing = sorted(int(p) for p in wanted[next_clip:].reshape(-1) if int(p) not in kept)
        raise ValueError(f"videos: {path}: the decoder returned no frame at pts {missing[:5]}")
    if batch:
        yield torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2)
