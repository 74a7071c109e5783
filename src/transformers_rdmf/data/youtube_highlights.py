"""YouTube Highlights as UMT splits it: ``splits.json`` (per domain train/val video ids) and
``youtube_anno.json`` (per video frames, fps, domain and per-clip ``match``), read into the annotation
schema of `annotations.ANNOTATION_FEATURES`."""

from __future__ import annotations

import json
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
        if not isinstance(lists, dict) or not all(isinstance(vids, list) for vids in lists.values()):
            raise AnnotationError(splits_path, None, domain, expected)
    return splits


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
    annotations = json.loads((root / "youtube_anno.json").read_text())
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
                "domain": entry.get("domain", name),
                "duration": float(entry["frames"]) / float(entry["fps"]),
                "match": entry.get("match"),
            }
            rows.append(_highlight_row(record, where, "youtube_highlights", None))
    return _rows_to_dataset(rows, "youtube_highlights")
