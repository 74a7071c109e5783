"""Annotation loaders for moment retrieval and highlight detection, built on `datasets`.

Every loader returns a `datasets.Dataset` with the schema `ANNOTATION_FEATURES`, one row per query:

- ``windows`` (n, 2): ground-truth windows ``[start, end]`` in seconds (empty for highlight-only data);
- ``spans`` (n, 2): the same windows as normalised ``(center, width)`` by the duration;
- ``saliency_scores`` (L, A): raw per-clip scores (QVHighlights: 3 annotators 0..4; TVSum: 20
  annotators 1..5; YouTube Highlights: ``match`` in {-1, 0, 1}; Charades-STA / ActivityNet:
  1 inside a window else 0); empty when the file has no labels;
- ``saliency_target`` (L,): the per-clip target in [0, 1] for the saliency head.

The input is the unified jsonl (one JSON object a line: ``qid``, ``query``, ``vid``, ``duration``,
``relevant_windows``, ...). Bad input raises `AnnotationError` naming the file, line and field.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from datasets import Features, Sequence, Value

from ..dataset_specs import (  # noqa: F401 (re-exported by transformers_rdmf.data)
    DATASETS,
    HIGHLIGHT_DATASETS,
    MOMENT_DATASETS,
    TVSUM_DOMAINS,
    YOUTUBE_HIGHLIGHTS_DOMAINS,
)
from ..metrics.inputs import WINDOW_END_TOLERANCE

logger = logging.getLogger(__name__)

ANNOTATION_FEATURES = Features(
    {
        "dataset": Value("string"),
        "qid": Value("string"),
        "query": Value("string"),
        "vid": Value("string"),
        "domain": Value("string"),
        "duration": Value("float64"),
        "clip_length": Value("float64"),
        "num_clips": Value("int32"),
        "has_labels": Value("bool"),
        "windows": Sequence(Sequence(Value("float64"), length=2)),
        "spans": Sequence(Sequence(Value("float32"), length=2)),
        "saliency_scores": Sequence(Sequence(Value("float32"))),
        "saliency_target": Sequence(Value("float32")),
        "num_windows_clipped": Value("int32"),
    }
)

# Clip length in seconds of the features each dataset is usually used with; None: per video.
DEFAULT_CLIP_LENGTHS: dict[str, float | None] = {name: spec.clip_length for name, spec in DATASETS.items()}


class AnnotationError(ValueError):
    """A malformed annotation; the message names the file, the line (1-based) and the field."""

    def __init__(self, path: str | Path, line: int | None, field: str | None, problem: str):
        self.path, self.line, self.field = str(path), line, field
        where = (
            str(path)
            + (f", line {line}" if line is not None else "")
            + (f", field '{field}'" if field else "")
        )
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class _Where:
    path: Path
    line: int | None

    def error(self, field: str | None, problem: str) -> AnnotationError:
        return AnnotationError(self.path, self.line, field, problem)


def num_clips_for(duration: float, clip_length: float) -> int:
    """Number of clips of ``clip_length`` seconds that cover ``duration`` seconds (the last may be partial)."""
    return max(1, math.ceil(duration / clip_length - 1e-6))


def windows_to_spans(windows: np.ndarray, duration: float) -> np.ndarray:
    """``[start, end]`` seconds (n, 2) -> normalised ``(center, width)`` (n, 2) float32 in [0, 1]."""
    windows = np.asarray(windows, dtype=np.float64).reshape(-1, 2)
    center = (windows[:, 0] + windows[:, 1]) / 2 / duration
    width = (windows[:, 1] - windows[:, 0]) / duration
    return np.clip(np.stack([center, width], axis=1), 0.0, 1.0).astype(np.float32)


def clips_inside_windows(windows: np.ndarray, num_clips: int, clip_length: float) -> np.ndarray:
    """(L,) float32: 1 for clips whose center lies in a window, else 0.

    A window shorter than a clip that contains no clip center marks the clip holding its midpoint,
    so that every window has at least one positive clip.
    """
    centers = (np.arange(num_clips) + 0.5) * clip_length
    inside = np.zeros(num_clips, dtype=np.float32)
    for start, end in np.asarray(windows, dtype=np.float64).reshape(-1, 2):
        hit = (centers >= start) & (centers <= end)
        if not hit.any():
            hit[min(int((start + end) / 2 // clip_length), num_clips - 1)] = True
        inside[hit] = 1.0
    return inside


def fraction_above_own_median(scores: np.ndarray) -> np.ndarray:
    """(L, A) annotator scores -> (L,) share of annotators scoring the clip above their own median."""
    scores = np.asarray(scores, dtype=np.float64)
    return (scores > np.median(scores, axis=0, keepdims=True)).mean(axis=1).astype(np.float32)


def read_jsonl(path: str | Path) -> list[tuple[_Where, dict[str, Any]]]:
    """Parse a jsonl file into ``(where, record)`` pairs; blank lines are skipped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            where = _Where(path, number)
            try:
                record = json.loads(text)
            except json.JSONDecodeError as err:
                raise where.error(None, f"malformed JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(record, dict):
                raise where.error(None, f"expected a JSON object, got {type(record).__name__}")
            records.append((where, record))
    return records


def _field(record: dict, name: str, where: _Where, kinds: tuple[type, ...]) -> Any:
    if name not in record:
        raise where.error(name, "missing field")
    value = record[name]
    if not isinstance(value, kinds) or isinstance(value, bool):
        names = " or ".join(kind.__name__ for kind in kinds)
        raise where.error(name, f"expected {names}, got {type(value).__name__} {value!r}")
    return value


# a video of more clips than this is a typo in its duration, not a video (a million 2 s clips: 23 days)
MAX_CLIPS_PER_VIDEO = 1_000_000


def _identity(record: dict, where: _Where) -> dict[str, Any]:
    duration = float(_field(record, "duration", where, (int, float)))
    if not (math.isfinite(duration) and duration > 0):
        raise where.error("duration", f"expected a positive, finite number of seconds, got {duration}")
    return {
        "qid": str(_field(record, "qid", where, (int, str))),
        "query": _field(record, "query", where, (str,)).strip(),
        "vid": str(_field(record, "vid", where, (str, int))),
        "duration": duration,
    }


def _checked_windows(
    record: dict, where: _Where, duration: float, tolerance: float
) -> tuple[np.ndarray, int]:
    """Validated windows (n, 2) in seconds and how many were clipped to the duration."""
    raw = _field(record, "relevant_windows", where, (list,))
    windows, clipped = [], 0
    for index, window in enumerate(raw):
        if (
            not isinstance(window, list)
            or len(window) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in window)
        ):
            raise where.error(
                "relevant_windows", f"window {index} is {window!r}, expected [start, end] numbers"
            )
        start, end = float(window[0]), float(window[1])
        if start > end:
            raise where.error("relevant_windows", f"window {index} {window} has start > end")
        if start < 0:
            raise where.error("relevant_windows", f"window {index} {window} starts before 0")
        if end > duration + tolerance:
            raise where.error(
                "relevant_windows", f"window {index} {window} ends past the duration {duration} s"
            )
        if end > duration:
            end, clipped = duration, clipped + 1
        if start >= duration:
            raise where.error(
                "relevant_windows", f"window {index} {window} starts at or past the duration {duration} s"
            )
        windows.append((start, end))
    return np.asarray(windows, dtype=np.float64).reshape(-1, 2), clipped


