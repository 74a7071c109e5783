"""`extract_video_features`: the videos of a folder or list, through every backbone, resumable."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..atomic import atomic_write_json
from ..errors import require_positive_integer, require_positive_seconds
from ..feature_manifest import MANIFEST_NAME, FeatureManifestError
from .decoding import DecodeAhead, PlannedVideo, clip_plan
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
            if not paths:
                raise ValueError(f"--videos: {source} lists no videos (expected one path a line)")
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


def shard_of(pairs: Sequence, process_index: int, num_processes: int) -> list:
    """The videos one process extracts: every ``num_processes``-th from its index (deterministic, balanced)."""
    return list(pairs[process_index::num_processes])


def extract_video_features(
    videos,
    out_dir: str | os.PathLike,
    encoders: Sequence[VideoEncoder],
    clip_length: float = 2.0,
    frames_per_clip: int = 1,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    progress: bool = True,
    *,
    decode_threads: int = 1,
    mixed_precision: str = "no",
    state=None,
) -> ExtractionReport:
    """Write ``out_dir/{encoder.name}/{vid}.npz`` (``features`` ``(clips, dim)``) for every video and encoder.

    Under ``accelerate launch`` the videos are split over the processes (`shard_of`); each writes its own
    videos' files, and the main process merges one manifest per stream. The files are the same, byte for
    byte, whatever the number of processes (at the same thread count and device).

    Args:
        videos: a folder, a ``.txt`` list of paths, or a list of paths (see `list_videos`).
        encoders: the backbones (`clip_image_encoder`, `swin3d_encoder`, `timm_encoder`), one folder each.
        clip_length, frames_per_clip: the clip plan (as `RDMFVideoProcessor`).
        batch_size: clips decoded and run through the backbones at a time.
        decode_threads: threads decoding the next videos while the backbones run (`DecodeAhead`).
        mixed_precision: "no", "bf16" or "fp16": the backbones under ``torch.autocast`` (features are
            stored as float32 either way; the manifest records the precision).
        state: an ``accelerate.PartialState`` (default: the launch's, one process outside ``accelerate launch``).

    Returns:
        The `ExtractionReport` of every process (each process returns the merged one). A video whose
        every file is complete is skipped; a stream file that is missing rows or unreadable is written again.

    Raises:
        FeatureManifestError: the output folder holds features made with other settings.
        ValueError, FileNotFoundError: bad arguments or video paths, naming them.
    """
    from accelerate import PartialState
    from accelerate.utils import gather_object

    _check_arguments(encoders, clip_length, frames_per_clip, batch_size, mixed_precision)
    state = state if state is not None else PartialState()
    pairs = list_videos(videos)
    folders = [Path(out_dir) / encoder.name for encoder in encoders]
    with state.main_process_first():  # the main process creates the manifests; the others then read them
        manifests = [
            _open_stream_manifest(folder, _video_manifest(encoder, clip_length, frames_per_clip))
            for folder, encoder in zip(folders, encoders)
        ]
    for folder, manifest in zip(folders, manifests):
        found = manifest.get("mixed_precision", mixed_precision)
        if found != mixed_precision:
            raise FeatureManifestError(
                f"existing features in {folder} ({MANIFEST_NAME}): mixed_precision: {found!r} in the features, "
                f"{mixed_precision!r} expected by this run (extract with the same precision, or to another --out)"
            )
    for encoder in encoders:
        encoder.module.to(device)
    mine = shard_of(pairs, state.process_index, state.num_processes)
    report, entries = _extract_shard(
        mine, folders, encoders, clip_length, frames_per_clip, batch_size, decode_threads,
        _autocast(device, mixed_precision), progress and state.is_main_process,
    )  # fmt: skip
    if state.num_processes > 1:
        gathered = gather_object([(report, entries)])
        report = gathered[0][0].merged([r for r, _ in gathered[1:]])
        entries = {vid: entry for _, part in gathered for vid, entry in part.items()}
    if state.is_main_process:
        _write_manifests(folders, manifests, pairs, entries, mixed_precision)
    state.wait_for_everyone()
    return report


def _check_arguments(encoders, clip_length, frames_per_clip, batch_size, mixed_precision) -> None:
    if not encoders:
        raise ValueError("encoders: give at least one backbone")
    if len({e.name for e in encoders}) != len(encoders):
        raise ValueError(f"encoders: stream names must differ, got {[e.name for e in encoders]}")
    require_positive_integer("batch_size", batch_size)
    require_positive_seconds("clip_length", clip_length)
    require_positive_integer("frames_per_clip", frames_per_clip)
    if mixed_precision not in PRECISIONS:
        raise ValueError(f"mixed_precision: expected one of {', '.join(PRECISIONS)}, got {mixed_precision!r}")


PRECISIONS = {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _autocast(device, mixed_precision: str):
    """A fresh ``torch.autocast`` context per call for the precision (a no-op context for "no")."""
    dtype = PRECISIONS[mixed_precision]
    kind = torch.device(device).type
    if dtype is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=kind, dtype=dtype)


def _extract_shard(
    pairs, folders, encoders, clip_length, frames_per_clip, batch_size, decode_threads, autocast, progress
) -> tuple[ExtractionReport, dict]:
    """This process's videos: ``(report, {vid: manifest entry})`` (entries for skipped videos too)."""
    report, entries = ExtractionReport(), {}

    def needs(vid, sampling):
        return [
            index
            for index, (folder, encoder) in enumerate(zip(folders, encoders))
            if not feature_file_is_complete(
                folder / f"{vid}.npz", "features", sampling.num_clips, encoder.feature_dim
            )
        ]

    plan = clip_plan(clip_length, frames_per_clip)
    bar = tqdm(total=len(pairs), desc="extract", unit="video", disable=not progress)
    start = time.perf_counter()
    with DecodeAhead(pairs, plan, needs, batch_size, decode_threads) as decoded:
        for video in decoded:
            bar.set_postfix_str(video.vid)
            try:
                _extract_one_video(video, folders, encoders, autocast, report)
                entries[video.vid] = {"clips": video.sampling.num_clips, "duration": video.sampling.duration}
            except ValueError as error:  # unreadable or undecodable: reported, and the others still run
                report.failed[video.vid] = str(error).removeprefix("videos: ")
                logger.warning("%s: skipped: %s", video.vid, report.failed[video.vid])
            bar.update()
        report.decode_seconds, report.wait_seconds = decoded.decode_seconds, decoded.wait_seconds
    report.encode_seconds = time.perf_counter() - start - report.wait_seconds
    bar.close()
    return report, entries


def _extract_one_video(video: PlannedVideo, folders, encoders, autocast, report: ExtractionReport) -> None:
    """One video's features for every encoder whose file is not complete yet (see `extract_video_features`)."""
    if video.error is not None:
        raise ValueError(video.error)
    if not video.todo:
        report.skipped.append(video.vid)
        return
    if any((folders[i] / f"{video.vid}.npz").exists() for i in video.todo):
        logger.warning("%s: incomplete feature file(s) found, extracting again", video.vid)
        report.redone.append(video.vid)
    features = _encode_video(video, [encoders[i] for i in video.todo], autocast)
    report.clips += video.sampling.num_clips
    for index, array in zip(video.todo, features):
        write_npz_atomically(folders[index] / f"{video.vid}.npz", features=array)
    report.written.append(video.vid)


def _encode_video(video: PlannedVideo, encoders: list[VideoEncoder], autocast):
    """Per encoder, ``(clips, feature_dim)`` float32 for the whole video, computed a batch of clips at a time."""
    frames_per_clip = video.sampling.frame_indices.shape[1]
    parts: list[list[torch.Tensor]] = [[] for _ in encoders]
    for frames in video.batches:
        for part, encoder in zip(parts, encoders):
            with autocast():
                part.append(encoder.encode(frames, frames_per_clip).float())
    return [torch.cat(part).numpy().astype(np.float32) for part in parts]


def _write_manifests(folders, manifests, pairs, entries: dict, mixed_precision: str) -> None:
    """Each stream's manifest with every extracted video's entry, in the order of the video list."""
    for folder, manifest in zip(folders, manifests):
        known = manifest["videos"]
        for vid, _ in pairs:
            if vid in entries:
                known[vid] = entries[vid]
        manifest["videos"] = dict(sorted(known.items()))
        manifest["mixed_precision"] = mixed_precision
        atomic_write_json(folder / MANIFEST_NAME, manifest)
