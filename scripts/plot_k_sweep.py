"""The K sweep at a glance: a dataset's score against the number of temporal-diffusion Euler steps K.

    python scripts/plot_k_sweep.py --out docs/images/k_sweep.png \
        --tvsum results/tvsum_cv_joint_full.json results/tvsum_cv_joint_ablations.json \
            results/tvsum_cv_joint_k_sweep.json \
        --youtube results/youtube_highlights_paired.json

One panel per dataset: each seed's score (the mean over the categories or domains; dots) and the mean
over seeds with its standard deviation, for the fixed schedule (filled) and the best val epoch (hollow),
at K = 0 (``no_temporal_diffusion``, the same model as ``K0``), 5, 10 (``full``), 15 and 20. TVSum
cross-validation runs are first gathered per category over their five folds, as in the report. Only
runs of the plain recipe are read (no ``--tag``, no ``--set``).
"""

import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from transformers_rdmf import RDMFConfig  # noqa: E402
from transformers_rdmf.atomic import atomic_savefig, check_figure_path, check_output_paths  # noqa: E402
from transformers_rdmf.errors import OneLineParser, run_command  # noqa: E402
from transformers_rdmf.training.report import PROTOCOL_SHORT_NAMES, gathered_cv, load_results, seed_means  # noqa: E402
from transformers_rdmf.training.sweep import VARIANTS, domains_of, headline_of, with_fold_selection  # noqa: E402

SHOWN = ("final", "best")


def diffusion_steps_of(variant: str) -> int | None:
    """K of a sweep variant, or None for a variant that changes more than the temporal diffusion."""
    overrides = VARIANTS[variant]
    if set(overrides) - {"use_temporal_diffusion", "diffusion_steps"}:
        return None
    if overrides.get("use_temporal_diffusion", True) is False:
        return 0  # no Euler step: the diffusion is the identity
    return overrides.get("diffusion_steps", RDMFConfig().diffusion_steps)


def plain_runs(paths: list[str], dataset: str, flag: str) -> list[dict]:
    """The plain-recipe runs of some results files (TVSum cross-validation gathered per category), which
    must all be of ``dataset``; a ``ValueError`` naming ``flag`` and the file otherwise, or when none is."""
    for path in paths:
        others = sorted({r["dataset"] for r in load_results([path])} - {dataset})
        if others:
            raise ValueError(f"{flag} {path}: holds {', '.join(others)} runs; expected {dataset}")
    runs = gathered_cv(with_fold_selection(load_results(paths)))
    plain = [r for r in runs if not r.get("tag") and not r.get("overrides")]
    if not plain:
        raise ValueError(f"{flag}: no run of the plain recipe (no --tag, no --set) in {', '.join(paths)}")
    return plain


def scores_by_k(runs: list[dict], protocol: str) -> tuple[str, dict[int, dict[int, float]]]:
    """``(dataset, {K: {seed: score}})`` of one dataset's plain-recipe runs."""
    dataset = runs[0]["dataset"]
    by_k: dict[int, dict[int, float]] = {}
    for variant in VARIANTS:
        k = diffusion_steps_of(variant)
        chosen = [r for r in runs if r["variant"] == variant]
        if k is None or not chosen:
            continue
        for seed, score in seed_means(chosen, protocol, len(domains_of(dataset))).items():
            by_k.setdefault(k, {}).setdefault(seed, score)  # K0 and no_temporal_diffusion are one model
    return dataset, dict(sorted(by_k.items()))


def draw_panel(axis, runs: list[dict], title: str) -> None:
    for index, protocol in enumerate(SHOWN):
        dataset, by_k = scores_by_k(runs, protocol)
        ks = list(by_k)
        means = [statistics.mean(seeds.values()) for seeds in by_k.values()]
        stds = [statistics.stdev(seeds.values()) if len(seeds) > 1 else 0.0 for seeds in by_k.values()]
        face = f"C{index}" if protocol == "final" else "white"
        axis.errorbar(ks, means, yerr=stds, color=f"C{index}", mfc=face, marker="o", ms=7, capsize=4)
        axis.plot(ks, means, color=f"C{index}", label=PROTOCOL_SHORT_NAMES[protocol])
        for k, seeds in by_k.items():
            axis.scatter([k] * len(seeds), list(seeds.values()), s=9, color=f"C{index}", alpha=0.6)
            if protocol == "final":
                axis.annotate(
                    f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''}",
                    (k, min(seeds.values())),
                    textcoords="offset points",
                    xytext=(0, -14),
                    ha="center",
                    fontsize=7,
                )
    axis.set_title(title, fontsize=10)
    axis.set_xlabel("temporal-diffusion Euler steps K (10: the paper's and the presets')")
    axis.set_xticks(sorted({diffusion_steps_of(v) for v in VARIANTS} - {None}))
    axis.margins(y=0.12)
    axis.set_ylabel(f"{headline_of(dataset)} (mean over {len(domains_of(dataset))} domains)")
    axis.legend(fontsize=8)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tvsum", nargs="+", default=[], help="TVSum results files (cross-validated)")
    parser.add_argument("--youtube", nargs="+", default=[], help="YouTube Highlights results files")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    panels = [
        (paths, dataset, flag, title)
        for paths, dataset, flag, title in (
            (args.tvsum, "tvsum", "--tvsum", "TVSum, cross-validated, one joint model"),
            (args.youtube, "youtube_highlights", "--youtube", "YouTube Highlights, one model per domain"),
        )
        if paths
    ]
    if not panels:
        parser.error("give --tvsum or --youtube results files")

    def work() -> None:
        check_output_paths({"--out": args.out}, {"--tvsum": args.tvsum, "--youtube": args.youtube})
        check_figure_path("--out", args.out)
        runs = [plain_runs(paths, dataset, flag) for paths, dataset, flag, _ in panels]
        figure, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.2), squeeze=False)
        for axis, panel_runs, (*_, title) in zip(axes[0], runs, panels):
            draw_panel(axis, panel_runs, title)
        figure.tight_layout()
        atomic_savefig(figure, args.out, dpi=120)
        print(f"wrote {args.out}")

    return run_command("plot_k_sweep.py", work)


if __name__ == "__main__":
    sys.exit(main())
