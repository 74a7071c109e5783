"""Epoch-selection protocols for highlight detection, and the train folds they hold out.

TVSum and YouTube Highlights have few val videos (TVSum: one per category), so the epoch a score is read
at matters as much as the model. Three protocols read a run's eval curve (``[(step, score), ...]``):

- best val epoch (`best_on_curve`): the best score seen, as UMT, QD-DETR and CG-DETR report; the val
  videos choose the epoch;
- fixed schedule: the last point, which never looks at the val videos;
- train-fold selection (`fold_selected`): runs trained on folds of the train videos and evaluated on the
  held-out ones choose the epoch (the best mean held-out score), read on the official run's curve; this
  never looks at the val videos either.

`fold_data_arguments` gives the `RDMFTrainingArguments` data fields of a fold: every ``folds``-th train
video of each category, from the ``fold``-th, held out and used as the eval set. `cv_data_arguments`
gives TVSum's cross-validation: per category five folds, each of its five videos the test video once
(trained on the other four), and inner folds of those four that choose the epoch without the test video.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path

from ..dataset_specs import dataset_spec

Curve = Sequence[tuple[int, float]]


def fold_split(items: list, fold: int, folds: int) -> tuple[list, list]:
    """``(kept, held_out)``: every ``folds``-th item from the ``fold``-th is held out, in order."""
    return (
        [item for i, item in enumerate(items) if i % folds != fold],
        [item for i, item in enumerate(items) if i % folds == fold],
    )


def official_data_arguments(dataset: str, data_root: str | Path) -> dict:
    """The `RDMFTrainingArguments` data fields of the official split (train on train, evaluate on val)."""
    root = Path(data_root)
    if dataset == "tvsum":
        return {
            "data_root": str(root),
            "train_annotations": str(root / "tvsum_train_release.jsonl"),
            "eval_annotations": str(root / "tvsum_val_release.jsonl"),
        }
    return {"data_root": str(root)}


def fold_data_arguments(
    dataset: str, data_root: str | Path, domains: Sequence[str] | None, fold: int, folds: int, work: Path
) -> dict:
    """The `RDMFTrainingArguments` data fields of train fold ``fold`` of ``folds``, files written under ``work``.

    For each of ``domains`` (every category when None), every ``folds``-th of its train videos from the
    ``fold``-th is held out: the run trains on the rest and evaluates on those; the val videos are not used.
    TVSum gets fold annotation files; YouTube Highlights a ``splits.json`` of the same form as its own.
    """
    root = Path(data_root)
    domains = list(domains or dataset_spec(dataset).domains)
    if dataset == "tvsum":
        rows = [
            line for line in (root / "tvsum_train_release.jsonl").read_text().splitlines() if line.strip()
        ]
        kept, held_out = [], []
        for domain in domains:
            in_domain = [line for line in rows if json.loads(line).get("domain") == domain]
            domain_kept, domain_held_out = fold_split(in_domain, fold, folds)
            check_fold_keeps_and_holds_out(domain, domain_kept, domain_held_out, folds)
            kept, held_out = kept + domain_kept, held_out + domain_held_out
        train_file, eval_file = work / "fold_train.jsonl", work / "fold_eval.jsonl"
        train_file.write_text("\n".join(kept) + "\n")
        eval_file.write_text("\n".join(held_out) + "\n")
        return {
            "data_root": str(root),
            "train_annotations": str(train_file),
            "eval_annotations": str(eval_file),
        }
    official = json.loads((root / "splits.json").read_text())
    splits = {}
    for domain in domains:
        kept, held_out = fold_split(official[domain]["train"], fold, folds)
        check_fold_keeps_and_holds_out(domain, kept, held_out, folds)
        splits[domain] = {"train": kept, "val": held_out}
    splits_file = work / "fold_splits.json"
    splits_file.write_text(json.dumps(splits))
    return {"data_root": str(root), "splits_file": str(splits_file)}


def check_fold_keeps_and_holds_out(domain: str, kept: list, held_out: list, folds: int) -> None:
    """A train fold must train on at least one of the domain's train videos and score another."""
    if not kept or not held_out:
        raise ValueError(
            f"--train_folds {folds}: {domain} has {len(kept) + len(held_out)} train videos; each fold needs at least one to "
            "train on and one to hold out"
        )


