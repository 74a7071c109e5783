"""Reproduce the highlight-detection tables of docs/results.md (TVSum top-5 mAP, YouTube Highlights mAP).

One model per category (TVSum) or domain (YouTube Highlights), trained on its train videos with
``rdmf-train``'s code, evaluated on its val videos every ``--eval_every`` epochs. Two numbers per run:

- ``best``: the best val score seen during training (how UMT, QD-DETR and CG-DETR report: the val
  video chooses the epoch);
- ``final``: the score after the fixed schedule (``--epochs``), which never looks at the val video.

Usage::

    python scripts/run_highlight_results.py --dataset tvsum --data_root ../shared/data/tvsum \
        --variants full --seeds 0 1 2 --epochs 100 --results results/tvsum.json
    python scripts/run_highlight_results.py --report results/tvsum.json   # print the tables
    python scripts/run_highlight_results.py --report results/tvsum.json results/tvsum_ablations.json --seeds 0

Results are appended to the JSON after every run, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {
    "full": {},
    "no_temporal_diffusion": {"use_temporal_diffusion": False},
    "cross_attention": {"fusion_type": "cross_attention"},
    "no_iou_head": {"use_iou_head": False},
    "K0": {"diffusion_steps": 0},
    "K5": {"diffusion_steps": 5},
    "K15": {"diffusion_steps": 15},
    "K20": {"diffusion_steps": 20},
}
HEADLINE = {"tvsum": "top5_mAP", "youtube_highlights": "mAP"}
PRESET = {"tvsum": "tvsum_i3d", "youtube_highlights": "youtube_highlights_i3d"}
PUBLISHED_UMT = {
    "tvsum": {"VT": 87.54, "VU": 81.51, "GA": 88.22, "MS": 78.81, "PK": 81.42, "PR": 86.96, "FM": 75.96,
              "BK": 86.89, "BT": 84.42, "DS": 79.63},
    "youtube_highlights": {"dog": 65.93, "gymnastics": 75.20, "parkour": 81.64, "skating": 71.81, "skiing": 72.27,
                           "surfing": 82.71},
}  # fmt: skip


def domains_of(dataset: str) -> list[str]:
    from transformers_rdmf.data import TVSUM_DOMAINS, YOUTUBE_HIGHLIGHTS_DOMAINS

    return list(TVSUM_DOMAINS if dataset == "tvsum" else YOUTUBE_HIGHLIGHTS_DOMAINS)


def run_one(job: dict) -> dict:
    """Train one (variant, domain, seed) and read its val curve from the CSV log."""
    import torch

    from transformers_rdmf.training import TrainingArguments, read_csv_log, train

    torch.set_num_threads(job["threads"])
    root = Path(job["data_root"])
    with tempfile.TemporaryDirectory() as output_dir:
        args = TrainingArguments(
            output_dir=output_dir,
            preset=PRESET[job["dataset"]],
            config_overrides={**VARIANTS[job["variant"]], **job["overrides"]},
            dataset=job["dataset"],
            train_annotations=str(root / "tvsum_train_release.jsonl") if job["dataset"] == "tvsum" else None,
            eval_annotations=str(root / "tvsum_val_release.jsonl") if job["dataset"] == "tvsum" else None,
            data_root=str(root),
            domain=job["domain"],
            seed=job["seed"],
            num_epochs=job["epochs"],
            eval_every_epochs=job["eval_every"],
            learning_rate=job["learning_rate"],
            batch_size=job["batch_size"],
            disable_progress_bar=True,
        )
        start = time.perf_counter()
        train(args)
        seconds = time.perf_counter() - start
        headline = f"eval/{HEADLINE[job['dataset']]}"
        curve = [(step, value) for step, name, value in read_csv_log(output_dir) if name == headline]
    best_step, best = max(curve, key=lambda point: point[1])
    return {
        **job,
        "best": best,
        "best_step": best_step,
        "final": curve[-1][1],
        "curve": curve,
        "seconds": seconds,
    }


def job_key(job: dict) -> str:
    return f"{job['variant']}/{job['domain']}/{job['seed']}"


def run_sweep(args: argparse.Namespace) -> None:
    results_path = Path(args.results)
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    overrides = dict(pair.split("=", 1) for pair in args.set)
    overrides = {k: json.loads(v) for k, v in overrides.items()}
    jobs = [
        {
            "dataset": args.dataset,
            "data_root": args.data_root,
            "variant": variant,
            "domain": domain,
            "seed": seed,
            "epochs": args.epochs,
            "eval_every": args.eval_every,
            "learning_rate": args.learning_rate,
            "batch_size": args.batch_size,
            "overrides": overrides,
            "threads": max(1, (os.cpu_count() or 1) // args.jobs),
        }
        for variant in args.variants
        for seed in args.seeds
        for domain in (args.domains or domains_of(args.dataset))
    ]
    pending = [job for job in jobs if job_key(job) not in results]
    print(f"{len(jobs)} runs, {len(pending)} to do, {args.jobs} at a time")
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.jobs, maxtasksperchild=1) as pool:
        for result in pool.imap_unordered(run_one, pending):
            results[job_key(result)] = result
            results_path.parent.mkdir(parents=True, exist_ok=True)
            results_path.write_text(json.dumps(results, indent=1))
            print(
                f"{job_key(result)}: best {result['best']:.2f} final {result['final']:.2f} ({result['seconds']:.0f} s)"
            )


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def report(results_paths: list[str], seeds: list[int] | None = None) -> None:
    """Markdown tables: per domain and the mean over domains, best-val and fixed-schedule protocols.

    Several results files are merged (e.g. the full model's runs beside the ablations'); ``seeds``
    keeps only those seeds' runs, so variants compare on the same seeds.
    """
    merged = {}
    for path in results_paths:
        merged.update(json.loads(Path(path).read_text()))
    results = [r for r in merged.values() if seeds is None or r["seed"] in seeds]
    dataset = results[0]["dataset"]
    domains = [d for d in domains_of(dataset) if any(r["domain"] == d for r in results)]
    variants = [v for v in VARIANTS if any(r["variant"] == v for r in results)]
    for protocol, label in [
        ("best", "best val epoch (as UMT/QD-DETR/CG-DETR report)"),
        ("final", "fixed schedule (never looks at val)"),
    ]:
        print(f"\n{HEADLINE[dataset]}, {label}; mean ± std over seeds\n")
        print("| variant | " + " | ".join(domains) + " | mean | seeds | s/run |")
        print("|---" * (len(domains) + 4) + "|")
        for variant in variants:
            runs = [r for r in results if r["variant"] == variant]
            seeds = sorted({r["seed"] for r in runs})
            cells = [mean_std([r[protocol] for r in runs if r["domain"] == d]) for d in domains]
            per_seed_means = [
                statistics.mean(r[protocol] for r in runs if r["seed"] == s)
                for s in seeds
                if len([r for r in runs if r["seed"] == s]) == len(domains)
            ]
            seconds = statistics.mean(r["seconds"] for r in runs)
            mean = mean_std(per_seed_means) if per_seed_means else "-"
            print(f"| {variant} | " + " | ".join(cells) + f" | {mean} | {len(seeds)} | {seconds:.0f} |")
        published = PUBLISHED_UMT[dataset]
        umt = [published[d] for d in domains]
        print(
            "| UMT (published) | "
            + " | ".join(f"{v:.2f}" for v in umt)
            + f" | {statistics.mean(umt):.2f} | | |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", choices=sorted(HEADLINE), default="tvsum")
    parser.add_argument("--data_root")
    parser.add_argument("--variants", nargs="+", default=["full"], choices=sorted(VARIANTS))
    parser.add_argument("--domains", nargs="+")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--eval_every", type=int, default=5)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--set", action="append", default=[], help="config override key=value for every run")
    parser.add_argument(
        "--jobs", type=int, default=1, help="runs in parallel (each gets cpu_count / jobs threads)"
    )
    parser.add_argument("--results", default="results/highlights.json")
    parser.add_argument(
        "--report", nargs="+", metavar="RESULTS_JSON", help="only print the tables of results files"
    )
    args = parser.parse_args()
    if args.report:
        report(args.report, args.seeds if "--seeds" in sys.argv else None)
        return
    if not args.data_root:
        parser.error("--data_root is required to train")
    run_sweep(args)
    report([args.results])


if __name__ == "__main__":
    main()
