"""Write the small committed reference checkpoint that guards backward compatibility.

Run once when the model changes on purpose (and say so in the commit)::

    python scripts/make_reference_checkpoint.py

It writes ``modeling_tests/fixtures/rdmf_reference/``: ``config.json`` and ``model.safetensors`` of a tiny
seeded ``RDMFForMomentRetrieval``, and ``reference_io.safetensors`` with fixed inputs and the outputs this
version computes for them. ``modeling_tests/test_hub_integration.py`` loads the checkpoint with the
current code and compares.
"""

from pathlib import Path

import torch
from safetensors.torch import save_file

from transformers_rdmf import RDMFConfig, RDMFForMomentRetrieval

OUT = Path(__file__).resolve().parents[1] / "modeling_tests" / "fixtures" / "rdmf_reference"


def reference_config() -> RDMFConfig:
    return RDMFConfig(
        video_feature_dim=16,
        text_feature_dim=8,
        hidden_size=16,
        num_attention_heads=2,
        num_moment_queries=6,
        num_decoder_layers=2,
        decoder_ffn_dim=32,
    )


def reference_inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1234)
    video_mask = torch.ones(2, 12, dtype=torch.long)
    video_mask[1, 7:] = 0
    text_mask = torch.ones(2, 5, dtype=torch.long)
    text_mask[0, 3:] = 0
    return {
        "video_features": torch.randn(2, 12, 16, generator=g),
        "text_features": torch.randn(2, 5, 8, generator=g),
        "video_mask": video_mask,
        "text_mask": text_mask,
    }


def main() -> None:
    torch.manual_seed(0)
    model = RDMFForMomentRetrieval(reference_config()).eval()
    with torch.no_grad():  # move the reaction parameters off their defaults so loading them is checked
        model.rdmf.fusion.raw_feed_rate.add_(0.3)
        model.rdmf.temporal_diffusion.raw_coefficient.sub_(0.2)
    inputs = reference_inputs()
    with torch.no_grad():
        out = model(**inputs)
    OUT.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(OUT)
    for copied_code in OUT.glob("*.py"):  # the reference is weights + config; the code under test is current
        copied_code.unlink()
    outputs = {
        f"output.{k}": out[k].contiguous()
        for k in ("pred_spans", "logits", "pred_ious", "scores", "saliency_logits")
    }
    save_file({**{f"input.{k}": v for k, v in inputs.items()}, **outputs}, OUT / "reference_io.safetensors")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
