"""The scale benchmark's rows: which to measure, each in a fresh process, skipping what would overrun."""

import json
import math
import subprocess
import sys
from pathlib import Path

from benchmark_scale_rows import FUSION_VARIANTS, MODEL_BASELINE, MODEL_VARIANTS, TEN_HOURS

ROW_SCRIPT = Path(__file__).resolve().with_name("benchmark_scale_rows.py")


def run_in_subprocess(spec: dict, timeout: float) -> dict:
    command = [sys.executable, str(ROW_SCRIPT), json.dumps(spec)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**spec, "status": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        reason = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return {**spec, "status": f"failed: {reason[:120]}"}
    return json.loads(lines[-1])


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
