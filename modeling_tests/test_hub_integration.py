"""save_pretrained / from_pretrained, Auto classes, trust_remote_code in a fresh process, backward compatibility."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel

from transformers_rdmf import AutoModelForMomentRetrieval, RDMFConfig, RDMFForMomentRetrieval, RDMFModel

from .test_modeling import assert_outputs_close, assert_same_parameters, tiny_batch, tiny_config

REFERENCE = Path(__file__).parent / "fixtures" / "rdmf_reference"
OUTPUT_KEYS = ("pred_spans", "logits", "pred_ious", "scores", "saliency_logits")


def test_save_and_load_give_bit_identical_parameters_and_the_same_outputs(tmp_path):
    model = RDMFForMomentRetrieval(tiny_config()).eval()
    with torch.no_grad():
        model.rdmf.fusion.raw_kill_rate.add_(0.5)  # a trained value, not the config's
    batch = tiny_batch()
    expected = model(*batch)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = RDMFForMomentRetrieval.from_pretrained(tmp_path).eval()
    assert_same_parameters(model, loaded)  # read back from the file: bit for bit
    # the same scalar function of a bit-identical parameter: exact
    assert torch.equal(loaded.rdmf.fusion.rates()["kill"], model.rdmf.fusion.rates()["kill"])
    # another instance: its kernels may round differently, so outputs to a tolerance (see test_modeling)
    assert_outputs_close(loaded(*batch), expected, OUTPUT_KEYS)


def test_auto_classes_resolve_rdmf(tmp_path):
    model = RDMFForMomentRetrieval(tiny_config())
    model.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), RDMFConfig)
    assert type(AutoModelForMomentRetrieval.from_pretrained(tmp_path)) is RDMFForMomentRetrieval
    assert (
        type(AutoModel.from_pretrained(tmp_path)) is RDMFModel
    )  # the base model, from the package's registry
    assert type(AutoModelForMomentRetrieval.from_config(tiny_config())) is RDMFForMomentRetrieval
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModelForMomentRetrieval"] == "modeling_rdmf.RDMFForMomentRetrieval"
    assert auto_map["AutoModel"] == "modeling_rdmf.RDMFModel"  # the same class as the package registers
    assert {p.name for p in tmp_path.glob("*.py")} >= {
        "modeling_rdmf.py",
        "configuration_rdmf.py",
        "reaction_diffusion.py",
    }


def test_parameters_missing_from_a_checkpoint_get_the_configured_values(tmp_path):
    """_init_weights sets the scalar parameters, so a fresh model and from_pretrained agree."""
    RDMFForMomentRetrieval(tiny_config(feed_rate=0.03, kill_rate=0.05)).save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    kept = {k: v for k, v in weights.items() if "raw_" not in k}
    assert len(kept) < len(weights)
    save_file(kept, tmp_path / "model.safetensors", metadata={"format": "pt"})
    loaded = RDMFForMomentRetrieval.from_pretrained(tmp_path)
    with torch.no_grad():
        rates = loaded.rdmf.fusion.rates()
    assert float(rates["feed"]) == pytest.approx(0.03, rel=1e-5)
    assert float(rates["kill"]) == pytest.approx(0.05, rel=1e-5)
    assert float(rates["d_u"]) == pytest.approx(0.2, rel=1e-5)
    assert float(loaded.rdmf.temporal_diffusion.coefficient.detach()) == pytest.approx(0.2, rel=1e-5)


def test_committed_reference_checkpoint_still_gives_its_outputs():
    reference = load_file(REFERENCE / "reference_io.safetensors")
    inputs = {k.removeprefix("input."): v for k, v in reference.items() if k.startswith("input.")}
    model = RDMFForMomentRetrieval.from_pretrained(REFERENCE).eval()
    with torch.no_grad():
        out = model(**inputs)
    for key in OUTPUT_KEYS:
        torch.testing.assert_close(out[key], reference[f"output.{key}"], atol=1e-5, rtol=1e-5, msg=key)


FRESH_PROCESS = textwrap.dedent(
    """
    import sys
    sys.modules["transformers_rdmf"] = None  # the package must not be importable here
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoModel
    try:
        import transformers_rdmf  # noqa: F401
        raise SystemExit("transformers_rdmf was importable")
    except ImportError:
        pass
    from transformers import pipeline
    folder, inputs_path, out_path = sys.argv[1:4]
    base = AutoModel.from_pretrained(folder, trust_remote_code=True)
    assert type(base).__name__ == "RDMFModel", type(base)  # the base model, as with the package installed
    model = pipeline("video-moment-retrieval", model=folder, trust_remote_code=True).model  # the head
    assert type(model).__name__ == "RDMFForMomentRetrieval", type(model)
    assert not type(model).__module__.startswith("transformers_rdmf"), type(model).__module__
    with torch.no_grad():
        out = model(**load_file(inputs_path))
    save_file({k: v.contiguous() for k, v in out.items() if isinstance(v, torch.Tensor)}, out_path)
    """
)


def batch_inputs() -> dict[str, torch.Tensor]:
    video, text, video_mask, text_mask = tiny_batch()
    return {"video_features": video, "text_features": text, "video_mask": video_mask, "text_mask": text_mask}


def outputs_without_the_package(
    folder: Path, inputs: dict[str, torch.Tensor], work: Path
) -> dict[str, torch.Tensor]:
    """Load ``folder`` with ``AutoModel(trust_remote_code=True)`` in a fresh process where
    ``transformers_rdmf`` cannot be imported, run it on ``inputs`` and return its tensor outputs."""
    save_file(inputs, work / "inputs.safetensors")
    env = {**os.environ, "HF_MODULES_CACHE": str(work / "modules"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    command = [
        sys.executable,
        "-c",
        FRESH_PROCESS,
        str(folder),
        str(work / "inputs.safetensors"),
        str(work / "out"),
    ]
    result = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return load_file(work / "out")


def test_trust_remote_code_in_a_fresh_process_without_the_package(tmp_path):
    model = RDMFForMomentRetrieval(tiny_config()).eval()
    folder = tmp_path / "checkpoint"
    model.save_pretrained(folder)
    inputs = batch_inputs()
    remote = outputs_without_the_package(folder, inputs, tmp_path)
    with torch.no_grad():
        local = model(**inputs)
    # another process and instance: its kernels may round differently (see test_modeling)
    assert_outputs_close(remote, local, ("pred_spans", "scores", "saliency_logits"))


def test_return_dict_false_gives_a_tuple():
    model = RDMFForMomentRetrieval(tiny_config()).eval()
    out = model(*tiny_batch(), return_dict=False)
    assert isinstance(out, tuple)
    torch.testing.assert_close(out[0], model(*tiny_batch()).pred_spans)
