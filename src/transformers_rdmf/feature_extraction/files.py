"""Feature files and their manifests: atomic writes, completeness checks, the run's report."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_write, atomic_write_json
from ..feature_manifest import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    read_manifest,
    require_agreement,
    signature,
)
from .encoders import VideoEncoder

logger = logging.getLogger(__name__)


def write_npz_atomically(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez`` through `atomic.atomic_write`: an interrupted run leaves no partial file."""
    atomic_write(path, lambda temporary: np.savez(temporary, **arrays))


def feature_file_is_complete(path: Path, key: str, rows: int | None, dim: int) -> bool:
    """Whether ``path`` loads whole with ``key`` of shape ``(rows, dim)`` (any row count when None), all finite."""
    if not path.is_file():
        return False
    try:
        with np.load(path) as archive:
            array = archive[key]
    except Exception:  # a truncated or corrupt archive fails in many ways (zipfile, zlib, numpy)
        return False
    return (
        array.ndim == 2
        and (rows is None or array.shape[0] == rows)
        and array.shape[1] == dim
        and bool(np.isfinite(array).all())
    )


@dataclass
class ExtractionReport:
    """What a run did: ids written, skipped (already complete), redone (found incomplete, written again) and
    failed (``{id: reason}``: a video that could not be read or decoded; the run went on past it)."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    redone: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _open_stream_manifest(folder: Path, expected: dict) -> dict:
    """The folder's manifest, created when absent; an existing one must have the same signature."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(folder)
    if manifest is None:
        manifest = {**expected, "videos" if expected["kind"] == "video" else "queries": {}}
        atomic_write_json(folder / MANIFEST_NAME, manifest)
        return manifest
    require_agreement(
        manifest,
        signature(expected),
        f"existing features in {folder} ({MANIFEST_NAME})",
        "this run (write to another --out folder, or delete the old features)",
    )
    return manifest


def _video_manifest(encoder: VideoEncoder, clip_length: float, frames_per_clip: int) -> dict:
    return {
        "format": MANIFEST_FORMAT,
        "kind": "video",
        "stream": encoder.name,
        "layout": "{vid}.npz with 'features' (clips, feature_dim) float32, one row per clip",
        "backbone": encoder.backbone,
        "weights": encoder.weights,
        "feature_dim": int(encoder.feature_dim),
        "clip_length": float(clip_length),
        "frames_per_clip": int(frames_per_clip),
        "sampled_fps": frames_per_clip / clip_length,
        "preprocessing": encoder.preprocessing,
    }
