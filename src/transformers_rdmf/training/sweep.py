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
import tempfile
import time
from pathlib import Path

from ..dataset_specs import dataset_spec
from . import selection
from .arguments import parse_overrides
from .selection import (
    CV_FOLDS,
    best_on_curve,
    cv_data_arguments,
    fold_data_arguments,
    official_data_arguments,
)

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
    from transformers_rdmf.training.tracking import last_per_video_scores

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
        per_video = last_per_video_scores(Path(output_dir))
    headline = f"eval/{headline_of(job['dataset'])}"
    if job["domain"] is not None:
        run = scored_run(job, [(step, v) for step, name, v in log if name == headline], seconds)
        return [{**run, **({"per_video": per_video[job["domain"]]} if job["domain"] in per_video else {})}]
    # a joint model: one result per domain, read on that domain's curve
    return [
        {
            **scored_run(
                {**job, "domain": domain},
                [(step, v) for step, name, v in log if name == f"{headline}/{domain}"],
                seconds,
            ),
            **({"per_video": per_video[domain]} if domain in per_video else {}),
        }
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
    """``RDMFTrainingArguments`` data fields: the official split, a fold of the domain's train videos, or a
    TVSum cross-validation fold (``job["cv_fold"]``; with ``job["fold"]``, one of its inner folds)."""
    domains = None if job["domain"] is None else [job["domain"]]
    if job.get("cv_fold") is not None:
        return cv_data_arguments(
            job["data_root"], domains, job["cv_fold"], work, job.get("fold"), job["folds"]
        )
    if job.get("fold") is None:
        return official_data_arguments(job["dataset"], job["data_root"])
    return fold_data_arguments(job["dataset"], job["data_root"], domains, job["fold"], job["folds"], work)


def job_key(job: dict) -> str:
    key = f"{label_of(job)}/{job['domain']}/{job['seed']}"
    if job.get("cv_fold") is not None:
        key = f"{key}/cv{job['cv_fold']}"
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
            "cv_fold": cv_fold,
        }
        for variant in args.variants
        for seed in args.seeds
        for cv_fold in (range(CV_FOLDS) if getattr(args, "protocol", "official") == "cv" else [None])
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
        and (label_of(r), r["seed"], r.get("cv_fold")) == (label_of(run), run["seed"], run.get("cv_fold"))
        and (run.get("joint") or r["domain"] == run["domain"])
    ]


def is_cross_validated(run: dict) -> bool:
    """Whether a run (one fold: ``cv_fold``) or a gathered row (``cv_folds``) is TVSum cross-validation."""
    return run.get("cv_fold") is not None or bool(run.get("cv_folds"))


def label_of(run: dict) -> str:
    names = [name for name in ("joint" if run.get("joint") else "", run.get("tag", "")) if name]
    if is_cross_validated(run):
        names.insert(0, "CV")
    return run["variant"] + (f" ({', '.join(names)})" if names else "")


def has_every_fold(folds: list[dict]) -> bool:
    """Whether ``folds`` holds each of the inner folds its runs were made with (``folds``, their count):
    a sweep still running, or one interrupted, has only some, and they must not choose an epoch."""
    wanted = max((fold.get("folds") or 0) for fold in folds)
    return {fold["fold"] for fold in folds} >= set(range(wanted))


def with_fold_selection(results: list[dict]) -> list[dict]:
    """The runs that are not inner-fold runs (``fold`` None), each with ``train_fold`` = its
    train-fold-selected score when all its inner-fold runs exist."""
    runs = [{k: v for k, v in r.items() if k != "fold"} for r in results if r.get("fold") is None]
    for run in runs:
        folds = folds_of(run, results)
        if folds and has_every_fold(folds):
            run["train_fold"] = fold_selected(run, folds)
    return runs


def report(
    results_paths: list[str],
    seeds: list[int] | None = None,
    plot: str | None = None,
    data_root: str | None = None,
    into: tuple[str, str] | None = None,
    variants: list[str] | None = None,
) -> None:
    """Print `report.highlight_report` of results files (tables per protocol, selection baseline, paired
    tests); with ``into = (document, section)``, also write it between the section's markers there."""
    from .report import highlight_report, write_into_document

    text = highlight_report(results_paths, seeds, plot=plot, data_root=data_root, variants=variants)
    if into is not None:
        write_into_document(*into, text)
    print(text)
