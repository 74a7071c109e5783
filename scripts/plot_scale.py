"""Log-log plot of the scale benchmark: time and peak memory against the clip count, per fusion variant.

    python scripts/benchmark_scale.py --json docs/images/benchmark_scale.json --overwrite
    python scripts/plot_scale.py                      # -> docs/images/scale_loglog.png

Only measured rows are drawn (skipped rows are absent); the machine line of the JSON is the subtitle.
"""

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from transformers_rdmf.atomic import atomic_savefig, check_figure_path, check_output_paths  # noqa: E402
from transformers_rdmf.errors import OneLineParser, run_command  # noqa: E402

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
STYLES = {
    "RD fusion (fused, default)": ("tab:blue", "o"),
    "RD fusion (Euler reference)": ("tab:cyan", "v"),
    "RD fusion (torch.compile)": ("tab:green", "s"),
    "cross-attention (w/o RD)": ("tab:orange", "^"),
    "self-attention encoder (baseline)": ("tab:red", "D"),
}


def series(rows: list[dict], variant: str, backward: bool, key: str) -> tuple[list[int], list[float]]:
    points = [
        (r["clips"], r[key])
        for r in rows
        if r["table"] == "fusion"
        and r["variant"] == variant
        and r["backward"] == backward
        and r["status"] == "ok"
    ]
    return [p[0] for p in points], [p[1] for p in points]


def plot(results: dict, out: Path) -> None:
    rows = results["rows"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, key, label, scale in [
        (axes[0], "seconds", "time per call (ms)", 1e3),
        (axes[1], "peak_mib", "peak memory growth (MiB, RSS)", 1.0),
    ]:
        for variant, (color, marker) in STYLES.items():
            for backward, line in [(False, "-"), (True, "--")]:
                clips, values = series(rows, variant, backward, key)
                if clips:
                    mode = "fwd+bwd" if backward else "fwd"
                    ax.plot(
                        clips,
                        [v * scale for v in values],
                        line,
                        color=color,
                        marker=marker,
                        label=f"{variant}, {mode}",
                    )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("clips (2 s each)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(
        "Fusion at hidden 256, batch 1: RD vs cross-attention vs self-attention encoder\n"
        + results["machine"],
        fontsize=8,
    )
    fig.tight_layout()
    atomic_savefig(fig, out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=IMAGES / "benchmark_scale.json")
    parser.add_argument("--out", type=Path, default=IMAGES / "scale_loglog.png")
    args = parser.parse_args(argv)

    def work() -> None:
        check_output_paths({"--out": args.out}, {"--results": args.results})
        check_figure_path("--out", args.out)
        results = json.loads(args.results.read_text())
        if not isinstance(results, dict) or not {"machine", "rows"} <= set(results):
            raise ValueError(f"--results {args.results}: expected benchmark_scale.py's JSON (machine, rows)")
        plot(results, args.out)
        print(f"wrote {args.out}")

    return run_command("plot_scale.py", work)


if __name__ == "__main__":
    sys.exit(main())
