"""TVSum: one joint model for all categories (fixed schedule), then fine-tuned on each category.

    python scripts/tvsum_joint_fine_tune.py --data_root ../shared/data/tvsum --seed 0 \
        --learning_rate 1e-3 --results results/tvsum_joint_fine_tune.json

1. ``rdmf-train``'s code trains one model on the 40 train videos of every category (preset
   ``tvsum_i3d``, ``--joint_epochs``, EMA 0.99), evaluated once at the end, and keeps its ``final/``
   weights: the choice never looks at the val videos.
2. Each category then fine-tunes those weights on its own 4 train videos (``--model_name_or_path``)
   for ``--epochs`` epochs (one step each), evaluated on its val video every ``--eval_every``.

Per category the results JSON holds the joint model's val score (``joint``), the fine-tuned run's curve,
its best point (``best``, the val video choosing the epoch) and its last one (``final``, a fixed
schedule). Keys are ``lr{learning_rate}/seed{seed}``, so runs add up in one file. The joint model is
kept in ``--work_dir`` and reused when it is there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from transformers_rdmf.atomic import atomic_write_json, check_can_write_in, check_output_paths
from transformers_rdmf.data import TVSUM_DOMAINS
from transformers_rdmf.errors import OneLineParser, require_positive_integer, run_command
from transformers_rdmf.training import RDMFTrainingArguments, read_csv_log, train
from transformers_rdmf.training.arguments import check_flags_apply, check_numeric_ranges
from transformers_rdmf.training.report import read_strict_json


def common_arguments(args: argparse.Namespace) -> dict:
    root = Path(args.data_root)
    return dict(
        preset="tvsum_i3d",
        dataset="tvsum",
        seed=args.seed,
        batch_size=4,
        disable_progress_bar=True,
        data_root=str(root),
        train_annotations=str(root / "tvsum_train_release.jsonl"),
        eval_annotations=str(root / "tvsum_val_release.jsonl"),
        ema_decay=0.99,
    )


def joint_model(args: argparse.Namespace) -> tuple[Path, dict[str, float]]:
    """The joint model's ``final/`` folder and its val score per category (its ``final/metrics.json``)."""
    folder = Path(args.work_dir) / f"joint_seed{args.seed}_epochs{args.joint_epochs}"
    if not (folder / "final" / "config.json").is_file():
        train(
            RDMFTrainingArguments(
                output_dir=str(folder),
                num_epochs=args.joint_epochs,
                eval_every_epochs=args.joint_epochs,  # evaluation draws no random numbers: same training
                learning_rate=1e-3,
                **common_arguments(args),
            )
        )
    metrics = json.loads((folder / "final" / "metrics.json").read_text())
    prefix = "top5_mAP/"
    return folder / "final", {
        name[len(prefix) :]: v for name, v in metrics.items() if name.startswith(prefix)
    }


def fine_tune_arguments(args: argparse.Namespace, start: Path, domain: str) -> RDMFTrainingArguments:
    return RDMFTrainingArguments(
        output_dir=str(Path(args.work_dir) / f"seed{args.seed}_lr{args.learning_rate}" / domain),
        num_epochs=args.epochs,
        eval_every_epochs=args.eval_every,
        learning_rate=args.learning_rate,
        domain=domain,
        model_name_or_path=str(start),
        **common_arguments(args),
    )


def check_before_the_joint_model(args: argparse.Namespace) -> None:
    """What the fine-tuning runs would refuse after the joint model's minutes of training, checked first
    (the counts, each category's run arguments, the results file)."""
    for flag in ("joint_epochs", "epochs", "eval_every", "threads"):
        require_positive_integer(f"--{flag}", getattr(args, flag))
    for domain in args.domains:
        fine_tuning = fine_tune_arguments(args, Path(args.work_dir), domain)
        check_flags_apply(fine_tuning)
        check_numeric_ranges(fine_tuning)
    check_output_paths({"--results": args.results}, {"--data_root": args.data_root})
    read_results(Path(args.results))
    check_can_write_in("--results", Path(args.results).parent)


def read_results(path: Path) -> dict:
    """``{"lr{rate}/seed{seed}": {category: run}}`` of the results file (empty when it does not exist yet);
    a ``ValueError`` naming ``--results`` on any other content."""
    try:
        results = read_strict_json(path) if path.exists() else {}
    except ValueError as error:
        raise ValueError(f"--results {error}") from None
    if not isinstance(results, dict) or not all(isinstance(runs, dict) for runs in results.values()):
        raise ValueError(f"--results {path}: expected an object {{'lr.../seed...': {{category: run}}}}")
    return results


def fine_tune(args: argparse.Namespace, start: Path, domain: str) -> dict:
    arguments = fine_tune_arguments(args, start, domain)
    began = time.perf_counter()
    train(arguments)
    output = Path(arguments.output_dir)
    curve = [(step, value) for step, name, value in read_csv_log(output) if name == "eval/top5_mAP"]
    return {
        "curve": curve,
        "best": max(value for _, value in curve),
        "final": curve[-1][1],
        "seconds": time.perf_counter() - began,
    }


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_root", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--joint_epochs", type=int, default=60)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--eval_every", type=int, default=5)
    parser.add_argument("--domains", nargs="+", default=list(TVSUM_DOMAINS))
    parser.add_argument("--work_dir", default="runs/tvsum_joint_fine_tune")
    parser.add_argument("--results", default="results/tvsum_joint_fine_tune.json")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    def work() -> None:
        check_before_the_joint_model(args)
        torch.set_num_threads(args.threads)
        start, joint_scores = joint_model(args)
        key, runs = f"lr{args.learning_rate}/seed{args.seed}", {}
        for domain in args.domains:
            runs[domain] = {"joint": joint_scores[domain], **fine_tune(args, start, domain)}
            results = read_results(Path(args.results))  # read again: another rate or seed may have written
            results.setdefault(key, {})[domain] = runs[domain]
            atomic_write_json(args.results, results)
            run = runs[domain]
            print(
                f"{domain}: joint {run['joint']:.2f}, fine-tuned best {run['best']:.2f} final {run['final']:.2f}"
            )
        done = [runs[d] for d in args.domains]
        print(
            f"mean over {len(done)}: joint {statistics.mean(r['joint'] for r in done):.2f}, fine-tuned best "
            f"{statistics.mean(r['best'] for r in done):.2f} final {statistics.mean(r['final'] for r in done):.2f}"
        )

    return run_command("tvsum_joint_fine_tune.py", work)


if __name__ == "__main__":
    sys.exit(main())
