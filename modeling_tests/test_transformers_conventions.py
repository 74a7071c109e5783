"""The conventions a transformers user expects, each against a second code path: torch.export, offloaded
loading, gradient checkpointing, the backbone's own init for missing weights, return_dict from the config."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from transformers_rdmf import RDMFConfig, RDMFForMomentRetrieval

from .test_modeling import assert_outputs_close, tiny_batch, tiny_config
from .test_video_backbones import tiny_clip_rdmf_config

OUTPUTS = ("pred_spans", "logits", "pred_ious", "scores", "saliency_logits")


def padded_batch():
    """The tiny batch with its second video cut to 3 clips, so masks differ from the traced example."""
    video, text, video_mask, text_mask = tiny_batch()
    video_mask = video_mask.clone()
    video_mask[1, 3:] = 0
    return video, text, video_mask, text_mask


@pytest.mark.parametrize("strict", [False, True])
def test_torch_export_gives_the_eager_outputs(strict):
    model = RDMFForMomentRetrieval(tiny_config()).eval()
    program = torch.export.export(model, tiny_batch(), strict=strict)
    for batch in (tiny_batch(), padded_batch()):  # same shapes; the second with other padding
        with torch.no_grad():
            eager = model(*batch)
        exported = program.module()(*batch)
        for key in OUTPUTS:  # another program of the same operations: to 1e-6
            torch.testing.assert_close(exported[key], eager[key], atol=1e-6, rtol=0, msg=key)


def test_checks_stay_on_in_eager_mode():
    model = RDMFForMomentRetrieval(tiny_config()).eval()
    video, text, video_mask, text_mask = tiny_batch()
    video = video.clone()
    video[0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="video_features: contains NaN"):
        model(video, text, video_mask, text_mask)
    gaps = video_mask.clone()
    gaps[1, 0] = 0  # padding before a valid clip
    with pytest.raises(ValueError, match="valid clips must come first"):
        model(*tiny_batch()[:2], gaps, text_mask)


@pytest.mark.parametrize(
    "device_map",
    [
        "auto",  # with a small max_memory: most modules on disk
        {
            "rdmf": "cpu",
            "query_embeddings": "disk",
            "decoder": "disk",
            "span_head": "disk",
            "class_head": "cpu",
            "iou_head": "disk",
            "criterion": "cpu",
        },  # fmt: skip
    ],
)
def test_offloaded_loading_gives_the_in_memory_outputs(device_map, tmp_path):
    torch.manual_seed(0)
    model = RDMFForMomentRetrieval(tiny_config()).eval()
    model.save_pretrained(tmp_path / "checkpoint")
    extra = {"max_memory": {"cpu": "60KB"}} if device_map == "auto" else {}
    offloaded = RDMFForMomentRetrieval.from_pretrained(
        tmp_path / "checkpoint", device_map=device_map, offload_folder=tmp_path / "offload", **extra
    ).eval()
    assert "disk" in set(offloaded.hf_device_map.values())
    batch = padded_batch()
    with torch.no_grad():
        expected, got = model(*batch), offloaded(*batch)
    # the same weights read back from disk, in another instance: to a tolerance (see test_modeling)
    assert_outputs_close(got, expected, OUTPUTS)


def test_gradient_checkpointing_gives_the_same_gradients():
    def gradients(checkpointing: bool):
        torch.manual_seed(0)
        model = RDMFForMomentRetrieval(tiny_config(dropout=0.1)).train()
        if checkpointing:
            model.activation_checkpointing_enable()  # transformers 5 name of gradient_checkpointing_enable
            calls = []
            for layer in model.decoder.layers:
                original = layer._gradient_checkpointing_func
                layer._gradient_checkpointing_func = lambda *a, f=original, **k: calls.append(1) or f(*a, **k)
        torch.manual_seed(1)
        video, text, video_mask, text_mask = padded_batch()
        labels = [
            {"spans": torch.tensor([[0.4, 0.2]]), "saliency": torch.rand(video.shape[1])} for _ in video
        ]
        model(video, text, video_mask, text_mask, labels=labels).loss.backward()
        if checkpointing:
            assert len(calls) == len(model.decoder.layers)  # every decoder layer was checkpointed
        return {name: p.grad for name, p in model.named_parameters() if p.grad is not None}

    plain, checkpointed = gradients(False), gradients(True)
    assert plain.keys() == checkpointed.keys() and len(plain) > 50
    for name in plain:  # recomputed activations (dropout replayed from the saved RNG state): to 1e-6
        torch.testing.assert_close(checkpointed[name], plain[name], atol=1e-6, rtol=0, msg=name)


def test_backbone_weights_missing_from_a_checkpoint_get_clips_own_init(tmp_path):
    torch.manual_seed(0)
    model = RDMFForMomentRetrieval(tiny_clip_rdmf_config())
    model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    kept = {name: value for name, value in weights.items() if ".video_backbone." not in name}
    save_file(kept, tmp_path / "model.safetensors", metadata={"format": "pt"})
    loaded, info = RDMFForMomentRetrieval.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] and all(".video_backbone." in key for key in info["missing_keys"])
    vision = loaded.rdmf.video_backbone.encoder.config
    attention = loaded.rdmf.video_backbone.encoder.vision_model.encoder.layers[0].self_attn
    # CLIP's scheme: std = hidden^-0.5 (2 layers)^-0.5 factor = 0.177 here; normal(0.02) was the bug
    expected = vision.hidden_size**-0.5 * (2 * vision.num_hidden_layers) ** -0.5 * vision.initializer_factor
    for projection in (attention.q_proj, attention.k_proj, attention.v_proj):
        assert projection.weight.std().item() == pytest.approx(expected, rel=0.2)
    state = loaded.state_dict()
    for name, value in kept.items():  # what the file holds is loaded, not initialised again
        assert torch.equal(state[name], value), name


def test_return_dict_false_in_the_config_gives_tuples_from_both_models():
    config = tiny_config(return_dict=False)
    model = RDMFForMomentRetrieval(config).eval()
    with torch.no_grad():
        as_tuple = model(*tiny_batch())
        as_output = model(*tiny_batch(), return_dict=True)
    assert isinstance(as_tuple, tuple) and isinstance(model.rdmf(*tiny_batch()), tuple)
    for got, expected in zip(as_tuple, as_output.to_tuple()):
        torch.testing.assert_close(got, expected, atol=0, rtol=0)  # the same computation: exact
    assert isinstance(RDMFConfig(return_dict=False).return_dict, bool)
