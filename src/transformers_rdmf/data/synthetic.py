"""A small synthetic moment-retrieval dataset in the QVHighlights layout, for tests and quick trials.

Each query names one of ``num_concepts`` concepts; its video's clips inside the ground-truth window carry
that concept's video pattern, the other clips carry a different concept or noise. A model can only find
the window by matching the query's text features to the clips, so the set tests learning end to end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class SyntheticLayout:
    """Where :func:`write_synthetic_moment_dataset` put things."""

    train_annotations: Path
    eval_annotations: Path
    video_feature_dirs: tuple[Path, Path]
    text_feature_dir: Path
    video_dim: int
    text_dim: int


def _video_row(rng, pattern: np.ndarray, noise: float) -> np.ndarray:
    return pattern + noise * rng.standard_normal(pattern.shape)


def _clip_row(
    rng, patterns: np.ndarray, concept: int, distractor: int, inside: bool, noise: float
) -> np.ndarray:
    """Inside the window: the query's concept. Outside: another concept half of the time, else noise."""
    if inside:
        return _video_row(rng, patterns[concept], noise)
    if rng.random() < 0.5:
        return _video_row(rng, patterns[distractor], noise)
    return noise * rng.standard_normal(patterns.shape[1])


def write_synthetic_moment_dataset(
    folder: str | Path,
    num_train: int = 96,
    num_eval: int = 32,
    num_concepts: int = 8,
    stream_dims: tuple[int, int] = (16, 16),
    text_dim: int = 16,
    clips_range: tuple[int, int] = (16, 32),
    noise: float = 0.3,
    seed: int = 0,
) -> SyntheticLayout:
    """Write ``train.jsonl``, ``val.jsonl``, two video streams (``clip/``, ``slowfast/``, ``{vid}.npz`` with
    ``features``) and ``text/qid{qid}.npz`` (``last_hidden_state``). Clips are 2 s; one window per query,
    aligned to clips, with three annotators' saliency scores on its clips."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    video_patterns = rng.standard_normal((num_concepts, sum(stream_dims)))
    text_patterns = rng.standard_normal((num_concepts, text_dim))
    dirs = (folder / "clip", folder / "slowfast")
    for d in (*dirs, folder / "text"):
        d.mkdir(parents=True, exist_ok=True)
    splits = {"train": num_train, "val": num_eval}
    qid = 0
    for split, count in splits.items():
        rows = []
        for _ in range(count):
            concept = int(rng.integers(num_concepts))
            clips = int(rng.integers(clips_range[0], clips_range[1] + 1))
            length = int(rng.integers(max(2, clips // 6), max(3, clips // 2)))
            start = int(rng.integers(0, clips - length + 1))
            distractor = (concept + int(rng.integers(1, num_concepts))) % num_concepts
            inside = np.arange(clips)
            inside = (inside >= start) & (inside < start + length)
            video = np.stack(
                [_clip_row(rng, video_patterns, concept, distractor, hit, noise) for hit in inside]
            )
            tokens = int(rng.integers(3, 8))
            text = np.stack([_video_row(rng, text_patterns[concept], noise) for _ in range(tokens)])
            vid = f"synthetic_{split}_{qid:05d}"
            np.savez(dirs[0] / f"{vid}.npz", features=video[:, : stream_dims[0]].astype(np.float32))
            np.savez(dirs[1] / f"{vid}.npz", features=video[:, stream_dims[0] :].astype(np.float32))
            np.savez(folder / "text" / f"qid{qid}.npz", last_hidden_state=text.astype(np.float32))
            relevant = list(range(start, start + length))
            rows.append(
                {
                    "qid": qid,
                    "query": f"concept {concept}",
                    "vid": vid,
                    "duration": 2 * clips,
                    "relevant_windows": [[2.0 * start, 2.0 * (start + length)]],
                    "relevant_clip_ids": relevant,
                    "saliency_scores": [[int(rng.integers(2, 5)) for _ in range(3)] for _ in relevant],
                }
            )
            qid += 1
        with open(folder / f"{split}.jsonl", "w") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in rows)
    return SyntheticLayout(
        folder / "train.jsonl", folder / "val.jsonl", dirs, folder / "text", sum(stream_dims), text_dim
    )
