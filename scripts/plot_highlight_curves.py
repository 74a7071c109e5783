"""Validation curves of a highlight-detection sweep: what each protocol picks, per category.

    python scripts/run_highlight_results.py --dataset tvsum ... --train_folds 4 --results results/tvsum_200ep.json
    python scripts/plot_highlight_curves.py results/tvsum_200ep.json   # -> docs/images/curves_tvsum.png
    python scripts/plot_highlight_curves.py results/tvsum_joint.json   # -> docs/images/curves_tvsum_joint.png

One panel per category (seed 0): the val video's score against the epoch (thick), the mean over the
held-out train folds (dashed), and the epoch each protocol reads: the best val epoch (triangle), the
last epoch (square), the epoch chosen on the held-out train videos (circle). For a joint model (one
model for every domain) the dashed curve is the mean over every domain's held-out videos.
"""

import argparse
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from transformers_rdmf.atomic import atomic_savefig, check_figure_path, check_output_paths  # noqa: E402
from transformers_rdmf.errors import OneLineParser, run_command  # noqa: E402
from transformers_rdmf.training.report import read_results_file  # noqa: E402
from transformers_rdmf.training.selection import held_out_curve  # noqa: E402
from transformers_rdmf.training.sweep import folds_of  # noqa: E402

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"


def epochs_of(run: dict) -> list[int]:
    return [run["eval_every"] * (i + 1) for i in range(len(run["curve"]))]


def plot(results: dict, seed: int, output: Path) -> None:
    runs = [r for r in results.values() if r["seed"] == seed and r.get("fold") is None]
    runs.sort(key=lambda r: r["domain"])
    columns = 5
    fig, axes = plt.subplots(
        math.ceil(len(runs) / columns), columns, figsize=(3.2 * columns, 2.6 * math.ceil(len(runs) / columns))
    )
    for ax, run in zip(axes.flat, runs):
        epochs, val = epochs_of(run), [v for _, v in run["curve"]]
        ax.plot(epochs, val, color="tab:blue", lw=2, label="val video")
        best = max(range(len(val)), key=lambda i: (val[i], -i))
        ax.plot(epochs[best], val[best], "v", color="tab:red", ms=8, label="best val epoch")
        ax.plot(epochs[-1], val[-1], "s", color="tab:gray", ms=7, label="fixed schedule")
        folds = folds_of(run, list(results.values()))
        if folds:
            held_out, chosen = held_out_curve(run["curve"], [fold["curve"] for fold in folds])
            ax.plot(epochs[: len(held_out)], held_out, "--", color="tab:green", label="held-out train videos")
            ax.plot(epochs[chosen], val[chosen], "o", color="tab:green", ms=8, label="chosen on train folds")
        ax.set_title(run["domain"], fontsize=10)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(runs) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9)
    dataset = runs[0]["dataset"]
    metric = "top-5 mAP" if dataset == "tvsum" else "mAP"
    joint = ", one joint model" if runs[0].get("joint") else ""
    fig.suptitle(f"{dataset}: {metric} against epochs, seed {seed}{joint}")
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    atomic_savefig(fig, output, dpi=110)
    print(f"wrote {output}")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="a results JSON of scripts/run_highlight_results.py")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)

    def work() -> None:
        check_figure_path("--output", args.output)  # the default is a .png
        results = read_results_file(Path(args.results))
        if not results:
            raise ValueError(f"{args.results}: no runs")
        dataset = next(iter(results.values()))["dataset"]
        joint = "_joint" if next(iter(results.values())).get("joint") else ""
        output = args.output or IMAGES / f"curves_{dataset}{joint}.png"
        check_output_paths({"--output": output}, {"results": args.results})
        seeds = sorted({run["seed"] for run in results.values() if run.get("fold") is None})
        if args.seed not in seeds:
            raise ValueError(f"--seed {args.seed}: {args.results} has runs of seeds {seeds} only")
        plot(results, args.seed, output)

    return run_command("plot_highlight_curves.py", work)


if __name__ == "__main__":
    sys.exit(main())
