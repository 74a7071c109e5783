"""Scale benchmarks: time and peak memory against the clip count, RD fusion vs attention.

    python scripts/benchmark.py --topics scale
    python scripts/benchmark_scale.py --quick                      # a short smoke run
    python scripts/benchmark_scale.py --json docs/images/benchmark_scale.json --overwrite  # for plot_scale.py

Tables:

1. Fusion at hidden 256, batch 1, 20 query tokens, for 75 to 19,200 clips (2 s clips: 2.5 min to
   10.7 h), forward (no grad) and forward+backward: RD fusion (fused default, Euler reference,
   ``torch.compile``), the cross-attention ablation (clips attend to the tokens, O(L N d)) and the
   baseline other models use, one self-attention transformer encoder layer over clips + tokens
   (Moment-DETR / QD-DETR, O(L^2 d)) at the same hidden size and depth (one layer, FFN 1024).
2. The whole ``RDMFForMomentRetrieval`` forward (2,816-d clip features, 20 tokens) at batch 1 and 32.
3. A 10-hour video, 18,000 clips x 2,816 dims, through the whole model in one pass.
4. GPU rows when CUDA is available (fp32, bf16 autocast, compiled RD); otherwise a line saying so.

Method: every row runs in a fresh process (``benchmark_scale_rows.py``) so that memory freed by one row cannot be
reused unseen by the next. Peak memory is the growth of the process's resident set during the row's
first call: ``VmHWM`` after the call minus ``VmRSS`` before it, with the high-water mark reset through
``/proc/self/clear_refs`` after the inputs and weights exist (so they are not counted). It includes
allocator overhead and one-time library buffers. Time is the median of repeats after that call; the
compiled rows compile at another clip count first (dynamic shapes), so compilation is excluded.
Dropout is 0. Threads default to 1: on a shared 2-core machine, two OpenMP threads against another
process's load made timings 10-30x noisier. Rows whose time or memory, extrapolated from the two
previous clip counts, would pass ``--max-row-seconds`` or ``--max-memory-gib`` are skipped and say so.

Every option is checked before the first row, ``--json`` included (not a folder, writable, and not an
existing file unless ``--overwrite``): a bad one is refused in one line, exit status 2. The JSON is written
atomically once every row is measured.
"""

import argparse
import os
import sys
import time
from pathlib import Path

from benchmark_scale_plan import fusion_rows, model_rows, ten_hour_rows
from benchmark_scale_rows import CLIP_COUNTS, HIDDEN, TEN_HOURS, TOKENS
from benchmark_scale_tables import gpu_rows, print_fusion_table, print_model_table
from benchmark_utils import describe_machine, parse_options
from transformers_rdmf.atomic import (
    atomic_write_json,
    check_can_write_in,
    check_not_replacing,
    check_output_paths,
)
from transformers_rdmf.errors import (
    OneLineParser,
    require_positive_integer,
    require_positive_number,
    require_positive_seconds,
    run_command,
)

TABLES = ("fusion", "model", "ten_hours", "gpu")


def parse_args(argv: list[str], alongside: bool = False) -> argparse.Namespace:
    """The options, every one checked (and ``--json`` probed) before any row is measured.

    Raises:
        ValueError: a bad value, naming its flag (``PermissionError`` for a ``--json`` that cannot be written).
    """
    parser = OneLineParser(
        prog="benchmark_scale.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="75 and 1,200 clips, fewer variants, 1 repeat")
    parser.add_argument("--clips", default=None, help="increasing clip counts, comma separated (75,300)")
    parser.add_argument("--tables", default=",".join(TABLES), help=f"comma-separated subset of {TABLES}")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-repeats", type=int, default=3)
    parser.add_argument("--max-repeats", type=int, default=15)
    parser.add_argument("--row-seconds", type=float, default=4.0, help="timing budget that sets the repeats")
    parser.add_argument("--max-row-seconds", type=float, default=120.0)
    parser.add_argument("--max-memory-gib", type=float, default=8.0)
    parser.add_argument("--json", type=Path, default=None, help="write every row here (for plot_scale.py)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    args = parse_options(parser, argv, alongside)
    args.clips = None if args.clips is None else clip_counts(args.clips)
    args.tables = table_names(args.tables)
    require_positive_integer("--threads", args.threads)
    require_positive_integer("--min-repeats", args.min_repeats)
    require_positive_integer("--max-repeats", args.max_repeats)
    if args.max_repeats < args.min_repeats:
        raise ValueError(
            f"--max-repeats: expected at least --min-repeats ({args.min_repeats}), got {args.max_repeats}"
        )
    require_positive_seconds("--row-seconds", args.row_seconds)
    require_positive_seconds("--max-row-seconds", args.max_row_seconds)
    require_positive_number("--max-memory-gib", args.max_memory_gib, "a positive number of GiB")
    if args.json is not None:  # the run takes minutes to an hour: its one output is checked first
        check_output_paths({"--json": args.json}, {})
        check_not_replacing({"--json": args.json}, args.overwrite)
        check_can_write_in("--json", args.json.parent)
    if args.quick:
        args.clips = args.clips or [75, 1200]
        args.min_repeats = args.max_repeats = 1
    args.clips = args.clips or list(CLIP_COUNTS)
    return args


def clip_counts(text: str) -> list[int]:
    """``"75,300"`` -> ``[75, 300]``; increasing, since each row's time and memory are extrapolated from the
    two before it."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1 or any(a >= b for a, b in zip(counts, counts[1:])):
        raise ValueError(
            f"--clips: expected increasing positive integers separated by commas (75,300,1200), got {text!r}"
        )
    return counts


def table_names(text: str) -> set[str]:
    names = {name.strip() for name in text.split(",")}
    for name in sorted(names):
        if name not in TABLES:
            raise ValueError(f"--tables: unknown table {name!r}; known: {', '.join(TABLES)}")
    return names


def benchmark(args: argparse.Namespace) -> None:
    tables = args.tables
    machine = describe_machine(args.threads)
    print(f"machine: {machine}\n")
    started = time.perf_counter()
    rows = []
    if "fusion" in tables:
        rows += fusion_rows(args)
        print_fusion_table([r for r in rows if r["table"] == "fusion"])
    if "model" in tables:
        rows += model_rows(args)
        print_model_table(
            [r for r in rows if r["table"] == "model"],
            f"RDMFForMomentRetrieval forward (no grad), 2,816-d clips, {TOKENS} tokens, hidden {HIDDEN}",
        )
    if "ten_hours" in tables:
        rows += ten_hour_rows(args)
        print_model_table(
            [r for r in rows if r["table"] == "ten_hours"],
            f"10-hour video: {TEN_HOURS:,} clips x 2,816 dims in one forward pass (features alone: "
            f"{TEN_HOURS * 2816 * 4 / 2**20:.0f} MiB)",
            extra_total=True,
        )
    if "gpu" in tables:
        gpu_rows(args)
    print(f"total {time.perf_counter() - started:.0f} s; load at the end {os.getloadavg()[0]:.2f}")
    if args.json is not None:
        atomic_write_json(args.json, {"machine": machine, "rows": rows})


def main(argv: list[str]) -> int:
    return run_command("benchmark_scale.py", lambda: benchmark(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
