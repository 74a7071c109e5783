"""`extract_video_features`: the videos of a folder or list, through every backbone, resumable."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..atomic import atomic_write_json
from ..feature_manifest import (
    MANIFEST_NAME,
)
from ..video_processing_rdmf import (
    ClipSampling,
    iter_clip_frames,
    plan_clips,
    read_frame_timestamps,
)
from .encoders import VIDEO_EXTENSIONS, VideoEncoder
from .files import (
    ExtractionReport,
    _open_stream_manifest,
    _video_manifest,
    feature_file_is_complete,
    write_npz_atomically,
)

logger = logging.getLogger(__name__)


def list_videos(videos: str | os.PathLike | Iterable[str | os.PathLike]) -> list[tuple[str, Path]]:
    """``(vid, path)`` pairs: a folder (its video files, sorted), a ``.txt`` list (one path a line), or paths.

    The video id is the file name without extension; two videos with the same id are an error.
    """
    if isinstance(videos, (str, os.PathLike)):
        source = Path(videos)
        if source.is_dir():
            paths = sorted(p for p in source.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
            if not paths:
                raise ValueError(f"--videos: no video files ({', '.join(VIDEO_EXTENSIONS)}) in {source}")
        elif source.suffix == ".txt" and source.is_file():
            lines = [line.strip() for line in source.read_text().splitlines()]
            paths = [
                Path(line) if Path(line).is_absolute() else source.parent / line for line in lines if line
            ]
        else:
            paths = [source]
    else:
        paths = [Path(p) for p in videos]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"--videos: no file at {path}")
    pairs, seen = [], {}
    for path in paths:
        if path.stem in seen:
            raise ValueError(f"--videos: {seen[path.stem]} and {path} have the same video id {path.stem!r}")
        seen[path.stem] = path
        pairs.append((path.stem, path))
    return pairs


def extract_video_features(
    videos,
    out_dir: str | os.PathLike,
    encoders: Sequence[VideoEncoder],
    clip_length: float = 2.0,
    frames_per_clip: int = 1,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> ExtractionReport:
    """Write ``out_dir/{encoder.name}/{vid}.npz`` (``features`` ``(clips, dim)``) for every video and encoder.

    Args:
        videos: a folder, a ``.txt`` list of paths, or a list of paths (see `list_videos`).
        encoders: the backbones (`clip_image_encoder`, `swin3d_encoder`, `timm_encoder`), one folder each.
        clip_length, frames_per_clip: the clip plan (as `RDMFVideoProcessor`).
        batch_size: clips decoded and run through the backbones at a time.

    Returns:
        An `ExtractionReport`. A video whose every file is complete is skipped; a stream file that is
        missing rows or unreadable is written again.

    Raises:
        FeatureManifestError: the output folder holds features made with other settings.
        ValueError, FileNotFoundError: an unreadable video or bad arguments, naming them.
    """
    if not encoders:
        raise ValueError("encoders: give at least one backbone")
    if len({e.name for e in encoders}) != len(encoders):
        raise ValueError(f"encoders: stream names must differ, got {[e.name for e in encoders]}")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    if not (math.isfinite(clip_length) and clip_length > 0):
        raise ValueError(f"clip_length: expected a positive number of seconds, got {clip_length}")
    if frames_per_clip < 1:
        raise ValueError(f"frames_per_clip: expected a positive integer, got {frames_per_clip}")
    pairs = list_videos(videos)
    out_dir = Path(out_dir)
    folders = [out_dir / encoder.name for encoder in encoders]
    manifests = [
        _open_stream_manifest(folder, _video_manifest(encoder, clip_length, frames_per_clip))
        for folder, encoder in zip(folders, encoders)
    ]
    for encoder in encoders:
        encoder.module.to(device)
    report = ExtractionReport()
    bar = tqdm(pairs, desc="extract", unit="video", disable=not progress)
    for vid, path in bar:
        bar.set_postfix_str(vid)
        try:
            _extract_one_video(
                vid, path, folders, manifests, encoders, clip_length, frames_per_clip, batch_size, report
            )
        except ValueError as error:  # unreadable or undecodable: reported, and the others still run
            report.failed[vid] = str(error).removeprefix("videos: ")
            logger.warning("%s: skipped: %s", vid, report.failed[vid])
    return report


def _extract_one_video(
    vid, path, folders, manifests, encoders, clip_length, frames_per_clip, batch_size, report
):
    """One video's features for every encoder whose file is not complete yet (see `extract_video_features`)."""
    stamps = read_frame_timestamps(path, clip_length)
    sampling = plan_clips(stamps.times, stamps.duration, clip_length, frames_per_clip)
    todo = [
        index
        for index, (folder, encoder) in enumerate(zip(folders, encoders))
        if not feature_file_is_complete(
            folder / f"{vid}.npz", "features", sampling.num_clips, encoder.feature_dim
        )
    ]
    if not todo:
        report.skipped.append(vid)
        return
    if any((folders[i] / f"{vid}.npz").exists() for i in todo):
        logger.warning("%s: incomplete feature file(s) found, extracting again", vid)
        report.redone.append(vid)
    features = _encode_video(path, stamps.pts, sampling, [encoders[i] for i in todo], batch_size)
    for index, array in zip(todo, features):
        write_npz_atomically(folders[index] / f"{vid}.npz", features=array)
        manifests[index]["videos"][vid] = {"clips": sampling.num_clips, "duration": sampling.duration}
        atomic_write_json(folders[index] / MANIFEST_NAME, manifests[index])
    report.written.append(vid)


def _encode_video(path, pts, sampling: ClipSampling, encoders: list[VideoEncoder], batch_size: int):
    """Per encoder, ``(clips, feature_dim)`` float32 for the whole video, computed a batch of clips at a time."""
    frames_per_clip = sampling.frame_indices.shape[1]
    parts: list[list[torch.Tensor]] = [[] for _ in encoders]
    for frames in iter_clip_frames(path, pts, sampling, batch_size):
        for part, encoder in zip(parts, encoders):
            part.append(encoder.encode(frames, frames_per_clip))
    return [torch.cat(part).numpy().astype(np.float32) for part in parts]
