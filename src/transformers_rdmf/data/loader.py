"""A seeded `torch.utils.data.DataLoader` that `accelerate.Accelerator.prepare` can shard."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.data import DataLoader, Dataset

from .collator import MomentRetrievalCollator


def build_dataloader(
    dataset: Dataset,
    batch_size: int = 32,
    *,
    shuffle: bool = True,
    seed: int = 0,
    num_workers: int = 0,
    collate_fn: Callable | None = None,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    """A plain DataLoader whose order depends only on ``seed`` (and the epoch, for shuffling).

    Shuffling draws from a ``torch.Generator`` seeded with ``seed``: the same seed gives the same
    order, epoch after epoch, across runs. It is a plain DataLoader over a map-style dataset, so
    ``accelerator.prepare(loader)`` shards it across processes (each process sees its slice of the
    same seeded order). The collator defaults to `MomentRetrievalCollator()`.
    """
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        num_workers=num_workers,
        collate_fn=collate_fn if collate_fn is not None else MomentRetrievalCollator(),
        drop_last=drop_last,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
    )
