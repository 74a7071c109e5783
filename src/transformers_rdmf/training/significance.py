"""Paired significance tests between sweep variants: which pairs are compared, the paired t-test and
Wilcoxon signed-rank test on the same (seed, video) pairs, and a Holm adjustment per family.

`report.highlight_report` prints these tables under its protocol tables. The scores compared are each eval
video's own score at a run's last evaluation (``per_video`` in a results file).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# The paper's ablations, each against the full model.
ABLATIONS = ("cross_attention", "no_temporal_diffusion", "K0", "K5", "K15", "K20")


def paired_scores(runs: list[dict], label: str, protocol_key: str = "per_video") -> dict[tuple, float]:
    """``{(seed, qid): score}`` of one variant's runs (each eval video's last-evaluation score)."""
    from .sweep import label_of

    return {
        (run["seed"], qid): value
        for run in runs
        if label_of(run) == label
        for qid, value in run.get(protocol_key, {}).items()
    }


def paired_test(a: dict[tuple, float], b: dict[tuple, float]) -> dict | None:
    """Paired t-test and Wilcoxon signed-rank test (two-sided) on the keys both hold; None under 2 pairs."""
    from scipy import stats

    keys = sorted(set(a) & set(b))
    if len(keys) < 2:
        return None
    x, y = np.array([a[k] for k in keys]), np.array([b[k] for k in keys])
    difference = x - y
    w = stats.wilcoxon(x, y) if np.count_nonzero(difference) else None
    return {
        "pairs": len(keys),
        "seeds": len({k[0] for k in keys}),
        "mean_a": float(x.mean()),
        "mean_b": float(y.mean()),
        "difference": float(difference.mean()),
        "t_p": paired_t_p(difference),
        "wilcoxon_p": 1.0 if w is None else float(w.pvalue),
    }


def paired_t_p(difference: np.ndarray) -> float:
    """The paired t-test's two-sided p on ``difference`` (shape ``(pairs,)``): 1 when every pair is equal,
    0 when every pair differs by the same non-zero amount (no spread: t is infinite)."""
    from scipy import stats

    if not difference.any():
        return 1.0
    if np.ptp(difference) == 0:
        return 0.0
    return float(stats.ttest_1samp(difference, 0.0).pvalue)


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given: the i-th smallest p (from 1) times
    ``m - i + 1``, made non-decreasing in that order and capped at 1 (Holm 1979)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [1.0] * len(p_values), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def significance_lines(runs: list[dict], reference: str, labels: list[str]) -> list[str]:
    """A markdown table: each label against ``reference`` on the same (seed, video) pairs.

    The verdict needs both tests below 0.05. The last column adjusts the larger of the two p-values for
    the family of every comparison in the table, ablations and recipes alike (Holm): a reader asking
    "does any of these differ" reads it. A label sharing fewer than two pairs with ``reference`` gets a
    row that says so and stays out of the family.
    """
    base = paired_scores(runs, reference)
    tested = [
        (label, paired_test(base, paired_scores(runs, label))) for label in labels if label != reference
    ]
    tests = [(label, test) for label, test in tested if test is not None]
    if not tested:
        return []
    family = holm_adjusted([max(test["t_p"], test["wilcoxon_p"]) for _, test in tests])
    lines = [
        f"| {reference} vs | pairs (seeds x videos) | {reference} | other | difference | t-test p | Wilcoxon p | at p < 0.05 | Holm p (of {len(tests)}) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {label} | fewer than 2 shared (seed, video) pairs: not tested | | | | | | | |"
        for label, test in tested
        if test is None
    ]
    for (label, test), holm in zip(tests, family):
        both = max(test["t_p"], test["wilcoxon_p"]) < 0.05
        verdict = ("better" if test["difference"] > 0 else "worse") if both else "no difference shown"
        lines.append(
            f"| {label} | {test['pairs']} ({test['seeds']} seed{'s' if test['seeds'] != 1 else ''}) | {test['mean_a']:.2f} | {test['mean_b']:.2f} | "
            f"{test['difference']:+.2f} | {test['t_p']:.3g} | {test['wilcoxon_p']:.3g} | {reference} {verdict} | {holm:.3g} |"
        )
    return lines


def parent_tag(tag: str) -> str:
    """The recipe a ``--tag`` adds one change to: ``"A"`` for ``"A, B"`` (the last comma's part is the
    change), ``""`` (the untagged recipe) for a tag without a comma."""
    return tag.rsplit(", ", 1)[0] if ", " in tag else ""


def nearest_parent_tag(tag: str, present: set[str]) -> str | None:
    """The closest recipe ``tag`` builds on among the ``present`` tags (``"A, B"`` for ``"A, B, C"``, else
    ``"A"``, else ``""``); None for the untagged recipe or when none of its parents is present."""
    while tag:
        tag = parent_tag(tag)
        if tag in present:
            return tag
    return None


def first_run_of_each_label(runs: list[dict]) -> dict[str, dict]:
    """``{label: run}``: the first run of each variant label, which carries the label's setting and tag."""
    from .sweep import label_of

    first = {}
    for run in runs:
        first.setdefault(label_of(run), run)
    return first


def comparisons(runs: list[dict], labels: list[str]) -> list[tuple[str, list[str]]]:
    """``(reference, others)`` for the paired tests: each full model against its ablations under the same
    setting (CV or not, joint or not, recipe tag), and against the full model of every recipe tag that
    builds on its own, one change away or the nearest run (``nearest_parent_tag``: the untagged model
    against ``"margin"``, ``"evaluated every epoch"`` against ``"evaluated every epoch, cosine"``)."""
    from .sweep import is_cross_validated

    first = first_run_of_each_label(runs)

    def setting(label: str) -> tuple[bool, bool]:
        return is_cross_validated(first[label]), bool(first[label].get("joint"))

    def full_tags(of: str) -> set[str]:
        return {
            first[label].get("tag", "")
            for label in labels
            if first[label]["variant"] == "full" and setting(label) == setting(of)
        }

    out = []
    for reference in labels:
        if first[reference]["variant"] != "full":
            continue
        tag, present = first[reference].get("tag", ""), full_tags(reference)
        others = []
        for label in labels:
            run = first[label]
            if label == reference or setting(label) != setting(reference):
                continue
            ablation = run["variant"] in ABLATIONS and run.get("tag", "") == tag
            recipe = run["variant"] == "full" and nearest_parent_tag(run.get("tag", ""), present) == tag
            if ablation or recipe:
                others.append(label)
        out.append((reference, others))
    return out


def setting_comparisons(runs: list[dict], labels: list[str]) -> list[tuple[str, str]]:
    """``(per_category, joint)``: each full model trained one per category (or domain) against the full
    model trained jointly under the same recipe tag and protocol (CV or not), where both were run. The
    two settings score the same eval videos, so their (seed, video) pairs match; ``comparisons`` keeps
    to one setting, so this is a family of its own."""
    from .sweep import is_cross_validated

    first = first_run_of_each_label(runs)

    def recipe(label: str) -> tuple[str, bool]:
        return first[label].get("tag", ""), is_cross_validated(first[label])

    full = [label for label in labels if first[label]["variant"] == "full"]
    joint = {recipe(label): label for label in full if first[label].get("joint")}
    return [
        (label, joint[recipe(label)])
        for label in full
        if not first[label].get("joint") and recipe(label) in joint
    ]


__all__ = [
    "ABLATIONS",
    "comparisons",
    "holm_adjusted",
    "nearest_parent_tag",
    "paired_scores",
    "paired_test",
    "parent_tag",
    "setting_comparisons",
    "significance_lines",
]
