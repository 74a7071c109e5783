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

Method: every row runs in a fresh process (``--worker``) so that memory freed by one row cannot be
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
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from transformers_rdmf import RDMFConfig, RDMFForMomentRetrieval
from transformers_rdmf.modeling_rdmf import RDMFCrossAttentionFusion, RDMFReactionDiffusionFusion

HIDDEN, TOKENS, FFN, HEADS = 256, 20, 1024, 8
CLIP_COUNTS = (75, 300, 1200, 4800, 19200)
TEN_HOURS = 18_000  # 2 s clips
FUSION_VARIANTS = {
    "RD fusion (fused, default)": {"reaction_implementation": "fused"},
    "RD fusion (Euler reference)": {"reaction_implementation": "euler"},
    "RD fusion (torch.compile)": {"reaction_implementation": "compiled"},
    "cross-attention (w/o RD)": {"fusion_type": "cross_attention"},
    "self-attention encoder (baseline)": {},
}
FUSION_BASELINE = "self-attention encoder (baseline)"
MODEL_VARIANTS = {
    "Euler references (diffusion + RD)": {
        "diffusion_implementation": "euler",
        "reaction_implementation": "euler",
    },
    "default (closed form + fused RD)": {},
    "compiled RD": {"reaction_implementation": "compiled"},
    "cross-attention fusion (w/o RD)": {"fusion_type": "cross_attention"},
}
MODEL_BASELINE = "Euler references (diffusion + RD)"


# ---------------------------------------------------------------------------------------------
# One row, in its own process
# ---------------------------------------------------------------------------------------------


