"""Batches `MomentFeatureDataset` items into the inputs of `RDMFForMomentRetrieval`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .annotations import windows_to_spans

logger = logging.getLogger(__name__)


def _cut_to_max_clips(item: dict[str, Any], max_clips: int | None) -> tuple[dict[str, Any], int]:
    """The item with at most ``max_clips`` clips, its spans re-normalised to the kept time; clips cut.

    The kept time is ``max_clips * clip_length`` seconds: windows are clipped to it, and windows
    starting after it are dropped.
    """
    meta = dict(item["meta"])
    length = item["video_features"].shape[0]
    meta["span_duration"] = meta["duration"]
    if max_clips is None or length <= max_clips:
        return {**item, "meta": meta}, 0
    kept_seconds = min(meta["duration"], max_clips * meta["clip_length"])
    windows = np.asarray(meta["windows"], dtype=np.float64).reshape(-1, 2)
    windows = windows[windows[:, 0] < kept_seconds]
    windows[:, 1] = np.minimum(windows[:, 1], kept_seconds)
    meta.update(windows=windows.tolist(), span_duration=kept_seconds, num_clips=max_clips)
    cut = {
        **item,
        "video_features": item["video_features"][:max_clips],
        "saliency_target": item["saliency_target"][:max_clips],
        "saliency_scores": item["saliency_scores"][:max_clips],
        "spans": windows_to_spans(windows, kept_seconds),
        "meta": meta,
    }
    return cut, length - max_clips


def _zeros(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``torch.zeros``, allocated in shared memory inside a DataLoader worker.

    As in ``default_collate``: a worker's batch is sent to the main process through shared memory, and
    allocating it there avoids a second copy of every batch (twice the epoch speed with 2 workers).
    """
    if torch.utils.data.get_worker_info() is None:
        return torch.zeros(*shape, dtype=dtype)
    numel = int(np.prod(shape))
    storage = torch.UntypedStorage._new_shared(numel * dtype.itemsize)
    return torch.empty(0, dtype=dtype).set_(storage, 0, shape).zero_()


