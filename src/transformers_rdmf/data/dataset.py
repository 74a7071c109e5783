"""A map-style torch dataset joining an annotation `datasets.Dataset` with lazily read features."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import datasets
import numpy as np
import torch

from .features import TextFeatures, VideoFeatureReader

logger = logging.getLogger(__name__)


class TextReader(Protocol):
    def read(self, example: dict[str, Any]) -> TextFeatures: ...


@dataclass
class LengthReport:
    """What `MomentFeatureDataset.check_lengths` found, counted per example (query).

    Attributes:
        num_examples: examples checked.
        examples_truncated: examples whose features had one row more or fewer than the labels.
        rows_dropped: rows dropped by that truncation (feature rows or label clips).
        examples_cut / clips_cut: examples longer than ``max_clips`` and the clips the collator cuts.
        truncated: ``(vid, label clips, feature rows per stream)`` for each truncated video.
    """

    num_examples: int = 0
    examples_truncated: int = 0
    rows_dropped: int = 0
    examples_cut: int = 0
    clips_cut: int = 0
    truncated: list[tuple[str, int, tuple[int, ...]]] = field(default_factory=list)


class MomentFeatureDataset(torch.utils.data.Dataset):
    """Examples with features, read one at a time (never the whole corpus in memory).

    Args:
        annotations: rows with the schema `ANNOTATION_FEATURES` (from `load_annotations`).
        video_reader: reads (L, Dv) per video and reconciles L with the labels' clip count.
        text_reader: `TextFeatureReader` or `DomainQueryEncoder`.

    Each item is a dict: ``video_features`` (L, Dv) float32, ``text_features`` (N, Dt) float32,
    ``text_pooled`` (Dt,) or None, ``spans`` (n, 2) normalised (center, width), ``saliency_target``
    (L,), ``saliency_scores`` (L, A) raw scores ((0, 0) without labels), and ``meta`` (a dict of plain
    values: ids, query, duration, clip length, windows in seconds, ``num_clips`` = L, and
    ``label_clips_dropped`` / ``feature_rows_dropped`` when lengths were reconciled).
    """

    def __init__(
        self, annotations: datasets.Dataset, video_reader: VideoFeatureReader, text_reader: TextReader
    ):
        self.annotations = annotations
        self.video_reader = video_reader
        self.text_reader = text_reader
        self._warned: set[str] = set()

    def __len__(self) -> int:
        return len(self.annotations)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.annotations[int(index)]
        video, row_counts = self.video_reader.read(row["vid"], row["num_clips"])
        length = video.shape[0]
        if length != row["num_clips"] or max(row_counts) != length:
            self._warn_truncated(row["vid"], row["num_clips"], row_counts, length)
        text = self.text_reader.read(row)
        scores = np.asarray(row["saliency_scores"], dtype=np.float32).reshape(len(row["saliency_scores"]), -1)
        return {
            "video_features": video,
            "text_features": text.tokens,
            "text_pooled": text.pooled,
            "spans": np.asarray(row["spans"], dtype=np.float32).reshape(-1, 2),
            "saliency_target": np.asarray(row["saliency_target"], dtype=np.float32)[:length],
            "saliency_scores": scores[:length],
            "meta": {
                "dataset": row["dataset"],
                "qid": row["qid"],
                "vid": row["vid"],
                "query": row["query"],
                "domain": row["domain"],
                "duration": row["duration"],
                "clip_length": row["clip_length"],
                "windows": row["windows"],
                "num_clips": length,
                "label_clips_dropped": row["num_clips"] - length,
                "feature_rows_dropped": max(row_counts) - length,
            },
        }

    def _warn_truncated(self, vid: str, num_labels: int, row_counts: tuple[int, ...], length: int) -> None:
        if vid not in self._warned:
            self._warned.add(vid)
            logger.warning(
                "video %r: labels have %d clips, features %s rows: truncated to %d",
                vid,
                num_labels,
                "/".join(map(str, row_counts)),
                length,
            )

    def check_lengths(self, max_clips: int | None = None) -> LengthReport:
        """Check every example's feature lengths from the file headers (no arrays are read).

        Raises `FeatureError` / `FileNotFoundError` on the first video that cannot be used; otherwise
        counts the truncations `__getitem__` will make and, with ``max_clips``, the cuts
        `MomentRetrievalCollator(max_clips=...)` will make.
        """
        report, cache = LengthReport(), {}
        for vid, num_labels in zip(self.annotations["vid"], self.annotations["num_clips"]):
            if (vid, num_labels) not in cache:
                row_counts = tuple(stream.num_rows(vid) for stream in self.video_reader.streams)
                cache[vid, num_labels] = (
                    self.video_reader.reconciled_length(vid, row_counts, num_labels),
                    row_counts,
                )
            length, row_counts = cache[vid, num_labels]
            report.num_examples += 1
            dropped = (num_labels - length) + (max(row_counts) - length)
            if dropped:
                report.examples_truncated += 1
                report.rows_dropped += dropped
                report.truncated.append((vid, num_labels, row_counts))
            if max_clips is not None and length > max_clips:
                report.examples_cut += 1
                report.clips_cut += length - max_clips
        return report
