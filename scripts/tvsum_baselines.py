"""Model-free TVSum baselines, on the val videos and on the train videos: how hard is each set?

    python scripts/tvsum_baselines.py --data_root ../shared/data/tvsum

Prints top-5 mAP (mean over the videos of each set) for:

- ``random``: uniform random scores (mean over ``--random_draws`` draws);
- ``mean annotator``: the clips ranked by the mean of the 20 annotators' scores (an oracle: it reads the
  labels of the video it scores);
- ``ridge (joint)``: ridge regression from the clip features to the saliency target, fitted on train
  videos of every category. On the val videos it is fitted on all 40 train videos; on the train videos
  it is fitted 4 times, each time on 3/4 of every category's train videos, and scores the held-out
  quarter (the same folds as ``run_highlight_results.py --joint --train_folds 4``).

A video is scored the same way on both sets, so a gap between the columns is a gap in difficulty.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from transformers_rdmf.data import load_annotations, tvsum_video_reader
from transformers_rdmf.errors import (
    OneLineParser,
    require_positive_integer,
    require_positive_number,
    run_command,
)
from transformers_rdmf.metrics.highlight_detection import tvsum_video_ap
from transformers_rdmf.training.selection import fold_split


def load_videos(root: Path, split: str) -> list[dict]:
    """Each video of the split: ``vid``, ``domain``, ``features`` (clips, 2048), ``target`` (clips,), ``scores`` (clips, 20)."""
    annotations = load_annotations(root / f"tvsum_{split}_release.jsonl", "tvsum")
    reader = tvsum_video_reader(root)
    videos = []
    for row in annotations:
        features, _ = reader.read(row["vid"], len(row["saliency_target"]))
        n = len(features)
        videos.append(
            {
                "vid": row["vid"],
                "domain": row["domain"],
                "features": np.asarray(features, dtype=np.float64),
                "target": np.asarray(row["saliency_target"], dtype=np.float64)[:n],
                "scores": np.asarray(row["saliency_scores"], dtype=np.float64)[:n],
            }
        )
    return videos


def top5_map(videos: list[dict], predict) -> float:
    """Mean top-5 AP over the videos, in percent, of ``predict(video) -> (clips,)`` scores."""
    return 100 * float(np.mean([tvsum_video_ap(predict(v), v["scores"], 5) for v in videos]))


def fit_ridge(videos: list[dict], alpha: float) -> np.ndarray:
    """Weights (features + 1,) minimising ``|X w - y|^2 + alpha |w|^2`` over the videos' clips."""
    x = np.concatenate([with_bias(v["features"]) for v in videos])
    y = np.concatenate([v["target"] for v in videos])
    return np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ y)


def with_bias(features: np.ndarray) -> np.ndarray:
    return np.concatenate([features, np.ones((len(features), 1))], axis=1)


def train_folds(videos: list[dict], folds: int) -> list[tuple[list[dict], list[dict]]]:
    """(kept, held out) per fold: every ``folds``-th train video of each category, from the fold-th."""
    domains = list(dict.fromkeys(video["domain"] for video in videos))
    splits = []
    for fold in range(folds):
        kept, held_out = [], []
        for domain in domains:
            domain_kept, domain_held_out = fold_split(
                [v for v in videos if v["domain"] == domain], fold, folds
            )
            kept += domain_kept
            held_out += domain_held_out
        splits.append((kept, held_out))
    return splits


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_root", type=Path, required=True)
    parser.add_argument("--alpha", type=float, default=10.0, help="ridge penalty")
    parser.add_argument("--random_draws", type=int, default=20)
    args = parser.parse_args(argv)

    def work() -> None:
        require_positive_number("--alpha", args.alpha, "a ridge penalty above 0")
        require_positive_integer("--random_draws", args.random_draws)
        train, val = load_videos(args.data_root, "train"), load_videos(args.data_root, "val")
        rng = np.random.default_rng(0)

        def random_map(videos):
            draws = [
                top5_map(videos, lambda v: rng.random(len(v["target"]))) for _ in range(args.random_draws)
            ]
            return float(np.mean(draws))

        def ridge(predict_on, fitted_on):
            weights = fit_ridge(fitted_on, args.alpha)
            return top5_map(predict_on, lambda v: with_bias(v["features"]) @ weights)

        held_out = [ridge(held, kept) for kept, held in train_folds(train, 4)]
        rows = [
            ("random", random_map(val), random_map(train)),
            ("mean annotator (oracle)", top5_map(val, lambda v: v["scores"].mean(1)), top5_map(train, lambda v: v["scores"].mean(1))),
            ("ridge (joint)", ridge(val, train), float(np.mean(held_out))),
        ]  # fmt: skip
        print(f"| baseline | val videos ({len(val)}) | train videos ({len(train)}) |")
        print("|---|---|---|")
        for name, on_val, on_train in rows:
            print(f"| {name} | {on_val:.2f} | {on_train:.2f} |")

    return run_command("tvsum_baselines.py", work)


if __name__ == "__main__":
    sys.exit(main())
