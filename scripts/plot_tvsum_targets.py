"""TVSum at the peer's budget: each recipe's best val against its fixed schedule, beside issue #21's targets.

    python scripts/plot_tvsum_targets.py --out docs/images/tvsum_targets.png \
        --data_root ../shared/data/tvsum --results results/tvsum_eval_every_epoch.json \
            results/tvsum_joint_eval_every_epoch.json results/tvsum_eval_every_epoch_no_ema.json

One point per recipe (the full model of each ``--tag``, per category or joint) run on the official split
with an evaluation after each of 200 epochs: the mean over seeds of the top-5 mAP over the ten categories,
by the fixed schedule (x, the last epoch) and by the best val epoch (y), with the standard deviation over
seeds as bars and each seed as a dot. The dashed lines are the targets (best val at least the peer's
``--peer_best``; fixed schedule at least ``--margin`` above the peer's ``--peer_fixed``), the dotted one
what selection alone gives: the expected best of as many random rankings of the same val videos (with
``--data_root``; the report's simulation and seed). Only the top-right corner meets both.
"""

import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from transformers_rdmf.atomic import atomic_savefig, check_figure_path, check_output_paths  # noqa: E402
from transformers_rdmf.errors import OneLineParser, require_score, run_command  # noqa: E402
from transformers_rdmf.training.report import load_results, seed_means  # noqa: E402
from transformers_rdmf.training.selection_baseline import evaluations_of, selection_baseline  # noqa: E402
from transformers_rdmf.training.sweep import domains_of, is_cross_validated, label_of  # noqa: E402

EVALUATIONS = 200  # the peer's budget: 200 epochs, evaluated after each


def recipes(paths: list[str]) -> dict[str, dict[str, dict[int, float]]]:
    """``{label: {"best": {seed: score}, "final": {seed: score}}}`` of the full model's official-split runs
    evaluated ``EVALUATIONS`` times, over the seeds with every category."""
    runs = [
        r
        for r in load_results(paths)
        if r["dataset"] == "tvsum"
        and r["variant"] == "full"
        and not is_cross_validated(r)
        and r.get("fold") is None
        and evaluations_of(r) == EVALUATIONS
    ]
    categories = len(domains_of("tvsum"))
    found = {}
    for label in sorted({label_of(r) for r in runs}):
        chosen = [r for r in runs if label_of(r) == label]
        scores = {protocol: seed_means(chosen, protocol, categories) for protocol in ("best", "final")}
        if scores["best"]:
            found[label] = scores
    return found


def short_name(label: str) -> str:
    """``full (joint, evaluated every epoch, batch 40, no EMA)`` -> ``joint, batch 40, no EMA``."""
    inner = label.removeprefix("full (").removesuffix(")").replace("evaluated every epoch", "")
    parts = [part.strip() for part in inner.split(",") if part.strip()]
    if not parts or parts[0] != "joint":
        parts.insert(0, "per category")
    return ", ".join(parts)


def selection_alone(data_root: str) -> float:
    """The expected best of ``EVALUATIONS`` random rankings of each category's val video, averaged."""
    values = selection_baseline("tvsum", Path(data_root), domains_of("tvsum"), EVALUATIONS, cv=False)
    return statistics.mean(values.values())


def spread_of(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def draw(axis, found: dict, args) -> None:
    target_fixed = args.peer_fixed + args.margin
    for index, (label, scores) in enumerate(found.items()):
        seeds = sorted(set(scores["best"]) & set(scores["final"]))
        xs, ys = [scores["final"][s] for s in seeds], [scores["best"][s] for s in seeds]
        color = plt.get_cmap("tab20")(2 * index % 20 + (2 * index // 20) % 2)  # distinct up to 20
        axis.scatter(xs, ys, s=10, color=color, alpha=0.5)
        x, y = statistics.mean(xs), statistics.mean(ys)
        axis.errorbar(x, y, xerr=spread_of(xs), yerr=spread_of(ys), color=color, marker="o", ms=7, capsize=3)
        axis.annotate(f"{short_name(label)} ({len(seeds)} seeds)", (x, y), textcoords="offset points",
                      xytext=(6, 5), fontsize=7, color=color)  # fmt: skip
    axis.axhline(args.peer_best, color="k", ls="--", lw=1)
    axis.axvline(target_fixed, color="k", ls="--", lw=1)
    axis.annotate(f"best-val target {args.peer_best:g}", (axis.get_xlim()[0], args.peer_best),
                  textcoords="offset points", xytext=(4, 3), fontsize=7)  # fmt: skip
    axis.annotate(f"fixed-schedule target {target_fixed:g}", (target_fixed, axis.get_ylim()[0]),
                  textcoords="offset points", xytext=(3, 4), fontsize=7, rotation=90)  # fmt: skip
    if args.data_root:
        baseline = selection_alone(args.data_root)
        axis.axhline(baseline, color="grey", ls=":", lw=1)
        axis.annotate(f"selection alone: best of {EVALUATIONS} random rankings, {baseline:.2f}",
                      (axis.get_xlim()[0], baseline), textcoords="offset points", xytext=(4, -10),
                      fontsize=7, color="grey")  # fmt: skip
    axis.set_xlabel("fixed schedule, top-5 mAP (the last of 200 epochs; never looks at the val videos)")
    axis.set_ylabel("best val epoch, top-5 mAP (the val video picks one of 200)")
    axis.set_title(
        "TVSum official split, 200 epochs evaluated every epoch: mean over the 10 categories\n"
        "(EMA 0.99 of the weights unless 'no EMA'; bars: std over seeds, dots: seeds)",
        fontsize=10,
    )


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", nargs="+", required=True, help="TVSum official-split results files")
    parser.add_argument("--data_root", help="the TVSum folder, for the selection-alone line")
    parser.add_argument("--peer_best", type=float, default=79.84, help="the peer's best val (issue #21)")
    parser.add_argument("--peer_fixed", type=float, default=57.06, help="the peer's last epoch (issue #21)")
    parser.add_argument("--margin", type=float, default=10.0, help="how far above --peer_fixed to be")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    def work() -> None:
        require_score("--peer_best", args.peer_best)
        require_score("--peer_fixed", args.peer_fixed)
        require_score("--peer_fixed plus --margin", args.peer_fixed + args.margin)
        if not args.margin >= 0:  # NaN too
            raise ValueError(f"--margin: expected a margin >= 0, got {args.margin}")
        check_output_paths({"--out": args.out}, {"--results": args.results, "--data_root": args.data_root})
        check_figure_path("--out", args.out)
        found = recipes(args.results)
        if not found:
            raise ValueError(f"--results: no TVSum official-split run evaluated {EVALUATIONS} times")
        figure, axis = plt.subplots(figsize=(8.5, 6.0))
        draw(axis, found, args)
        figure.tight_layout()
        atomic_savefig(figure, args.out, dpi=120)
        print(f"wrote {args.out}")

    return run_command("plot_tvsum_targets.py", work)


if __name__ == "__main__":
    sys.exit(main())
