"""The selection baseline of a best-val number: the expected best of as many *random* rankings of the same
val (or cross-validated test) videos as the run had evaluations, simulated with a seeded generator.

A best-val number is a maximum over evaluations; this is how far a maximum over that many draws gets with
no model at all. `report.highlight_report` prints it under every best-val table.
"""

from __future__ import annotations

import statistics
from functools import partial
from pathlib import Path

import numpy as np


def evaluations_of(run: dict) -> int:
    """How many evaluations a best-val number was chosen from (per test video, for a CV group)."""
    curves = run.get("curves") or [run["curve"]]
    return len(curves[0])


def selection_baseline_row(
    runs: list[dict], domains: list[str], repeats: int, seed: int, data_root: str | Path | None = None
) -> str | None:
    """The markdown row of the expected best of N random rankings of the same val (or test) videos, N the
    runs' evaluations; None when the data folder (``data_root``, else the runs') is not there."""
    if not runs:
        return None
    run = runs[0]
    root = Path(data_root or run.get("data_root") or "")
    if not (root / "splits.json").is_file() and not (root / "tvsum_val_release.jsonl").is_file():
        return None
    from .sweep import is_cross_validated

    evaluations = evaluations_of(run)
    values = selection_baseline(
        run["dataset"], root, domains, evaluations, is_cross_validated(run), repeats, seed
    )
    mean = statistics.mean(values.values())
    label = f"random rankings, best of {evaluations} (selection alone)"
    return f"| {label} | " + " | ".join(f"{values[d]:.2f}" for d in domains) + f" | {mean:.2f} | | |"


def selection_baseline(
    dataset: str,
    root: Path,
    domains: list[str],
    evaluations: int,
    cv: bool,
    repeats: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """``{domain: the expected best of evaluations random rankings of its val (or CV test) videos}``, in
    percent: what choosing among that many evaluations gives alone (`expected_best_of_random`)."""
    return {
        domain: expected_best_of_random(
            selection_groups(dataset, root, domain, cv), evaluations, repeats, seed
        )
        for domain in domains
    }


def selection_groups(dataset: str, root: Path, domain: str, cv: bool) -> list[list]:
    """The sets of val videos one epoch choice is made on, for ``domain``: per video ``(ap_of_scores, clips)``.

    TVSum official split: the category's val video. TVSum CV: each of its five videos (a test video picks
    its own run's epoch). YouTube Highlights: the domain's val videos together (one epoch for all).
    """
    from ..data import load_annotations, load_youtube_highlights

    if dataset == "tvsum":
        names = (
            ["tvsum_train_release.jsonl", "tvsum_val_release.jsonl"] if cv else ["tvsum_val_release.jsonl"]
        )
        rows = [row for name in names for row in load_annotations(root / name, "tvsum", domain=domain)]
        return [
            [(partial(_tvsum_ap, np.asarray(row["saliency_scores"])), len(row["saliency_scores"]))]
            for row in rows
        ]
    rows = load_youtube_highlights(root, "val", domain)
    return [
        [
            (partial(_youtube_ap, np.asarray(row["saliency_target"])), len(row["saliency_target"]))
            for row in rows
        ]
    ]


def _tvsum_ap(labels: np.ndarray, scores: np.ndarray) -> float:
    from ..metrics.highlight_detection import tvsum_video_ap

    return tvsum_video_ap(scores, labels)


def _youtube_ap(labels: np.ndarray, scores: np.ndarray) -> float:
    from ..metrics.highlight_detection import youtube_video_ap

    return youtube_video_ap(scores, labels)


def expected_best_of_random(groups: list[list], evaluations: int, repeats: int = 200, seed: int = 0) -> float:
    """The mean over ``groups`` of E[max over ``evaluations`` random rankings of the group's mean AP], in
    percent, by simulation (``repeats`` maxima, a seeded generator; uniform scores give uniform rankings)."""
    rng = np.random.default_rng(seed)
    per_group = []
    for group in groups:
        maxima = []
        for _ in range(repeats):
            draws = [
                statistics.mean(ap(rng.random(clips)) for ap, clips in group) for _ in range(evaluations)
            ]
            maxima.append(max(draws))
        per_group.append(100 * statistics.mean(maxima))
    return statistics.mean(per_group)


def selection_baseline_rows(
    runs: list[dict],
    labels: list[str],
    domains: list[str],
    repeats: int,
    seed: int,
    data_root: str | Path | None,
) -> list[str]:
    """One selection-baseline row per setting among the labels (number of evaluations, cross-validated or
    not), in the order the labels first reach it; none where the data folder (``data_root``, else the
    runs' own) is not there."""
    from .sweep import is_cross_validated, label_of

    settings: dict[tuple[int, bool], list[dict]] = {}
    for label in labels:
        chosen = [r for r in runs if label_of(r) == label]
        settings.setdefault((evaluations_of(chosen[0]), is_cross_validated(chosen[0])), chosen)
    rows = [selection_baseline_row(chosen, domains, repeats, seed, data_root) for chosen in settings.values()]
    return [row for row in rows if row]


__all__ = [
    "evaluations_of",
    "expected_best_of_random",
    "selection_baseline",
    "selection_baseline_row",
    "selection_baseline_rows",
    "selection_groups",
]
