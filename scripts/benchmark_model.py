"""Model benchmarks (CPU): closed-form diffusion vs K Euler steps, and the whole forward pass.

    python scripts/benchmark.py --topics model

Batch 32, 75 clips (QVHighlights' 150 s at 2 s clips), hidden 256, K=10, as issue 3 asks. Every row is
timed in this run beside its baseline; the median of several repeats after a warm-up.
"""

import argparse
import sys

import torch

from benchmark_utils import median_seconds, parse_options, print_table
from transformers_rdmf import RDMFConfig, RDMFForMomentRetrieval
from transformers_rdmf.errors import OneLineParser, run_command
from transformers_rdmf.reaction_diffusion import temporal_diffusion, temporal_diffusion_closed_form


def diffusion_rows(batch: int, clips: int, hidden: int) -> list[tuple]:
    x = torch.randn(batch, clips, hidden)
    mask = torch.ones(batch, clips, dtype=torch.long)
    mask[batch // 2 :, clips * 2 // 3 :] = 0
    rows = []
    for steps in (5, 10, 20):
        euler = median_seconds(lambda s=steps: temporal_diffusion(x, mask, 0.2, 1.0, s))
        closed = median_seconds(lambda s=steps: temporal_diffusion_closed_form(x, mask, 0.2, 1.0, s))
        rows.append((steps, f"{euler * 1e3:.2f}", f"{closed * 1e3:.2f}", f"{euler / closed:.1f}x"))
    return rows


def forward_rows(batch: int, clips: int, hidden: int) -> list[tuple]:
    video = torch.randn(batch, clips, 2816)
    text = torch.randn(batch, 20, 512)
    rows = []
    with torch.no_grad():  # first-call set-up (allocator, kernels) is not part of any row
        RDMFForMomentRetrieval(RDMFConfig(hidden_size=hidden)).eval()(video, text)
    for label, overrides in [
        ("closed-form diffusion (default)", {}),
        ("Euler diffusion (reference)", {"diffusion_implementation": "euler"}),
        ("w/o temporal diffusion", {"use_temporal_diffusion": False}),
        ("cross-attention fusion (w/o RD)", {"fusion_type": "cross_attention"}),
    ]:
        config = RDMFConfig(hidden_size=hidden, **overrides)
        model = RDMFForMomentRetrieval(config).eval()
        with torch.no_grad():
            seconds = median_seconds(lambda m=model: m(video, text), repeats=7, warmup=2)
        rows.append((label, f"{seconds * 1e3:.1f}", f"{batch / seconds:.0f}"))
    base = float(rows[0][1])
    return [(*row, f"{float(row[1]) / base:.2f}") for row in rows]


def parse_args(argv: list[str], alongside: bool = False) -> argparse.Namespace:
    """No options of its own: alone it refuses any; see ``benchmark_utils.parse_options``."""
    parser = OneLineParser(prog="benchmark_model.py", description=__doc__)
    return parse_options(parser, argv, alongside)


def benchmark(args: argparse.Namespace) -> None:
    batch, clips, hidden = 32, 75, 256
    torch.manual_seed(0)
    print(f"threads: {torch.get_num_threads()}; batch {batch}, clips {clips}, hidden {hidden}")
    print_table(
        "Temporal diffusion: K Euler steps vs the closed form (one (2K+1)-tap convolution), ms",
        ("K", "Euler ms", "closed form ms", "speed-up"),
        diffusion_rows(batch, clips, hidden),
    )
    print_table(
        "RDMFForMomentRetrieval forward (inference, no grad), input 2816-d clips + 20 text tokens",
        ("variant", "ms / batch", "videos / s", "time vs default"),
        forward_rows(batch, clips, hidden),
    )


def main(argv: list[str]) -> int:
    return run_command("benchmark_model.py", lambda: benchmark(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