class SelfAttentionEncoder(nn.Module):
    """The O(L^2) baseline: a post-norm transformer encoder layer over clips and query tokens together."""

    def __init__(self, hidden: int = HIDDEN, heads: int = HEADS, ffn: int = FFN):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(hidden, heads, ffn, dropout=0.0, batch_first=True)

    def forward(self, video: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """``(batch, clips, hidden)``, ``(batch, tokens, hidden)`` -> ``(batch, clips, hidden)``."""
        return self.layer(torch.cat([video, tokens], dim=1))[:, : video.shape[1]]


def fusion_call(variant: str, batch: int, clips: int, backward: bool):
    """A zero-argument call running one fusion variant on random projected features."""
    video = torch.randn(batch, clips, HIDDEN, requires_grad=backward)
    tokens = torch.randn(batch, TOKENS, HIDDEN)
    mask = torch.ones(batch, clips, dtype=torch.long)
    token_mask = torch.ones(batch, TOKENS, dtype=torch.long)
    config = RDMFConfig(hidden_size=HIDDEN, dropout=0.0, **FUSION_VARIANTS[variant])
    if variant == FUSION_BASELINE:
        module = SelfAttentionEncoder()
        run = lambda: module(video, tokens)  # noqa: E731
    elif config.fusion_type == "cross_attention":
        module = RDMFCrossAttentionFusion(config)
        run = lambda: module(video, tokens, mask, token_mask)  # noqa: E731
    else:
        module = RDMFReactionDiffusionFusion(config)
        module.raw_activator_diffusion.data.fill_(
            -0.4
        )  # D_u 0.2 = 0.5 sigmoid(-0.4); values do not change cost
        sentence = tokens.mean(dim=1)
        run = lambda: module(video, sentence, mask)[0]  # noqa: E731
    return training_or_inference(module, run, backward)


def training_or_inference(module: nn.Module, run, backward: bool):
    if not backward:
        module.eval()

        def call():
            with torch.no_grad():
                run()

        return call
    module.train()
    return lambda: run().square().mean().backward()


def model_call(variant: str, batch: int, clips: int, backward: bool = False):
    """A zero-argument call running the whole ``RDMFForMomentRetrieval`` forward (no grad)."""
    config = RDMFConfig(hidden_size=HIDDEN, **MODEL_VARIANTS[variant])
    model = RDMFForMomentRetrieval(config).eval()
    video = torch.randn(batch, clips, config.video_feature_dim)
    text = torch.randn(batch, TOKENS, config.text_feature_dim)

    def call():
        with torch.no_grad():
            out = model(video, text)
        return out.pred_spans.shape

    return call


def memory_status_kib() -> dict[str, int]:
    status = Path("/proc/self/status").read_text()
    return {key: int(re.search(rf"{key}:\s+(\d+)", status).group(1)) for key in ("VmRSS", "VmHWM")}


def run_row(spec: dict) -> dict:
    """Measure one row: peak RSS growth of the first call, then the median time of repeats."""
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    make = fusion_call if spec["table"] == "fusion" else model_call
    compiled = "compile" in spec["variant"]
    if compiled:  # compile at another clip count; dynamic shapes carry over without recompiling
        make(spec["variant"], spec["batch"], 64, spec["backward"])()
    call = make(spec["variant"], spec["batch"], spec["clips"], spec["backward"])
    before = memory_status_kib()["VmRSS"]
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    after = memory_status_kib()
    repeats = max(spec["min_repeats"], min(spec["max_repeats"], int(spec["row_seconds"] / max(first, 1e-6))))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return {
        **spec,
        "status": "ok",
        "seconds": statistics.median(times),
        "first_call_seconds": first,
        "repeats": repeats,
        "peak_mib": (after["VmHWM"] - before) / 1024,
        "process_peak_mib": after["VmHWM"] / 1024,
        "load_1min": os.getloadavg()[0],
    }


def run_in_subprocess(spec: dict, timeout: float) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**spec, "status": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        reason = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return {**spec, "status": f"failed: {reason[:120]}"}
    return json.loads(lines[-1])


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def extrapolate(previous: list[dict], clips: int, key: str) -> float | None:
    """``key`` at ``clips`` from the last two measured rows, by their empirical power law."""
    measured = [row for row in previous if row["status"] == "ok" and row[key] > 0]
    if len(measured) < 2:
        return None
    (a, b), value = measured[-2:], measured[-1][key]
    exponent = math.log(b[key] / a[key]) / math.log(b["clips"] / a["clips"])
    return value * (clips / b["clips"]) ** max(exponent, 1.0)


def skip_reason(previous: list[dict], clips: int, args) -> str | None:
    seconds, peak = extrapolate(previous, clips, "seconds"), extrapolate(previous, clips, "peak_mib")
    if seconds is not None and seconds * (1 + args.min_repeats) > args.max_row_seconds:
        return f"skipped: ~{seconds:.0f} s per call expected (limit {args.max_row_seconds:.0f} s per row)"
    if peak is not None and peak > args.max_memory_gib * 1024:
        return f"skipped: ~{peak / 1024:.1f} GiB expected (limit {args.max_memory_gib:g} GiB)"
    return None


def measure(spec: dict, previous: list[dict], args) -> dict:
    reason = skip_reason(previous, spec["clips"], args)
    if reason is not None:
        return {**spec, "status": reason}
    row = run_in_subprocess(spec, timeout=4 * args.max_row_seconds + 120)
    print(f"    {describe(row)}", file=sys.stderr, flush=True)
    return row


def describe(row: dict) -> str:
    mode = "fwd+bwd" if row["backward"] else "fwd"
    head = f"{row['variant']} b{row['batch']} L{row['clips']} {mode}"
    if row["status"] != "ok":
        return f"{head}: {row['status']}"
    return f"{head}: {row['seconds'] * 1e3:.1f} ms, {row['peak_mib']:.1f} MiB"


def base_spec(args, table: str, variant: str, batch: int, clips: int, backward: bool) -> dict:
    return {
        "table": table,
        "variant": variant,
        "batch": batch,
        "clips": clips,
        "backward": backward,
        "threads": args.threads,
        "min_repeats": args.min_repeats,
        "max_repeats": args.max_repeats,
        "row_seconds": args.row_seconds,
    }


def fusion_rows(args) -> list[dict]:
    rows = []
    for backward in (False, True):
        for variant in FUSION_VARIANTS:
            if args.quick and ("Euler" in variant or "compile" in variant):
                continue
            previous = []
            for clips in args.clips:
                row = measure(base_spec(args, "fusion", variant, 1, clips, backward), previous, args)
                previous.append(row)
                rows.append(row)
    return rows


def model_rows(args) -> list[dict]:
    shapes = [(1, 75), (32, 75)] if args.quick else [(1, 75), (32, 75), (1, 1200)]
    rows = []
    for batch, clips in shapes:
        for variant in MODEL_VARIANTS:
            if args.quick and variant not in (MODEL_BASELINE, "default (closed form + fused RD)"):
                continue
            rows.append(measure(base_spec(args, "model", variant, batch, clips, False), [], args))
    return rows


def ten_hour_rows(args) -> list[dict]:
    variants = [
        v
        for v in MODEL_VARIANTS
        if not args.quick or v in (MODEL_BASELINE, "default (closed form + fused RD)")
    ]
    return [measure(base_spec(args, "ten_hours", v, 1, TEN_HOURS, False), [], args) for v in variants]


def ratio(row: dict, base: dict | None, key: str) -> str:
    if row["status"] != "ok" or base is None or base["status"] != "ok" or base[key] <= 0:
        return "n/a"
    return f"{row[key] / base[key]:.2f}"


def print_table(title: str, header: tuple[str, ...], lines: list[tuple]) -> None:
    print(title)
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines)]
    for line in (header, tuple("-" * w for w in widths), *lines):
        print(
            "  "
            + " | ".join(
                str(x).ljust(w) if i == 0 else str(x).rjust(w) for i, (x, w) in enumerate(zip(line, widths))
            )
        )
    print()


