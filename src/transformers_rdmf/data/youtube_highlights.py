"""YouTube Highlights as UMT splits it: ``splits.json`` (per domain train/val video ids) and
``youtube_anno.json`` (per video frames, fps, domain and per-clip ``match``), read into the annotation
schema of `annotations.ANNOTATION_FEATURES`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import datasets

from .annotations import AnnotationError, _highlight_row, _rows_to_dataset, _Where


def read_splits(splits_path: Path) -> dict[str, dict[str, list]]:
    """``{domain: {split: [vid, ...]}}`` from a splits file, or an `AnnotationError` naming it and what is wrong."""
    if not splits_path.is_file():
        raise FileNotFoundError(f"splits file not found: {splits_path}")
    try:
        splits = json.loads(splits_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise AnnotationError(splits_path, None, None, f"not valid JSON ({error})") from None
    expected = 'expected {"domain": {"train": [vid, ...], "val": [vid, ...]}, ...}'
    if not isinstance(splits, dict):
        raise AnnotationError(splits_path, None, None, f"{expected}, got {type(splits).__name__}")
    for domain, lists in splits.items():
        if not isinstance(lists, dict) or not all(
            isinstance(vids, list) and all(isinstance(vid, str) for vid in vids) for vids in lists.values()
        ):
            raise AnnotationError(splits_path, None, domain, expected + " (video ids are strings)")
    return splits


def read_video_annotations(path: Path) -> dict[str, dict]:
    """``youtube_anno.json``: ``{vid: {"frames", "fps", "match", ...}}``, or an `AnnotationError` naming it."""
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    try:
        annotations = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise AnnotationError(path, None, None, f"not valid JSON ({error})") from None
    if not isinstance(annotations, dict):
        raise AnnotationError(
            path, None, None, f"expected {{vid: {{frames, fps, match}}}}, got {type(annotations).__name__}"
        )
    return annotations


def video_duration(entry: object, where: _Where, vid: str) -> float:
    """Seconds of a ``youtube_anno.json`` entry: frames / fps, both positive numbers (the release writes
    them as strings, ``"576"``)."""
    if not isinstance(entry, dict):
        raise where.error(vid, f"expected an object with frames, fps and match, got {type(entry).__name__}")
    values = []
    for name in ("frames", "fps"):
        value = entry.get(name)
        try:
            number = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            number = math.nan
        if not (math.isfinite(number) and number > 0):
            raise where.error(vid, f"{name}: expected a positive number, got {value!r}")
        values.append(number)
    return values[0] / values[1]


def load_youtube_highlights(
    root: str | Path, split: str, domain: str | None = None, splits_file: str | Path | None = None
) -> datasets.Dataset:
    """YouTube Highlights as in UMT's splits: ``splits.json`` (per domain train/val) + ``youtube_anno.json``.

    The query is the domain name; duration = frames / fps; a clip is a highlight when ``match > 0``;
    clip length = duration / number of clips. ``splits_file`` replaces ``root/splits.json`` (same form:
    per domain ``{"train": [vid, ...], "val": [...]}``), e.g. with a fold of the train videos.
    """
    root = Path(root)
    splits_path = Path(splits_file) if splits_file is not None else root / "splits.json"
    splits = read_splits(splits_path)
    annotations = read_video_annotations(root / "youtube_anno.json")
    rows = []
    for name in sorted(splits):
        if domain is not None and name != domain:
            continue
        if split not in splits[name]:
            raise AnnotationError(splits_path, None, name, f"no {split!r} list of video ids")
        for vid in splits[name][split]:
            entry = annotations.get(vid)
            where = _Where(root / "youtube_anno.json", None)
            if entry is None:
                raise where.error(vid, f"video listed in {splits_path.name} has no annotation")
            record = {
                "qid": vid,
                "vid": vid,
                "query": name,
                "duration": video_duration(entry, where, vid),
                "domain": entry.get("domain", name),
                "match": entry.get("match"),
            }
            rows.append(_highlight_row(record, where, "youtube_highlights", None))
    return _rows_to_dataset(rows, "youtube_highlights")
