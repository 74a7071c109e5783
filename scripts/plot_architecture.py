"""Draw docs/images/architecture.png: the package's layers and the imports between its parts, read from
the source (``modeling_tests/architecture.py``; the tests check the same graph).

Usage: ``python scripts/plot_architecture.py [--out docs/images/architecture.png]``
"""

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from modeling_tests.architecture import LAYERS, import_graph, modules, unit_of  # noqa: E402

from transformers_rdmf.atomic import atomic_savefig, check_figure_path, check_output_paths  # noqa: E402
from transformers_rdmf.errors import OneLineParser, run_command  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "architecture.png"
COLOURS = ("#e8f1fb", "#fdf0e1", "#e9f6ea", "#f3e9f7")


def unit_edges() -> dict[tuple[str, str], int]:
    """``{(importer, imported): number of module-level imports}`` between distinct layer entries."""
    edges: dict[tuple[str, str], int] = {}
    for module, targets in import_graph().items():
        for target in targets:
            pair = (unit_of(module), unit_of(target))
            if pair[0] != pair[1]:
                edges[pair] = edges.get(pair, 0) + 1
    return edges


def positions() -> dict[str, tuple[float, float]]:
    """Each layer entry's box centre: layers bottom (lowest) to top, entries spread along each row."""
    placed = {}
    for row, units in enumerate(LAYERS.values()):
        for column, unit in enumerate(units):
            placed[unit] = ((column + 0.5) / len(units), row + 0.5)
    return placed


def label_of(unit: str, counts: dict[str, int]) -> str:
    names = {"__init__": "transformers_rdmf\n(lazy names)"}
    name = names.get(unit, unit + ("/" if counts[unit] > 1 else ".py"))
    return name if counts[unit] <= 1 else f"{name}\n{counts[unit]} modules"


def draw(out: Path) -> None:
    counts: dict[str, int] = {}
    for module in modules():
        counts[unit_of(module)] = counts.get(unit_of(module), 0) + 1
    where = positions()
    figure, axis = plt.subplots(figsize=(13, 7.5))
    for row, (title, colour) in enumerate(zip(LAYERS, COLOURS)):
        axis.add_patch(plt.Rectangle((-0.02, row + 0.08), 1.04, 0.84, color=colour, zorder=0))
        axis.text(-0.015, row + 0.86, title, fontsize=9, style="italic", va="top")
    for (source, target), number in sorted(unit_edges().items()):
        (x0, y0), (x1, y1) = where[source], where[target]
        axis.annotate(
            "", xy=(x1, y1 + 0.12), xytext=(x0, y0 - 0.12),
            arrowprops=dict(arrowstyle="->", color="grey", alpha=0.35, lw=0.6 + 0.25 * min(number, 6)),
        )  # fmt: skip
    for unit, (x, y) in where.items():
        axis.text(
            x, y, label_of(unit, counts), ha="center", va="center", fontsize=7.5, zorder=3,
            bbox=dict(boxstyle="round,pad=0.3", facecolor="white", edgecolor="#555555"),
        )  # fmt: skip
    axis.set_xlim(-0.03, 1.03)
    axis.set_ylim(0, len(LAYERS))
    axis.axis("off")
    axis.set_title(
        "transformers_rdmf: layers (lowest at the bottom) and imports (arrows point to what is imported)"
    )
    figure.tight_layout()
    atomic_savefig(figure, out, dpi=110)
    print(
        f"wrote {out}: {len(counts)} parts, {sum(counts.values())} modules, {len(unit_edges())} import edges"
    )


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    out = parser.parse_args(argv).out

    def work() -> None:
        check_output_paths({"--out": out}, {})
        check_figure_path("--out", out)
        draw(out)

    return run_command("plot_architecture.py", work)


if __name__ == "__main__":
    sys.exit(main())