def measured_cells(row: dict) -> tuple[str, str]:
    if row["status"] != "ok":
        return row["status"], ""
    return f"{row['seconds'] * 1e3:.1f}", f"{row['peak_mib']:.1f}"


def print_fusion_table(rows: list[dict]) -> None:
    for backward in (False, True):
        mode = "forward+backward" if backward else "forward (no grad)"
        baseline = {
            r["clips"]: r for r in rows if r["variant"] == FUSION_BASELINE and r["backward"] == backward
        }
        lines = []
        for row in (r for r in rows if r["backward"] == backward):
            base = baseline.get(row["clips"])
            ms, mib = measured_cells(row)
            lines.append(
                (
                    row["variant"],
                    row["clips"],
                    ms,
                    mib,
                    ratio(row, base, "seconds"),
                    ratio(row, base, "peak_mib"),
                    load(row),
                )
            )
        print_table(
            f"Fusion, {mode}: batch 1, hidden {HIDDEN}, {TOKENS} tokens; ratios to the self-attention encoder at the same clip count",
            ("variant", "clips", "ms", "peak MiB", "time / self-attn", "memory / self-attn", "load"),
            lines,
        )


def load(row: dict) -> str:
    return f"{row['load_1min']:.1f}" if row["status"] == "ok" else ""


def print_model_table(rows: list[dict], title: str, extra_total: bool = False) -> None:
    lines = []
    for row in rows:
        base = next(
            r
            for r in rows
            if r["variant"] == MODEL_BASELINE and (r["batch"], r["clips"]) == (row["batch"], row["clips"])
        )
        ms, mib = measured_cells(row)
        speedup = (
            "n/a"
            if row["status"] != "ok" or base["status"] != "ok"
            else f"{base['seconds'] / row['seconds']:.2f}"
        )
        line = (row["variant"], row["batch"], row["clips"], ms, mib, speedup)
        if extra_total:
            line += (f"{row['process_peak_mib']:.0f}" if row["status"] == "ok" else "",)
        lines.append(line + (load(row),))
    header = ("variant", "batch", "clips", "ms", "peak MiB", "speed-up vs Euler refs")
    header += ("process peak MiB",) if extra_total else ()
    print_table(title, header + ("load",), lines)


def gpu_rows(args) -> None:
    """Whole-model forward on CUDA (fp32, bf16 autocast, compiled RD), peak from the CUDA allocator."""
    if not torch.cuda.is_available():
        print("GPU: not measured (torch.cuda.is_available() is False on this machine).\n")
        return
    lines = []
    for batch, clips in [(32, 75), (1, TEN_HOURS)]:
        for label, overrides, dtype in [
            ("fp32", {}, None),
            ("bf16 autocast", {}, torch.bfloat16),
            ("fp32, compiled RD", {"reaction_implementation": "compiled"}, None),
        ]:
            model = RDMFForMomentRetrieval(RDMFConfig(hidden_size=HIDDEN, **overrides)).cuda().eval()
            video = torch.randn(batch, clips, 2816, device="cuda")
            text = torch.randn(batch, TOKENS, 512, device="cuda")

            def call(model=model, video=video, text=text, dtype=dtype):
                with torch.no_grad(), torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
                    model(video, text)
                torch.cuda.synchronize()

            call()
            torch.cuda.reset_peak_memory_stats()
            seconds = statistics.median(timed(call) for _ in range(args.max_repeats))
            peak = torch.cuda.max_memory_allocated() / 2**20
            lines.append((label, batch, clips, f"{seconds * 1e3:.2f}", f"{peak:.1f}"))
    print_table(
        f"GPU ({torch.cuda.get_device_name()}): whole-model forward",
        ("variant", "batch", "clips", "ms", "peak MiB (allocator)"),
        lines,
    )


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def describe_machine(threads: int) -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    model = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    cpu = model.group(1) if model else cpu
    return (
        f"{platform.node()} | {cpu} | {os.cpu_count()} cores | {memory:.0f} GiB | torch {torch.__version__} | "
        f"threads {threads} | load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


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
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.clips = args.clips or [75, 1200]
        args.min_repeats = args.max_repeats = 1
    args.clips = args.clips or list(CLIP_COUNTS)
    return args


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.worker is not None:
        print(json.dumps(run_row(json.loads(args.worker))))
        return
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
