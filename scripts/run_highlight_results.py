"""Reproduce the highlight-detection tables of docs/results.md (TVSum top-5 mAP, YouTube Highlights mAP).

One model per category (TVSum) or domain (YouTube Highlights), trained on its train videos with
``rdmf-train``'s code, evaluated on its val videos every ``--eval_every`` epochs. Numbers per run:

- ``best``: the best val score seen during training (how UMT, QD-DETR and CG-DETR report: the val
  video chooses the epoch);
- ``final``: the score after the fixed schedule (``--epochs``), which never looks at the val video;
- with ``--train_folds K``, also ``train_fold``: K more runs per domain train on folds of the train videos and
  are evaluated on the held-out ones; the epoch with the best mean held-out score is read on the official
  run's curve (never looks at the val video either).

With ``--joint``, one model per (variant, seed) trains on the train videos of every domain at once (the
query tells the domains apart) and is scored per domain on the same val videos; ``best`` is then each
domain's best epoch on its own curve, and ``--train_folds`` holds out every K-th train video of each
domain.

Usage::

    python scripts/run_highlight_results.py --dataset tvsum --data_root ../shared/data/tvsum \
        --seeds 0 1 2 --epochs 200 --eval_every 10 --train ema_decay=0.99 --train_folds 4 \
        --jobs 2 --results results/tvsum_200ep.json
    python scripts/run_highlight_results.py --dataset tvsum --data_root ../shared/data/tvsum --joint \
        --seeds 0 1 2 --epochs 60 --eval_every 2 --train ema_decay=0.99 --train_folds 4 \
        --jobs 2 --results results/tvsum_joint.json
    python scripts/run_highlight_results.py --report results/tvsum_200ep.json   # print the tables
    python scripts/run_highlight_results.py --report results/tvsum.json results/tvsum_ablations.json --seeds 0
    python scripts/run_highlight_results.py --report results/tvsum_ablations.json --variants full   # one variant
    python scripts/run_highlight_results.py --report results/tvsum_cv_joint_*.json \
        --data_root ../shared/data/tvsum --into docs/results.md --section tvsum-cv   # regenerate the docs

Results are appended to the JSON after every run, so an interrupted sweep resumes where it stopped.
"""

import argparse

from transformers_rdmf.dataset_specs import HIGHLIGHT_DATASETS
from transformers_rdmf.errors import OneLineParser
from transformers_rdmf.training.sweep import (  # noqa: F401 (the tests reach these through the script)
    VARIANTS,
    checked_jobs,
    data_arguments,
    domains_of,
    fold_selected,
    job_key,
    report,
    result_keys,
    run_one,
    run_sweep,
    with_fold_selection,
)


def main() -> None:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(HIGHLIGHT_DATASETS), default="tvsum")
    parser.add_argument("--data_root")
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=sorted(VARIANTS),
        help="the variants to train (default full); with --report, the only ones to print (default all)",
    )
    parser.add_argument("--domains", nargs="+")
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        help="the seeds to train (default 0 1 2); with --report, the only ones to print (default all)",
    )
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--eval_every", type=int, default=5)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--set", action="append", default=[], help="config override key=value for every run")
    parser.add_argument(
        "--train",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a RDMFTrainingArguments field for every run (e.g. ema_decay=0.99, weight_decay=0.01)",
    )
    parser.add_argument("--tag", default="", help="a name for this recipe, shown beside the variant")
    parser.add_argument(
        "--joint",
        action="store_true",
        help="one model per (variant, seed) on every domain's train videos, scored per domain",
    )
    parser.add_argument(
        "--train_folds",
        type=int,
        default=0,
        help="also train on folds of each domain's train videos, evaluated on the held-out ones, to choose "
        "the number of epochs without the val videos (protocol 'train-fold selection')",
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="runs in parallel (each gets cpu_count / jobs threads)"
    )
    parser.add_argument(
        "--threads", type=int, help="torch threads per run (default cpu_count / jobs); 1 leaves a core free"
    )
    parser.add_argument(
        "--protocol",
        choices=("official", "cv"),
        default="official",
        help="official: train on train, evaluate on val; cv: TVSum cross-validation, per category five folds, "
        "each video the test video once (with --train_folds K, K inner folds of the four train videos)",
    )
    parser.add_argument("--results", default="results/highlights.json")
    parser.add_argument(
        "--plot", help="with --report: also write the per-category spread (fixed schedule) here"
    )
    parser.add_argument(
        "--report", nargs="+", metavar="RESULTS_JSON", help="only print the tables of results files"
    )
    parser.add_argument(
        "--into",
        metavar="DOC",
        help="with --report and --section: also write the tables into this markdown document",
    )
    parser.add_argument(
        "--section",
        help="with --into: the tables replace what stands between '<!-- report: SECTION begin -->' and "
        "'<!-- report: SECTION end -->' in DOC",
    )
    args = parser.parse_args()
    if not args.report and (args.into or args.section):
        parser.error("--into and --section write a report: they need --report RESULTS_JSON")
    if args.report:
        if (args.into is None) != (args.section is None):
            parser.error("--into DOC and --section NAME go together")
        try:
            report(
                args.report,
                args.seeds,
                plot=args.plot,
                data_root=args.data_root,
                into=None if args.into is None else (args.into, args.section),
                variants=args.variants,
            )
        except (OSError, ValueError) as error:
            parser.error(str(error))
        return
    if not args.data_root:
        parser.error("--data_root is required to train")
    for flag in ("epochs", "eval_every", "jobs", "threads", "batch_size"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag}: expected a positive integer, got {value}")
    if args.train_folds < 0 or args.train_folds == 1:
        parser.error(f"--train_folds: expected 0 (none) or 2 or more folds, got {args.train_folds}")
    if args.joint and args.domains:
        parser.error("--joint trains one model on every domain: drop --domains")
    if args.protocol == "cv" and args.dataset != "tvsum":
        parser.error(
            "--protocol cv is TVSum's (five videos per category); YouTube Highlights uses --train_folds"
        )
    if args.protocol == "cv" and args.train_folds > 4:
        parser.error("--protocol cv: --train_folds is the inner folds of four train videos, at most 4")
    args.seeds = args.seeds or [0, 1, 2]
    args.variants = args.variants or ["full"]
    try:
        jobs = checked_jobs(args)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    run_sweep(args, jobs)
    try:
        report([args.results])
    except ValueError as error:  # a file that ended with no complete run
        parser.error(str(error))


if __name__ == "__main__":
    main()
