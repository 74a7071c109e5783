"""One row of the scale benchmark, measured in its own process (``benchmark_scale.py`` runs this file).

    python scripts/benchmark_scale_rows.py '{"table": "fusion", "variant": ..., "clips": 75, ...}'

prints the row as one JSON line: peak RSS growth of the first call, then the median time of repeats.
"""

import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

from benchmark_utils import reset_peak_memory, timed
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
    reset_peak_memory()
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    after = memory_status_kib()
    repeats = max(spec["min_repeats"], min(spec["max_repeats"], int(spec["row_seconds"] / max(first, 1e-6))))
    times = [timed(call) for _ in range(repeats)]
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


if __name__ == "__main__":
    print(json.dumps(run_row(json.loads(sys.argv[1]))))