def _pad(arrays: Sequence[np.ndarray], what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(n_i, D) arrays -> zero-padded (B, max n_i, D) float32 and a (B, max n_i) long mask, 1 = valid."""
    widths = {array.shape[1] for array in arrays}
    if len(widths) != 1:
        raise ValueError(f"{what} widths differ within the batch: {sorted(widths)}")
    longest = max(array.shape[0] for array in arrays)
    padded = _zeros(len(arrays), longest, widths.pop())
    mask = _zeros(len(arrays), longest, dtype=torch.long)
    for row, array in enumerate(arrays):
        padded[row, : array.shape[0]] = torch.as_tensor(np.asarray(array, dtype=np.float32))
        mask[row, : array.shape[0]] = 1
    return padded, mask


def _labels(items: Sequence[dict[str, Any]], num_clips: int) -> list[dict[str, torch.Tensor]]:
    """Per example ``spans`` (n_i, 2) and ``saliency`` (num_clips,), zero-padded.

    They are views of two batch tensors, so that a worker sends two shared-memory blocks per batch
    rather than two per example.
    """
    saliency = _zeros(len(items), num_clips)
    spans = [np.asarray(item["spans"], dtype=np.float32).reshape(-1, 2) for item in items]
    all_spans = _zeros(sum(len(span) for span in spans), 2)
    labels, start = [], 0
    for row, (item, span) in enumerate(zip(items, spans)):
        saliency[row, : len(item["saliency_target"])] = torch.as_tensor(item["saliency_target"])
        all_spans[start : start + len(span)] = torch.from_numpy(span)
        labels.append({"spans": all_spans[start : start + len(span)], "saliency": saliency[row]})
        start += len(span)
    return labels


class MomentRetrievalCollator:
    """Pads clips and tokens to the batch's longest and builds the model's ``labels``.

    Returns a dict with exactly these keys (B examples, L longest clip count, N longest token count):

    - ``video_features`` float32 (B, L, Dv), zeros past each video's end;
    - ``video_mask`` long (B, L), 1 = valid clip;
    - ``text_features`` float32 (B, N, Dt), zeros past each query's end;
    - ``text_mask`` long (B, N), 1 = valid token;
    - ``labels``: B dicts ``{"spans": float32 (n_i, 2) normalised (center, width) in [0, 1],
      "saliency": float32 (L,) target in [0, 1], zeros on padding}``;
    - ``meta``: B dicts (``qid``, ``vid``, ``query``, ``dataset``, ``domain``, ``duration``,
      ``clip_length``, ``num_clips``, ``windows`` in seconds, ``span_duration`` (the seconds the
      spans are normalised by), ``clips_cut``, ``saliency_scores`` raw (num_clips, A) numpy float32 or None,
      ...), for the training loop to pop before calling the model.

    Args:
        max_clips: cut longer videos to this many clips. Each cut is counted (``videos_cut``,
            ``clips_cut`` on this object, ``clips_cut`` in ``meta``) and logged as a warning.
            With DataLoader workers the counters live in each worker's copy: sum ``meta`` or use
            `MomentFeatureDataset.check_lengths(max_clips)` for the totals.
    """

    def __init__(self, max_clips: int | None = None):
        if max_clips is not None and max_clips < 1:
            raise ValueError(f"max_clips must be at least 1, got {max_clips}")
        self.max_clips = max_clips
        self.videos_cut = 0
        self.clips_cut = 0

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        items, cuts = zip(*(_cut_to_max_clips(item, self.max_clips) for item in items))
        self._count_cuts(cuts)
        video, video_mask = _pad([item["video_features"] for item in items], "video feature")
        text, text_mask = _pad([item["text_features"] for item in items], "text feature")
        labels = _labels(items, video.shape[1])
        meta = [self._meta(item, cut) for item, cut in zip(items, cuts)]
        return {
            "video_features": video,
            "video_mask": video_mask,
            "text_features": text,
            "text_mask": text_mask,
            "labels": labels,
            "meta": meta,
        }

    @staticmethod
    def _meta(item: dict[str, Any], cut: int) -> dict[str, Any]:
        scores = item["saliency_scores"]
        return {**item["meta"], "clips_cut": cut, "saliency_scores": scores if scores.size else None}

    def _count_cuts(self, cuts: Sequence[int]) -> None:
        cut_videos = sum(1 for cut in cuts if cut)
        if not cut_videos:
            return
        self.videos_cut += cut_videos
        self.clips_cut += sum(cuts)
        logger.warning(
            "max_clips=%d cut %d video(s) (%d clips) in this batch; %d video(s), %d clips so far",
            self.max_clips,
            cut_videos,
            sum(cuts),
            self.videos_cut,
            self.clips_cut,
        )


def random_temporal_crop(batch: dict, clips: int, generator: torch.Generator) -> dict:
    """Each video longer than ``clips`` cut to a random window of ``clips`` clips (highlight-only data).

    Training augmentation for the highlight datasets, whose labels are per clip (no spans to move). The
    window of video ``i`` starts uniformly in ``[0, length_i - clips]``, drawn from ``generator``.
    """
    mask = batch["video_mask"]
    lengths = mask.sum(1).tolist()
    width = min(clips, max(lengths))
    rows = torch.arange(width)
    index, new_mask = [], []
    for length in lengths:
        start = int(torch.randint(0, max(length - clips, 0) + 1, (1,), generator=generator))
        index.append((start + rows).clamp(max=mask.shape[1] - 1))
        new_mask.append(rows < length)
    index = torch.stack(index).to(mask.device)
    features = batch["video_features"]
    cropped = dict(batch)
    cropped["video_features"] = torch.gather(
        features, 1, index.unsqueeze(-1).expand(-1, -1, features.shape[-1])
    )
    cropped["video_mask"] = torch.stack(new_mask).to(mask)
    cropped["labels"] = [
        {**label, "saliency": label["saliency"][i.to(label["saliency"].device)] * m.to(label["saliency"])}
        for label, i, m in zip(batch["labels"], index, new_mask)
    ]
    return cropped
