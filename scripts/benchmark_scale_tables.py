"""The scale benchmark's tables: ratios to the baseline row measured in the same run, and the GPU rows."""

import statistics

import torch

from benchmark_scale_rows import FUSION_BASELINE, HIDDEN, MODEL_BASELINE, TEN_HOURS, TOKENS
from benchmark_utils import print_table, timed
from transformers_rdmf import RDMFConfig, RDMFForMomentRetrieval


def ratio(row: dict, base: dict | None, key: str) -> str:
    if row["status"] != "ok" or base is None or base["status"] != "ok" or base[key] <= 0:
        return "n/a"
    return f"{row[key] / base[key]:.2f}"


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