def _qvhighlights_scores(record: dict, where: _Where, num_clips: int) -> np.ndarray:
    """(L, 3) annotators' scores placed at ``relevant_clip_ids``; zeros elsewhere."""
    clip_ids = _field(record, "relevant_clip_ids", where, (list,))
    scores = _field(record, "saliency_scores", where, (list,))
    if len(clip_ids) != len(scores):
        raise where.error(
            "saliency_scores", f"{len(scores)} score rows for {len(clip_ids)} relevant_clip_ids"
        )
    dense = np.zeros((num_clips, 3), dtype=np.float32)
    for clip_id, row in zip(clip_ids, scores):
        if not isinstance(clip_id, int) or not 0 <= clip_id < num_clips:
            raise where.error("relevant_clip_ids", f"clip id {clip_id!r} outside 0..{num_clips - 1}")
        if not isinstance(row, list) or len(row) != 3:
            raise where.error("saliency_scores", f"row {row!r} for clip {clip_id} is not 3 scores")
        if not all(_is_number(score) and 0 <= score <= QVHIGHLIGHTS_MAX_SCORE for score in row):
            raise where.error(
                "saliency_scores",
                f"row {row!r} for clip {clip_id}: expected scores in 0..{QVHIGHLIGHTS_MAX_SCORE}",
            )
        dense[clip_id] = row
    return dense


