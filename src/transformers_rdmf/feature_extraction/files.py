"""Feature files and their manifests: atomic writes, completeness checks, the run's report."""

from __future__ import annotations

import logging
import zipfile
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


# A fixed date in every archive entry (``np.savez`` stamps the current time), so the same arrays give the
# same bytes whichever run, process or day wrote them.
ZIP_ENTRY_DATE = (1980, 1, 1, 0, 0, 0)


def write_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """What ``np.savez`` writes (``np.load`` reads it), byte-reproducible: fixed entry dates, in argument order."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for key, array in arrays.items():
            entry = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_ENTRY_DATE)
            with archive.open(entry, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def write_npz_atomically(path: Path, **arrays: np.ndarray) -> None:
    """`write_npz` through `atomic.atomic_write`: an interrupted run leaves no partial file."""
    atomic_write(path, lambda temporary: write_npz(temporary, **arrays))


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
    clips: int = 0  # clips run through the backbones
    decode_seconds: float = 0.0  # the decoding threads' time (they run ahead of the backbones)
    encode_seconds: float = 0.0  # the backbones' time (and writing the files), waits left out
    wait_seconds: float = 0.0  # the backbones' time waiting for decoded frames

    def merged(self, others: list[ExtractionReport]) -> ExtractionReport:
        """This report and ``others`` (every process's) as one: lists joined, counts and times summed."""
        total = ExtractionReport()
        for report in [self, *others]:
            total.written += report.written
            total.skipped += report.skipped
            total.redone += report.redone
            total.failed.update(report.failed)
            total.clips += report.clips
            total.decode_seconds += report.decode_seconds
            total.encode_seconds += report.encode_seconds
            total.wait_seconds += report.wait_seconds
        return total


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
