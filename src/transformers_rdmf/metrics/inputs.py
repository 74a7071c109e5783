"""Reading and validating metric inputs: jsonl predictions and ground truth.

Every error is a :class:`MetricInputError` whose message names the file (or the in-memory list),
the line (or item) and the field, e.g. ``preds.jsonl, line 12, field 'pred_relevant_windows':
window 0 [30.0, 12.0] has start > end``. The checks run vectorised first and fall back to a
row-by-row pass only to word the error.
"""

from __future__ import annotations

import itertools
import json
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "WINDOW_END_TOLERANCE",
    "MetricInputError",
    "Records",
    "align_by_qid",
    "as_records",
    "index_by_qid",
    "ragged_numbers",
    "read_jsonl",
    "require_ordered_windows",
    "require_windows_in_video",
    "video_durations",
]

# How far past its video's duration a ground-truth window may end (5 ActivityNet val windows end 0.01 s
# past, a rounding in the release); the moment-retrieval metrics clip such an end to the duration.
WINDOW_END_TOLERANCE = 0.05


class MetricInputError(ValueError):
    """Bad metric input; the message names the file, the line and the field."""


@dataclass(frozen=True)
class Records:
    """Rows of a jsonl file or of an in-memory list, with where each row came from.

    Attributes:
        rows: one dict per prediction or ground-truth query.
        source: the file path, or a name such as ``"predictions"`` for in-memory lists.
        line_numbers: the 1-based line of each row in ``source``; ``None`` for in-memory lists,
            whose rows are named by their 0-based item index.
    """

    rows: list[dict]
    source: str
    line_numbers: tuple[int, ...] | None = None

    def where(self, index: int, field: str | None = None) -> str:
        place = f"line {self.line_numbers[index]}" if self.line_numbers is not None else f"item {index}"
        return f"{self.source}, {place}" + (f", field '{field}'" if field else "")

    def error(self, index: int, field: str | None, message: str) -> MetricInputError:
        return MetricInputError(f"{self.where(index, field)}: {message}")

    def __len__(self) -> int:
        return len(self.rows)


def read_jsonl(path: str | os.PathLike) -> Records:
    """Read one JSON object a line; blank lines are skipped, a malformed line is an error."""
    path = os.fspath(path)
    rows, line_numbers = [], []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise MetricInputError(f"{path}, line {line_number}: malformed JSON line ({error})") from None
            if not isinstance(row, dict):
                raise MetricInputError(
                    f"{path}, line {line_number}: expected a JSON object, got {type(row).__name__}"
                )
            rows.append(row)
            line_numbers.append(line_number)
    return Records(rows, path, tuple(line_numbers))


def as_records(data: Records | str | os.PathLike | Sequence[Mapping], name: str) -> Records:
    """Accept a jsonl path, a list of dicts (named ``name`` in errors) or ready :class:`Records`."""
    if isinstance(data, Records):
        return data
    if isinstance(data, (str, os.PathLike)):
        return read_jsonl(data)
    rows = list(data)
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise MetricInputError(f"{name}, item {index}: expected a dict, got {type(row).__name__}")
    return Records([dict(row) for row in rows], name)


def index_by_qid(records: Records) -> dict:
    """Map each ``qid`` to its row index; a missing or duplicated ``qid`` is an error."""
    qid_to_index: dict = {}
    for index, row in enumerate(records.rows):
        if "qid" not in row or row["qid"] is None:
            raise records.error(index, "qid", "missing")
        qid = row["qid"]
        if not isinstance(qid, (int, str)) or isinstance(qid, bool):
            raise records.error(index, "qid", f"expected an integer or a string, got {qid!r}")
        if qid in qid_to_index:
            first = records.where(qid_to_index[qid]).split(", ", 1)[1]
            raise records.error(index, "qid", f"qid {qid!r} duplicated (first at {first})")
        qid_to_index[qid] = index
    return qid_to_index


def align_by_qid(predictions: Records, references: Records) -> np.ndarray:
    """Index of each prediction's ground-truth row, shape ``(len(predictions),)``.

    The qid sets must match: a prediction for an unknown qid, or a ground-truth qid without a
    prediction, is an error naming the offending row.
    """
    prediction_index = index_by_qid(predictions)
    reference_index = index_by_qid(references)
    for qid, index in prediction_index.items():
        if qid not in reference_index:
            raise predictions.error(
                index, "qid", f"qid {qid!r} is not in the ground truth ({references.source})"
            )
    for qid, index in reference_index.items():
        if qid not in prediction_index:
            raise references.error(index, "qid", f"qid {qid!r} has no prediction in {predictions.source}")
    return np.array([reference_index[row["qid"]] for row in predictions.rows], dtype=np.int64)


