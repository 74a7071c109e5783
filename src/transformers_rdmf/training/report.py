"""The highlight-detection report: tables of a sweep's results files, the selection baseline beside every
best-val figure, paired significance tests between variants, and a plot of the per-category spread.

`highlight_report` is the library function (``scripts/run_highlight_results.py --report`` prints it). What
it reads are the results files `sweep.run_sweep` writes: one entry per run, with its eval curve, its
``best`` / ``final`` (and, with train folds, ``train_fold``) scores and, for runs that wrote predictions, each
eval video's own score (``per_video``).

- **TVSum cross-validation** runs (``cv_fold`` 0-4) are first gathered per (variant, seed, category): the
  category's score is the mean over its five test videos, so every TVSum video is scored once.
- **Selection baseline**: a best-val number is a maximum over evaluations. Beside it the report prints the
  expected best of as many *random* rankings of the same val videos (simulated, seeded): how much a
  maximum over that many draws reaches with no model at all.
- **Paired tests** (`significance`) compare two variants on the same (seed, video) pairs: the paired
  t-test and the Wilcoxon signed-rank test (scipy), two-sided, with a Holm adjustment per table: each
  full model against its ablations and the recipes built on it, and one model per category (or domain)
  against the joint model of the same recipe.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..dataset_specs import dataset_spec
from .selection import CV_FOLDS
from .selection_baseline import selection_baseline_rows
from .significance import comparisons, setting_comparisons, significance_lines

PROTOCOLS = (
    ("final", "fixed schedule (never looks at the test or val videos)"),
    ("train_fold", "epoch chosen on held-out train videos (never looks at the test or val videos)"),
    ("best", "best val epoch (as UMT/QD-DETR/CG-DETR report: the val video chooses the epoch)"),
)
PROTOCOL_KEYS = tuple(protocol for protocol, _ in PROTOCOLS)
PROTOCOL_SHORT_NAMES = {
    "final": "fixed schedule",
    "train_fold": "epoch chosen on train folds",
    "best": "best val epoch",
}


# What every run of a results file holds (`sweep.scored_run`), the fields the tables read.
RUN_FIELDS = ("dataset", "variant", "domain", "seed", "curve", "seconds", "best", "final")


def load_results(
    paths: Sequence[str | Path], seeds: Sequence[int] | None = None, variants: Sequence[str] | None = None
) -> list[dict]:
    """The runs of several results files, merged (a later file's run replaces an earlier one of its key),
    only those of ``seeds`` and ``variants`` where given (a variant keeps its tagged recipes)."""
    merged: dict[str, dict] = {}
    for path in paths:
        merged.update(read_results_file(Path(path)))
    return [
        run
        for run in merged.values()
        if (seeds is None or run["seed"] in seeds) and (variants is None or run["variant"] in variants)
    ]


def read_results_file(path: Path) -> dict[str, dict]:
    """``{key: run}`` of one results file; `ValueError` naming the file and the key on a malformed one."""
    runs = read_strict_json(path)
    if not isinstance(runs, dict):
        raise ValueError(f"{path}: expected an object of runs {{key: run}}, found {type(runs).__name__}")
    for key, run in runs.items():
        missing = [field for field in RUN_FIELDS if not isinstance(run, dict) or field not in run]
        if missing:
            raise ValueError(f"{path}: run {key!r} lacks {', '.join(missing)}")
    return runs


def read_strict_json(path: Path) -> Any:
    """The JSON in ``path``; a ``ValueError`` naming the file where it is not JSON (with the line) or holds
    ``NaN`` or ``Infinity`` (`refuse_non_finite`)."""
    try:
        return json.loads(path.read_text(), parse_constant=refuse_non_finite(path))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON ({error.msg}, line {error.lineno})") from None


def refuse_non_finite(path: Path):
    """A ``json.loads`` hook for ``NaN``, ``Infinity`` and ``-Infinity`` (Python's JSON reads them; strict
    JSON has none): a score that is not a number would turn every mean and test it enters into NaN."""

    def refuse(constant: str):
        raise ValueError(f"{path}: holds {constant}; every score in a results file is a finite number")

    return refuse


def gathered_cv(runs: list[dict]) -> list[dict]:
    """TVSum cross-validation runs gathered per (label, seed, domain): the mean of each protocol over the
    five test videos, their ``per_video`` scores joined and the curves kept (``curves``). A protocol some
    fold lacks (train-fold selection whose inner runs are not all done) is left out of the group; groups
    missing a fold are left out; other runs pass through unchanged."""
    from .sweep import label_of

    plain = [run for run in runs if run.get("cv_fold") is None]
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        if run.get("cv_fold") is not None:
            groups.setdefault((label_of(run), run["seed"], run["domain"]), []).append(run)
    for folds in groups.values():
        if len({run["cv_fold"] for run in folds}) != CV_FOLDS:
            continue
        folds = sorted(folds, key=lambda run: run["cv_fold"])
        merged = {
            k: v for k, v in folds[0].items() if k not in ("cv_fold", "curve", "per_video", *PROTOCOL_KEYS)
        }
        merged["cv_folds"] = CV_FOLDS
        merged["curves"] = [run["curve"] for run in folds]
        for protocol in PROTOCOL_KEYS:  # a mean over all five folds, or absent
            if all(protocol in run for run in folds):
                merged[protocol] = statistics.mean(run[protocol] for run in folds)
        if all("per_video" in run for run in folds):
            merged["per_video"] = {qid: v for run in folds for qid, v in run["per_video"].items()}
        merged["seconds"] = statistics.mean(run["seconds"] for run in folds)
        plain.append(merged)
    return plain


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def seed_means(runs: list[dict], protocol: str, num_domains: int) -> dict[int, float]:
    """``{seed: mean of protocol over domains}`` of one label's runs, for the seeds that have every domain."""
    seeds = sorted({r["seed"] for r in runs})
    scores = {seed: [r[protocol] for r in runs if r["seed"] == seed and protocol in r] for seed in seeds}
    return {seed: statistics.mean(v) for seed, v in scores.items() if len(v) == num_domains}


def protocol_table(runs: list[dict], protocol: str, domains: list[str], labels: list[str]) -> list[str]:
    """Markdown rows: per label, mean ± std over seeds per domain, and of the per-seed mean over domains."""
    from .sweep import label_of

    lines = [
        "| variant | " + " | ".join(domains) + " | mean | seeds | s/run |",
        "|---" * (len(domains) + 4) + "|",
    ]
    for label in labels:
        chosen = [r for r in runs if label_of(r) == label and protocol in r]
        if not chosen:
            continue
        seeds = sorted({r["seed"] for r in chosen})
        cells = [mean_std([r[protocol] for r in chosen if r["domain"] == d]) for d in domains]
        per_seed = list(seed_means(chosen, protocol, len(domains)).values())
        seconds = statistics.mean(r["seconds"] for r in chosen)
        lines.append(
            f"| {label} | " + " | ".join(cells) + f" | {mean_std(per_seed)} | {len(seeds)} | {seconds:.0f} |"
        )
    return lines


def plot_spread(
    runs: list[dict], protocol: str, domains: list[str], labels: list[str], path: str | Path
) -> None:
    """A figure in the format ``path``'s suffix names: per category, each variant's per-seed scores (dots)
    and their mean (a bar)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..atomic import atomic_savefig
    from .sweep import label_of

    figure, axis = plt.subplots(figsize=(1.1 * len(domains) + 2, 3.6))
    width = 0.8 / max(1, len(labels))
    for index, label in enumerate(labels):
        for position, domain in enumerate(domains):
            values = [
                r[protocol] for r in runs if label_of(r) == label and r["domain"] == domain and protocol in r
            ]
            if not values:
                continue
            x = position + (index - (len(labels) - 1) / 2) * width
            axis.bar(
                x,
                statistics.mean(values),
                width * 0.9,
                color=f"C{index}",
                alpha=0.35,
                label=label if position == 0 else None,
            )
            axis.scatter([x] * len(values), values, s=10, color=f"C{index}")
    axis.set_xticks(range(len(domains)), domains)
    axis.set_ylabel("score (per seed)")
    axis.set_title(
        f"{runs[0]['dataset']}: per-category scores of each seed (dots) and their mean, {PROTOCOL_SHORT_NAMES[protocol]}"
    )
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    atomic_savefig(figure, path, dpi=120)
    plt.close(figure)


def published_row(published: dict[str, float], domains: list[str]) -> str:
    """The table row of UMT's published per-domain scores and their mean."""
    umt = [published[d] for d in domains]
    return (
        "| UMT (published) | " + " | ".join(f"{v:.2f}" for v in umt) + f" | {statistics.mean(umt):.2f} | | |"
    )


def paired_test_section(
    runs: list[dict], reference: str, others: Sequence[str], about: str = ""
) -> list[str]:
    """The heading and table of the paired tests of ``reference`` against each of ``others`` (fixed
    schedule, every shared (seed, video) pair); no lines where ``significance_lines`` has none."""
    lines = significance_lines(runs, reference, others)
    if not lines:
        return []
    heading = (
        f"**Paired tests, last evaluation (fixed schedule), every (seed, video) pair: {reference}{about}**"
    )
    return ["", heading, "", *lines]


def highlight_report(
    results_paths: Sequence[str | Path],
    seeds: Sequence[int] | None = None,
    plot: str | Path | None = None,
    baseline_repeats: int = 200,
    baseline_seed: int = 0,
    data_root: str | Path | None = None,
    variants: Sequence[str] | None = None,
) -> str:
    """The markdown report of results files: one table per protocol (the selection baseline under the
    best-val one), paired tests of the ablations against the full model, and optionally the spread plot.
    ``seeds`` and ``variants`` keep only those runs."""
    from .sweep import VARIANTS, label_of, with_fold_selection

    runs = gathered_cv(with_fold_selection(load_results(results_paths, seeds, variants)))
    if not runs:
        paths = ", ".join(map(str, results_paths))
        raise ValueError(f"no complete runs in {paths}{filters_given(seeds, variants)}")
    datasets = sorted({r["dataset"] for r in runs})
    if len(datasets) > 1:
        paths = ", ".join(map(str, results_paths))
        raise ValueError(f"{paths}: runs of {' and '.join(datasets)}; a report is of one dataset")
    if data_root is not None and not Path(data_root).is_dir():
        raise ValueError(f"--data_root: {data_root} is not a folder")
    dataset = datasets[0]
    domains = [d for d in dataset_spec(dataset).domains if any(r["domain"] == d for r in runs)]
    order = sorted(runs, key=lambda r: (list(VARIANTS).index(r["variant"]), label_of(r)))
    labels = list(dict.fromkeys(label_of(r) for r in order))
    headline = dataset_spec(dataset).headline_metric
    out: list[str] = []
    for protocol, title in PROTOCOLS:
        if not any(protocol in r for r in runs):
            continue
        out += ["", f"**{headline}, {title}; mean ± std over seeds**", ""]
        out += protocol_table(runs, protocol, domains, labels)
        if protocol == "best":
            out += selection_baseline_rows(runs, labels, domains, baseline_repeats, baseline_seed, data_root)
        out.append(published_row(dataset_spec(dataset).published, domains))
    for reference, kin in comparisons(runs, labels):
        out += paired_test_section(runs, reference, kin)
    for per_category, joint in setting_comparisons(runs, labels):
        about = ", one model per category or domain, against the joint model of the same recipe"
        out += paired_test_section(runs, per_category, [joint], about)
    if plot is not None:
        plot_spread(runs, "final", domains, labels, plot)
    return "\n".join(out)


def filters_given(seeds: Sequence[int] | None, variants: Sequence[str] | None) -> str:
    """``" (--seeds 0 1, --variants full)"``: a report's filters as its command line gives them, or ``""``."""
    given = (("seeds", seeds), ("variants", variants))
    flags = [f"--{name} {' '.join(map(str, values))}" for name, values in given if values is not None]
    return f" ({', '.join(flags)})" if flags else ""


def report_markers(section: str) -> tuple[str, str]:
    """The comment lines a document's generated report section stands between."""
    return f"<!-- report: {section} begin -->", f"<!-- report: {section} end -->"


def write_into_document(document: str | Path, section: str, text: str) -> None:
    """Replace what stands between ``section``'s markers in a markdown document with ``text`` (the rest of
    the document is kept byte for byte; written atomically).

    Raises:
        ValueError: naming the document and the markers when they are not there once each, in order.
    """
    from ..atomic import atomic_write_text

    document = Path(document)
    content = document.read_text()
    begin, end = report_markers(section)
    if content.count(begin) != 1 or content.count(end) != 1 or content.index(begin) > content.index(end):
        raise ValueError(
            f"{document}: expected one {begin!r} line and, after it, one {end!r} line to write the report between"
        )
    start, stop = content.index(begin) + len(begin), content.index(end)
    atomic_write_text(document, content[:start] + "\n" + text.strip() + "\n" + content[stop:])


__all__ = [
    "gathered_cv",
    "highlight_report",
    "load_results",
    "write_into_document",
]