QVHIGHLIGHTS_MAX_SCORE = 4  # each annotator rates a clip 0 (very bad) to 4 (very good)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _custom_scores(record: dict, where: _Where, num_clips: int) -> np.ndarray:
    """(L, A) per-clip scores of the simple schema: one value (or one list of A values) per clip, or,
    with ``relevant_clip_ids``, one per listed clip (zeros elsewhere)."""
    clip_ids = record.get("relevant_clip_ids")
    table = _per_clip_table(record, where, "saliency_scores", None)
    if clip_ids is None:
        if table.shape[0] != num_clips:
            raise where.error(
                "saliency_scores",
                f"{table.shape[0]} rows for {num_clips} clips (duration / clip length, rounded up); "
                "give one score per clip, or relevant_clip_ids",
            )
        return table
    if not isinstance(clip_ids, list) or len(clip_ids) != table.shape[0]:
        raise where.error(
            "saliency_scores", f"{table.shape[0]} score rows for relevant_clip_ids {clip_ids!r}"
        )
    dense = np.zeros((num_clips, table.shape[1]), dtype=np.float32)
    for clip_id, row in zip(clip_ids, table):
        if not isinstance(clip_id, int) or isinstance(clip_id, bool) or not 0 <= clip_id < num_clips:
            raise where.error("relevant_clip_ids", f"clip id {clip_id!r} outside 0..{num_clips - 1}")
        dense[clip_id] = row
    return dense


def _moment_row(record, where, dataset, clip_length, with_labels, tolerance) -> dict[str, Any]:
    row = _identity(record, where)
    num_clips = num_clips_for(row["duration"], clip_length)
    if num_clips > MAX_CLIPS_PER_VIDEO:
        raise where.error(
            "duration",
            f"{row['duration']} s is {num_clips} clips of {clip_length} s; at most {MAX_CLIPS_PER_VIDEO} are read",
        )
    row.update(domain="", clip_length=clip_length, num_clips=num_clips, has_labels=with_labels)
    if not with_labels:
        windows, clipped = np.zeros((0, 2)), 0
        scores, target = np.zeros((0, 0), dtype=np.float32), np.zeros(num_clips, dtype=np.float32)
    else:
        windows, clipped = _checked_windows(record, where, row["duration"], tolerance)
        target = clips_inside_windows(windows, num_clips, clip_length)
        if dataset == "qvhighlights":
            scores = _qvhighlights_scores(record, where, num_clips)
        elif dataset == "custom" and record.get("saliency_scores") is not None:
            scores = _custom_scores(record, where, num_clips)
        else:
            scores = target[:, None]
    row.update(windows=windows, spans=windows_to_spans(windows, row["duration"]), num_windows_clipped=clipped)
    row.update(saliency_scores=scores, saliency_target=target)
    return row


def _per_clip_table(record: dict, where: _Where, name: str, width: int | None) -> np.ndarray:
    table = _field(record, name, where, (list,))
    try:
        array = np.asarray(table, dtype=np.float32)
    except (TypeError, ValueError):
        raise where.error(name, "expected one list of numbers per clip, rows differ in length") from None
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] == 0 or (width is not None and array.shape[1] != width):
        raise where.error(name, f"expected shape (clips, {width or 'A'}), got {array.shape}")
    if not np.isfinite(array).all():
        raise where.error(name, "expected finite numbers, got NaN or infinity")
    return array