CV_FOLDS = 5  # TVSum: five videos per category, each the test video once


def tvsum_rows_by_category(root: Path, domains: Sequence[str]) -> dict[str, list[str]]:
    """Every TVSum video's annotation line (train and val releases together), per category, sorted by id."""
    lines = []
    for name in ("tvsum_train_release.jsonl", "tvsum_val_release.jsonl"):
        lines += [line for line in (root / name).read_text().splitlines() if line.strip()]
    by_domain = {domain: [] for domain in domains}
    for line in lines:
        row = json.loads(line)
        if row.get("domain") in by_domain:
            by_domain[row["domain"]].append((row["vid"], line))
    return {domain: [line for _, line in sorted(rows)] for domain, rows in by_domain.items()}


def cv_data_arguments(
    data_root: str | Path,
    domains: Sequence[str] | None,
    cv_fold: int,
    work: Path,
    inner_fold: int | None = None,
    inner_folds: int = 4,
) -> dict:
    """The `RDMFTrainingArguments` data fields of TVSum cross-validation fold ``cv_fold`` (files under ``work``).

    Per category (every category when ``domains`` is None), its five videos sorted by id: the
    ``cv_fold``-th is the test video, the run trains on the other four. With ``inner_fold``, the run
    instead trains on three of those four and evaluates on the fourth (every ``inner_folds``-th from the
    ``inner_fold``-th, as `fold_split`): the inner folds that choose the epoch without the test video.
    """
    if not 0 <= cv_fold < CV_FOLDS:
        raise ValueError(f"cv_fold {cv_fold}: expected 0 to {CV_FOLDS - 1}")
    if inner_fold is not None and not (2 <= inner_folds <= CV_FOLDS - 1 and 0 <= inner_fold < inner_folds):
        raise ValueError(
            f"inner fold {inner_fold} of {inner_folds}: the four train videos allow 2 to 4 folds"
        )
    root = Path(data_root)
    by_domain = tvsum_rows_by_category(root, list(domains or dataset_spec("tvsum").domains))
    train, evaluate = [], []
    for domain, rows in by_domain.items():
        if len(rows) != CV_FOLDS:
            raise ValueError(
                f"TVSum category {domain}: {len(rows)} videos, cross-validation expects {CV_FOLDS}"
            )
        test = rows[cv_fold]
        rest = [row for row in rows if row is not test]
        if inner_fold is None:
            train, evaluate = train + rest, evaluate + [test]
        else:
            kept, held_out = fold_split(rest, inner_fold, inner_folds)
            train, evaluate = train + kept, evaluate + held_out
    train_file, eval_file = work / "cv_train.jsonl", work / "cv_eval.jsonl"
    train_file.write_text("\n".join(train) + "\n")
    eval_file.write_text("\n".join(evaluate) + "\n")
    return {"data_root": str(root), "train_annotations": str(train_file), "eval_annotations": str(eval_file)}


def best_on_curve(curve: Curve) -> tuple[int, float]:
    """``(step, score)`` of the best point of an eval curve, the earliest on ties."""
    return max(curve, key=lambda point: (point[1], -point[0]))


def held_out_curve(curve: Curve, fold_curves: Sequence[Curve]) -> tuple[list[float], int]:
    """The mean held-out score per evaluation over ``fold_curves``, and the index of its best (earliest on
    ties). The fold runs are evaluated at the same epochs as ``curve``; evaluations missing from any of them
    are left out."""
    length = min(len(curve), *(len(fold) for fold in fold_curves))
    held_out = [statistics.mean(fold[i][1] for fold in fold_curves) for i in range(length)]
    return held_out, max(range(length), key=lambda i: (held_out[i], -i))


def fold_selected(curve: Curve, fold_curves: Sequence[Curve]) -> float:
    """The score on ``curve`` at the evaluation that scores best on the held-out train videos."""
    return curve[held_out_curve(curve, fold_curves)[1]][1]


__all__ = [
    "CV_FOLDS",
    "best_on_curve",
    "cv_data_arguments",
    "fold_data_arguments",
    "fold_selected",
    "fold_split",
    "held_out_curve",
    "official_data_arguments",
]
