"""Highlight-detection result sweeps: one model per category (or one joint model), several seeds and
ablation variants, scored by the three protocols of `selection` and reported as markdown tables.

``scripts/run_highlight_results.py`` is the command line over this module (docs/results.md shows its
tables). A sweep's results are appended to its JSON after every run, so an interrupted sweep resumes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

from ..dataset_specs import dataset_spec
from . import selection
from .arguments import parse_overrides
from .selection import best_on_curve, fold_data_arguments, official_data_arguments

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


def headline_of(dataset: str) -> str:
    return dataset_spec(dataset).headline_metric


def domains_of(dataset: str) -> list[str]:
    return list(dataset_spec(dataset).domains)


def run_one(job: dict) -> list[dict]:
    """Train one (variant, domain, seed[, fold]) and read its eval curve from the CSV log.

    With ``job["fold"] = k``, the model trains on the domain's train videos but every ``folds``-th one
    from the k-th, and is evaluated on those held-out train videos: the val videos are not used.
    ``job["domain"] = None`` trains one model on every domain (``--joint``): one result per domain.
    """
    import torch

    from transformers_rdmf.training import RDMFTrainingArguments, read_csv_log, train  # patchable in tests

    torch.set_num_threads(job["threads"])
    with tempfile.TemporaryDirectory() as work:
        data = data_arguments(job, Path(work))
        output_dir = os.path.join(work, "run")
        args = RDMFTrainingArguments(
            output_dir=output_dir,
            preset=dataset_spec(job["dataset"]).preset,
            config_overrides={**VARIANTS[job["variant"]], **job["overrides"]},
            dataset=job["dataset"],
            domain=job["domain"],
            seed=job["seed"],
            num_epochs=job["epochs"],
            eval_every_epochs=job["eval_every"],
            learning_rate=job["learning_rate"],
            batch_size=job["batch_size"],
            disable_progress_bar=True,
            **data,
            **job.get("training", {}),
        )
        start = time.perf_counter()
        train(args)
        seconds = time.perf_counter() - start
        log = read_csv_log(output_dir)
    headline = f"eval/{headline_of(job['dataset'])}"
    if job["domain"] is not None:
        return [scored_run(job, [(step, v) for step, name, v in log if name == headline], seconds)]
    # a joint model: one result per domain, read on that domain's curve
    return [
        scored_run(
            {**job, "domain": domain},
            [(step, v) for step, name, v in log if name == f"{headline}/{domain}"],
            seconds,
        )
        for domain in domains_of(job["dataset"])
    ]


def scored_run(job: dict, curve: list[tuple[int, float]], seconds: float) -> dict:
    """The job with its eval curve, the best point on it (earliest on ties) and its last point."""
    if not curve:
        raise RuntimeError(f"{job_key(job)}: no evaluation was logged")
    best_step, best = best_on_curve(curve)
    return {
        **job,
        "best": best,
        "best_step": best_step,
        "final": curve[-1][1],
        "curve": curve,
        "seconds": seconds,
    }


def data_arguments(job: dict, work: Path) -> dict:
    """``RDMFTrainingArguments`` data fields: the official split, or a fold of the domain's train videos."""
    if job.get("fold") is None:
        return official_data_arguments(job["dataset"], job["data_root"])
    domains = None if job["domain"] is None else [job["domain"]]
    return fold_data_arguments(job["dataset"], job["data_root"], domains, job["fold"], job["folds"], work)


def job_key(job: dict) -> str:
    key = f"{label_of(job)}/{job['domain']}/{job['seed']}"
    return key if job.get("fold") is None else f"{key}/fold{job['fold']}"


def result_keys(job: dict) -> list[str]:
    """The keys a job's results are stored under: one, or one per domain for a joint model."""
    if job["domain"] is not None:
        return [job_key(job)]
    return [job_key({**job, "domain": domain}) for domain in domains_of(job["dataset"])]


