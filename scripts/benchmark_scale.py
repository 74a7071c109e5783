"""Scale benchmarks: time and peak memory against the clip count, RD fusion vs attention.

    python scripts/benchmark.py --topics scale
    python scripts/benchmark_scale.py --quick                      # a short smoke run
    python scripts/benchmark_scale.py --json docs/images/benchmark_scale.json   # for plot_scale.py

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
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

from benchmark_scale_plan import fusion_rows, model_rows, ten_hour_rows
from benchmark_scale_rows import CLIP_COUNTS, HIDDEN, TEN_HOURS, TOKENS
from benchmark_scale_tables import gpu_rows, print_fusion_table, print_model_table
from benchmark_utils import describe_machine


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="75 and 1,200 clips, fewer variants, 1 repeat")
    parser.add_argument("--clips", type=lambda s: [int(x) for x in s.split(",")], default=None)
    parser.add_argument("--tables", default="fusion,model,ten_hours,gpu", help="comma-separated subset")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-repeats", type=int, default=3)
    parser.add_argument("--max-repeats", type=int, default=15)
    parser.add_argument("--row-seconds", type=float, default=4.0, help="timing budget that sets the repeats")
    parser.add_argument("--max-row-seconds", type=float, default=120.0)
    parser.add_argument("--max-memory-gib", type=float, default=8.0)
    parser.add_argument("--json", type=Path, default=None, help="write every row here (for plot_scale.py)")
    args = parser.parse_args(argv)
    if args.quick:
        args.clips = args.clips or [75, 1200]
        args.min_repeats = args.max_repeats = 1
    args.clips = args.clips or list(CLIP_COUNTS)
    return args


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    tables = set(args.tables.split(","))
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
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
