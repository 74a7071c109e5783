"""Highlight-detection result sweeps: one model per category (or one joint model), several seeds and
ablation variants, scored by the three protocols of `selection` and reported as markdown tables.

``scripts/run_highlight_results.py`` is the command line over this module (docs/results.md shows its
tables). A sweep's results are appended to its JSON after every run, so an interrupted sweep resumes.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

from ..atomic import atomic_write_json, check_can_write_in, check_figure_path, check_output_paths
from ..dataset_specs import dataset_spec
from . import selection
from .arguments import (
    RDMFTrainingArguments,
    check_before_training,
    check_training_values,
    parse_overrides,
)
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

    from transformers_rdmf.training import read_csv_log, train  # patchable in tests
    from transformers_rdmf.training.tracking import last_per_video_scores

    torch.set_num_threads(job["threads"])
    with tempfile.TemporaryDirectory() as work:
        output_dir = os.path.join(work, "run")
        args = training_arguments(job, data_arguments(job, Path(work)), output_dir)
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


# The run arguments a sweep sets itself, and the sweep flag that gives each (None: none does).
SET_BY_THE_SWEEP = {
    "output_dir": None, "preset": "--variants and --set", "config_overrides": "--set",
    "dataset": "--dataset", "domain": "--domains", "seed": "--seeds", "num_epochs": "--epochs",
    "eval_every_epochs": "--eval_every", "learning_rate": "--learning_rate", "batch_size": "--batch_size",
    "disable_progress_bar": None, "data_root": "--data_root", "train_annotations": "--protocol",
    "eval_annotations": "--protocol", "splits_file": "--protocol and --train_folds",
}  # fmt: skip


def training_arguments(job: dict, data: dict, output_dir: str) -> RDMFTrainingArguments:
    """The ``rdmf-train`` arguments a job trains with: its dataset's preset, its variant's config with the
    sweep's ``--set`` on top, its data fields (`data_arguments`) and the sweep's ``--train`` values.

    Raises:
        ValueError: a ``--train`` key that the sweep sets itself, naming the flag that gives it.
    """
    own = dict(
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
    )
    training = job.get("training", {})
    for key in sorted(set(own) & set(training)):
        flag = SET_BY_THE_SWEEP.get(key)
        raise ValueError(f"--train {key}: the sweep sets it itself" + (f"; give {flag}" if flag else ""))
    return RDMFTrainingArguments(**own, **training)


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


def planned_jobs(args: argparse.Namespace) -> list[dict]:
    """Every run a sweep's flags ask for, in a fixed order: per variant, seed, cross-validation fold (with
    ``--protocol cv``), domain (one joint job with ``--joint``), then the official-split run and its
    ``--train_folds`` inner-fold runs."""
    overrides = parse_overrides(args.set)
    training = parse_overrides(args.train, "--train")
    return [
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
            "training": training,
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


def checked_jobs(args: argparse.Namespace) -> list[dict]:
    """`planned_jobs`, after checking in this process, before any training, what a run would otherwise
    refuse minutes into a sweep, in a worker's traceback.

    Raises:
        ValueError or OSError: one line naming the flag (``--results``, ``--data_root``, ``--train``), or
            the first job a check refuses and why (``--set``, ``--domains``, ``--seeds``, a value's range).
    """
    check_results_file(Path(args.results), args.dataset, args.data_root)
    if not Path(args.data_root).is_dir():
        raise FileNotFoundError(f"--data_root: {args.data_root} is not a folder")
    check_training_values(parse_overrides(args.train, "--train"), "--train")
    jobs = planned_jobs(args)
    for job in jobs_to_check(jobs):
        check_job(job)
    return jobs


def check_results_file(results: Path, dataset: str, data_root: str) -> None:
    """A sweep appends to its own results file and to nothing else: not in ``--data_root``, a results file
    of ``dataset``'s runs where it exists, in a folder that can be written."""
    check_output_paths({"--results": results}, {"--data_root": data_root})
    try:
        runs = read_results_file_or_nothing(results)
    except ValueError as error:
        raise ValueError(f"--results {error}") from None
    others = sorted({run["dataset"] for run in runs.values()} - {dataset})
    if others:
        raise ValueError(
            f"--results {results}: holds {', '.join(others)} runs; a {dataset} sweep needs its own file"
        )
    check_can_write_in("--results", results.parent)


def jobs_to_check(jobs: list[dict]) -> list[dict]:
    """The jobs whose checks cover all of ``jobs``: what a check reads depends on the variant (the
    config), the domain and seed (the arguments' ranges) and the domain and folds (the data files), the
    rest being the sweep's own flags, so the first job of each such value stands for the others."""
    seen: set[tuple] = set()
    chosen = []
    for job in jobs:
        keys = {
            ("config", job["variant"]),
            ("arguments", job["domain"], job["seed"]),
            ("data", job["domain"], job.get("cv_fold"), job["fold"]),
        }
        if keys - seen:
            chosen.append(job)
            seen |= keys
    return chosen


def check_job(job: dict) -> None:
    """The checks `run_one`'s training starts with (`check_before_training`, the config with its
    overrides), on the job's own data and arguments; a refusal names the job."""
    from .loop import build_config

    with tempfile.TemporaryDirectory() as work:
        try:
            args = training_arguments(job, data_arguments(job, Path(work)), os.path.join(work, "run"))
            check_before_training(args)
            build_config(args)
        except (OSError, ValueError) as error:
            raise ValueError(f"{job_key(job)}: {error}") from None


def run_sweep(args: argparse.Namespace, jobs: list[dict] | None = None) -> None:
    """Train the jobs of ``args`` (`checked_jobs` unless given) not yet in ``--results``, ``--jobs`` at a
    time, writing the results file atomically after every run."""
    jobs = checked_jobs(args) if jobs is None else jobs
    results_path = Path(args.results)
    results = read_results_file_or_nothing(results_path)
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
            atomic_write_json(results_path, results)


def read_results_file_or_nothing(path: Path) -> dict[str, dict]:
    """The runs already in a sweep's results file, none when it does not exist yet."""
    from .report import read_results_file

    return read_results_file(path) if path.exists() else {}


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

    inputs = {"--report": list(results_paths), "--data_root": data_root, "--into": into and into[0]}
    check_output_paths({"--plot": plot}, inputs)
    check_figure_path("--plot", plot)
    text = highlight_report(results_paths, seeds, plot=plot, data_root=data_root, variants=variants)
    if into is not None:
        write_into_document(*into, text)
    print(text)