def run_sweep(args: argparse.Namespace) -> None:
    results_path = Path(args.results)
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    overrides = parse_overrides(args.set)
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
            "training": parse_overrides(args.train),
            "threads": getattr(args, "threads", None) or max(1, (os.cpu_count() or 1) // args.jobs),
            "fold": fold,
            "folds": args.train_folds,
            "tag": args.tag,
            "joint": args.joint,
        }
        for variant in args.variants
        for seed in args.seeds
        for domain in ([None] if args.joint else args.domains or domains_of(args.dataset))
        for fold in [None, *range(args.train_folds)]
    ]
    pending = [job for job in jobs if any(key not in results for key in result_keys(job))]
    print(f"{len(jobs)} runs, {len(pending)} to do, {args.jobs} at a time")
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.jobs, maxtasksperchild=1) as pool:
        for job_results in pool.imap_unordered(run_one, pending):
            for result in job_results:
                results[job_key(result)] = result
                print(
                    f"{job_key(result)}: best {result['best']:.2f} final {result['final']:.2f} ({result['seconds']:.0f} s)"
                )
            results_path.parent.mkdir(parents=True, exist_ok=True)
            results_path.write_text(json.dumps(results, indent=1))


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def fold_selected(run: dict, folds: list[dict]) -> float:
    """The run's val score at the epoch count that scores best on held-out train videos."""
    return selection.fold_selected(run["curve"], [fold["curve"] for fold in folds])


def folds_of(run: dict, results: list[dict]) -> list[dict]:
    """The train-fold runs that choose ``run``'s epoch.

    A per-domain model's are its own domain's; a joint model's (one model for every domain) are every
    domain's, so all its domains are read at the same epoch, the best on the mean held-out curve.
    """
    return [
        r
        for r in results
        if r.get("fold") is not None
        and (label_of(r), r["seed"]) == (label_of(run), run["seed"])
        and (run.get("joint") or r["domain"] == run["domain"])
    ]


def label_of(run: dict) -> str:
    names = [name for name in ("joint" if run.get("joint") else "", run.get("tag", "")) if name]
    return run["variant"] + (f" ({', '.join(names)})" if names else "")


def with_fold_selection(results: list[dict]) -> list[dict]:
    """The official-split runs, each with ``fold`` = its train-fold-selected score when its folds exist."""
    runs = [{k: v for k, v in r.items() if k != "fold"} for r in results if r.get("fold") is None]
    for run in runs:
        folds = folds_of(run, results)
        if folds:
            run["fold"] = fold_selected(run, folds)
    return runs


def report(results_paths: list[str], seeds: list[int] | None = None) -> None:
    """Markdown tables: per domain and the mean over domains, one table per protocol.

    Protocols: best val epoch; fixed schedule; and, where train-fold runs exist (``--train_folds``),
    the epoch count chosen on held-out train videos. Several results files are merged (e.g. the full
    model's runs beside the ablations'); ``seeds`` keeps only those seeds' runs.
    """
    merged = {}
    for path in results_paths:
        merged.update(json.loads(Path(path).read_text()))
    results = with_fold_selection([r for r in merged.values() if seeds is None or r["seed"] in seeds])
    dataset = results[0]["dataset"]
    domains = [d for d in domains_of(dataset) if any(r["domain"] == d for r in results)]
    labels = list(
        dict.fromkeys(label_of(r) for r in sorted(results, key=lambda r: list(VARIANTS).index(r["variant"])))
    )
    protocols = [
        ("best", "best val epoch (as UMT/QD-DETR/CG-DETR report)"),
        ("final", "fixed schedule (never looks at val)"),
        ("fold", "epochs chosen on held-out train videos (never looks at val)"),
    ]
    for protocol, title in protocols:
        if not any(protocol in r for r in results):
            continue
        print(f"\n{headline_of(dataset)}, {title}; mean ± std over seeds\n")
        print("| variant | " + " | ".join(domains) + " | mean | seeds | s/run |")
        print("|---" * (len(domains) + 4) + "|")
        for label in labels:
            runs = [r for r in results if label_of(r) == label and protocol in r]
            if not runs:
                continue
            seeds_run = sorted({r["seed"] for r in runs})
            cells = [mean_std([r[protocol] for r in runs if r["domain"] == d]) for d in domains]
            per_seed_means = [
                statistics.mean(r[protocol] for r in runs if r["seed"] == s)
                for s in seeds_run
                if len([r for r in runs if r["seed"] == s]) == len(domains)
            ]
            seconds = statistics.mean(r["seconds"] for r in runs)
            mean = mean_std(per_seed_means) if per_seed_means else "-"
            print(f"| {label} | " + " | ".join(cells) + f" | {mean} | {len(seeds_run)} | {seconds:.0f} |")
        published = dataset_spec(dataset).published
        umt = [published[d] for d in domains]
        print(
            "| UMT (published) | "
            + " | ".join(f"{v:.2f}" for v in umt)
            + f" | {statistics.mean(umt):.2f} | | |"
        )