def ragged_numbers(
    records: Records, field: str, width: int | None = None, min_count: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate a list-valued field over all rows into one float64 array.

    Args:
        records: the rows.
        field: a field holding, per row, a list of numbers (``width=None``) or of lists of
            ``width`` numbers (windows).
        min_count: the fewest items a row may hold.

    Returns:
        ``values`` of shape ``(total,)`` or ``(total, width)`` and ``counts`` of shape ``(rows,)``.
        Every value is a finite number; anything else raises :class:`MetricInputError`.
    """
    values = None
    try:
        lists = [row[field] for row in records.rows]
        counts = np.array([len(item) for item in lists], dtype=np.int64)
        flat = list(itertools.chain.from_iterable(lists))
        values = np.array(flat)
    except (KeyError, TypeError, ValueError):
        pass
    expected_ndim = 2 if width else 1
    clean = (
        values is not None
        and values.dtype.kind in "iuf"
        and (values.ndim == expected_ndim or values.size == 0)
        and (not width or values.size == 0 or values.shape[1] == width)
        and bool(np.isfinite(values).all())
        and bool((counts >= min_count).all())
    )
    if not clean:
        _raise_first_bad_row(records, field, width, min_count)
    values = values.astype(np.float64).reshape((-1, width) if width else (-1,))
    return values, counts


def _raise_first_bad_row(records: Records, field: str, width: int | None, min_count: int) -> None:
    shape = "[start, end]" if width == 2 else "[start, end, score]" if width == 3 else f"{width} numbers"
    for index, row in enumerate(records.rows):
        if field not in row:
            raise records.error(index, field, "missing")
        items = row[field]
        if not isinstance(items, (list, tuple, np.ndarray)):
            raise records.error(index, field, f"expected a list, got {type(items).__name__}")
        if len(items) < min_count:
            raise records.error(index, field, f"expected at least {min_count} item(s), got {len(items)}")
        for position, item in enumerate(items):
            if width and (not isinstance(item, (list, tuple, np.ndarray)) or len(item) != width):
                raise records.error(index, field, f"item {position} is {item!r}, expected {shape}")
            for number in item if width else [item]:
                if isinstance(number, bool) or not isinstance(number, numbers.Real):
                    raise records.error(index, field, f"item {position} holds {number!r}, not a number")
                if not math.isfinite(number):
                    raise records.error(index, field, f"item {position} holds {number}, not a finite number")
    raise MetricInputError(f"{records.source}, field '{field}': unreadable values")


def first_flagged_item(flagged: np.ndarray, counts: np.ndarray) -> tuple[int, int, int]:
    """``(flat index, row, position in the row)`` of the first ``True`` of ``flagged``, ``(total,)`` over
    items (windows, clip ids) of all rows concatenated as by :func:`ragged_numbers`, ``counts`` per row."""
    flat_index = int(np.argmax(flagged))
    ends = np.cumsum(counts)
    row = int(np.searchsorted(ends, flat_index, side="right"))
    return flat_index, row, flat_index - (int(ends[row - 1]) if row else 0)


def require_ordered_windows(
    records: Records, field: str, windows: np.ndarray, counts: np.ndarray, positive_length: bool = False
) -> None:
    """Reject a window whose start is after its end (or, with ``positive_length``, not before it).

    Args:
        windows: ``(total, >=2)`` windows of all rows, concatenated as by :func:`ragged_numbers`.
        counts: ``(rows,)`` windows per row.
    """
    bad = windows[:, 0] >= windows[:, 1] if positive_length else windows[:, 0] > windows[:, 1]
    if not bad.any():
        return
    flat_index, row, position = first_flagged_item(bad, counts)
    start, end = windows[flat_index, :2].tolist()
    reason = (
        "start >= end (a ground-truth window needs a positive length)" if positive_length else "start > end"
    )
    raise records.error(row, field, f"window {position} [{start}, {end}] has {reason}")


def video_durations(references: Records, missing: float | None = None) -> np.ndarray:
    """``(rows,)`` each ground-truth row's ``duration``; one that is not a finite number is an error,
    except that a row without the field reads as ``missing`` when that is given."""
    durations = []
    for index, row in enumerate(references.rows):
        duration = row.get("duration")
        if duration is None and missing is not None:
            durations.append(missing)
            continue
        if (
            isinstance(duration, bool)
            or not isinstance(duration, (int, float))
            or not math.isfinite(duration)
        ):
            raise references.error(
                index, "duration", f"expected a finite number of seconds, got {duration!r}"
            )
        durations.append(float(duration))
    return np.array(durations, dtype=np.float64)


def require_windows_in_video(
    references: Records,
    field: str,
    windows: np.ndarray,
    counts: np.ndarray,
    tolerance: float,
    duration_optional: bool = False,
) -> np.ndarray:
    """Reject a ground-truth window that starts before 0 s or ends past its video's duration by more
    than ``tolerance`` seconds (``end > duration + tolerance``, as annotations are checked); returns
    ``(total,)`` the duration of each window's video.

    Args:
        windows: ``(total, >=2)`` windows of all rows, concatenated as by :func:`ragged_numbers`.
        counts: ``(rows,)`` windows per row.
        duration_optional: a row without ``duration`` has no end bound (QVHighlights' moment metrics
            never read it), instead of being an error.
    """
    durations = video_durations(references, missing=math.inf if duration_optional else None)
    duration = np.repeat(durations, counts)
    bad = (windows[:, 0] < 0) | (windows[:, 1] > duration + tolerance)
    if not bad.any():
        return duration
    flat_index, row, position = first_flagged_item(bad, counts)
    start, end = windows[flat_index, :2].tolist()
    reason = (
        "starts before 0 s"
        if start < 0
        else f"ends past the duration {duration[flat_index]:g} s by more than {tolerance:g} s"
    )
    raise references.error(row, field, f"window {position} [{start}, {end}] {reason}")