def _highlight_row(record, where, dataset, clip_length) -> dict[str, Any]:
    row = _identity(record, where)
    row["domain"] = str(record.get("domain", ""))
    if dataset == "tvsum":
        scores = _per_clip_table(record, where, "label", 20)
        target = fraction_above_own_median(scores)
        clip_length = clip_length or 2.0
        # The release's "duration" is the clip count; the clips are 2 s.
        row["duration"] = scores.shape[0] * clip_length
    else:
        scores = _per_clip_table(record, where, "match", 1)
        target = (scores[:, 0] > 0).astype(np.float32)
        clip_length = clip_length or row["duration"] / scores.shape[0]
    row.update(clip_length=clip_length, num_clips=scores.shape[0], has_labels=True, num_windows_clipped=0)
    row.update(windows=np.zeros((0, 2)), spans=np.zeros((0, 2), dtype=np.float32))
    row.update(saliency_scores=scores, saliency_target=target)
    return row


def _rows_to_dataset(rows: list[dict[str, Any]], dataset: str) -> datasets.Dataset:
    columns = {name: [] for name in ANNOTATION_FEATURES}
    for row in rows:
        row["dataset"] = dataset
        for name in columns:
            value = row[name]
            columns[name].append(value.tolist() if isinstance(value, np.ndarray) else value)
    return datasets.Dataset.from_dict(columns, features=ANNOTATION_FEATURES)


def _report_clipped(rows: list[dict[str, Any]], path: Path, tolerance: float) -> None:
    clipped = [row["qid"] for row in rows if row["num_windows_clipped"]]
    if clipped:
        total = sum(row["num_windows_clipped"] for row in rows)
        logger.warning(
            "%s: clipped %d window(s) ending at most %.3g s past the duration (qids %s)",
            path,
            total,
            tolerance,
            ", ".join(clipped[:10]) + (" ..." if len(clipped) > 10 else ""),
        )


def load_annotations(
    path: str | Path,
    dataset: str,
    *,
    clip_length: float | None = None,
    with_labels: bool = True,
    domain: str | None = None,
    window_tolerance: float = WINDOW_END_TOLERANCE,
) -> datasets.Dataset:
    """Load a unified jsonl annotation file into a `datasets.Dataset` (schema `ANNOTATION_FEATURES`).

    Args:
        path: the jsonl file.
        dataset: one of ``qvhighlights``, ``charades_sta``, ``activitynet_captions``, ``tvsum``,
            ``youtube_highlights``, or ``custom``: your own data in the simple schema (``qid``, ``query``,
            ``vid``, ``duration``, ``relevant_windows``, optional ``saliency_scores`` per clip or with
            ``relevant_clip_ids``; see ``docs/custom_data.md``), 2 s clips unless ``clip_length`` says.
        clip_length: seconds per feature clip; defaults to `DEFAULT_CLIP_LENGTHS` (YouTube
            Highlights: duration / number of labelled clips, per video).
        with_labels: False for test files without ground truth (no windows, zero targets).
        domain: keep only the rows of this category (TVSum, YouTube Highlights).
        window_tolerance: windows ending at most this many seconds past the duration are clipped
            to it (and counted in ``num_windows_clipped``); further past is an error.
    """
    if dataset not in DEFAULT_CLIP_LENGTHS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(DEFAULT_CLIP_LENGTHS)}")
    clip_length = clip_length if clip_length is not None else DEFAULT_CLIP_LENGTHS[dataset]
    if clip_length is not None and not clip_length > 0:
        raise ValueError(f"clip_length must be positive, got {clip_length}")
    rows, first_line_of_qid = [], {}
    for where, record in read_jsonl(path):
        if dataset in MOMENT_DATASETS:
            row = _moment_row(record, where, dataset, clip_length, with_labels, window_tolerance)
        else:
            row = _highlight_row(record, where, dataset, clip_length)
        if row["qid"] in first_line_of_qid:  # its text features are read by qid: a second one would alias
            first = first_line_of_qid[row["qid"]]
            raise where.error("qid", f"qid {row['qid']!r} repeated (first at line {first})")
        first_line_of_qid[row["qid"]] = where.line
        if domain is None or row["domain"] == domain:
            rows.append(row)
    _report_clipped(rows, Path(path), window_tolerance)
    return _rows_to_dataset(rows, dataset)
