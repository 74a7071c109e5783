"""CLIP and timm backbones: raw frames and token ids run the same fusion and heads as features."""

import pytest
import timm
import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import CLIPConfig, CLIPModel, PreTrainedTokenizerFast

from transformers_rdmf import RDMFConfig, RDMFForMomentRetrieval

from .test_modeling import assert_outputs_close, assert_same_parameters, tiny_config

WORDS = "a the man woman person opens closes door light turns on off walks into room sits holds cup".split()
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
TIMM_MODEL = "test_resnet"  # one of timm's tiny test architectures


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over a small vocabulary, adding ``[BOS]`` and ``[EOS]`` as CLIP's does."""
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[BOS] $A [EOS]", special_tokens=[("[BOS]", vocab["[BOS]"]), ("[EOS]", vocab["[EOS]"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]", bos_token="[BOS]", eos_token="[EOS]"
    )


def tiny_clip_config() -> dict:
    """A random 16-wide CLIP (one layer per tower, 32 x 32 images in 16 x 16 patches) as a dict."""
    vocab_size = len(SPECIAL_TOKENS) + len(WORDS)
    tower = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    return CLIPConfig(
        projection_dim=16,
        vision_config=dict(**tower, image_size=32, patch_size=16),
        text_config=dict(
            **tower,
            vocab_size=vocab_size,
            max_position_embeddings=32,
            bos_token_id=2,
            eos_token_id=3,
            pad_token_id=0,
        ),
    ).to_dict()


def tiny_clip_rdmf_config(**overrides) -> RDMFConfig:
    return tiny_config(
        video_backbone="clip",
        text_backbone="clip",
        clip_config=tiny_clip_config(),
        video_feature_dim=16,
        text_feature_dim=16,
        **overrides,
    )


def raw_batch(clips=6, frames_per_clip=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    pixel_values = torch.randn(2, clips, frames_per_clip, 3, size, size, generator=g)
    pixel_mask = torch.ones(2, clips, dtype=torch.long)
    pixel_mask[1, clips // 2 :] = 0
    tokens = tiny_tokenizer()(["a man opens the door", "a woman sits"], padding=True, return_tensors="pt")
    return dict(pixel_values=pixel_values, pixel_mask=pixel_mask, **tokens)


OUTPUT_KEYS = ("pred_spans", "logits", "pred_ious", "scores", "saliency_logits")


def test_raw_input_equals_the_backbones_features_through_the_feature_path():
    model = RDMFForMomentRetrieval(tiny_clip_rdmf_config()).eval()
    batch = raw_batch()
    with torch.no_grad():
        raw = model(**{k: v for k, v in batch.items() if k != "token_type_ids"})
        backbone = model.rdmf
        video, video_mask = backbone.embed_video(batch["pixel_values"], batch["pixel_mask"], None)
        text, text_mask = backbone.embed_text(batch["input_ids"], batch["attention_mask"], None)
        features = model(video, text, video_mask, text_mask)
    for key in OUTPUT_KEYS:
        torch.testing.assert_close(raw[key], features[key], msg=key)
    # clip features: the mean of the frames' CLIP image embeddings, L2-normalised; padded clips zero
    frames = batch["pixel_values"][0, 0]
    expected = torch.nn.functional.normalize(
        backbone.video_backbone.encoder(pixel_values=frames).image_embeds.mean(0), dim=-1
    )
    torch.testing.assert_close(video[0, 0], expected)
    assert torch.all(video[1, 3:] == 0) and video_mask[1].tolist() == [1, 1, 1, 0, 0, 0]  # masked: exact


def test_backbones_are_frozen_by_default_and_trainable_on_request():
    frozen = RDMFForMomentRetrieval(tiny_clip_rdmf_config())
    assert not any(p.requires_grad for p in frozen.rdmf.video_backbone.parameters())
    assert not any(p.requires_grad for p in frozen.rdmf.text_backbone.parameters())
    trainable = RDMFForMomentRetrieval(tiny_clip_rdmf_config(freeze_backbones=False))
    assert all(p.requires_grad for p in trainable.rdmf.video_backbone.parameters())


@pytest.mark.parametrize("backbone", ["clip", "timm"])
def test_a_model_with_backbones_saves_and_loads_to_identical_outputs(tmp_path, backbone):
    if backbone == "clip":
        config = tiny_clip_rdmf_config()
    else:
        width = timm.create_model(TIMM_MODEL, num_classes=0).num_features
        config = tiny_config(video_backbone="timm", timm_model_name=TIMM_MODEL, video_feature_dim=width)
    model = RDMFForMomentRetrieval(config).eval()
    batch = raw_batch()
    inputs = {"pixel_values": batch["pixel_values"], "pixel_mask": batch["pixel_mask"]}
    if backbone == "clip":
        inputs.update(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    else:
        inputs["text_features"] = torch.randn(2, 4, config.text_feature_dim)
    with torch.no_grad():
        expected = model(**inputs)
    model.save_pretrained(tmp_path)
    loaded = RDMFForMomentRetrieval.from_pretrained(tmp_path).eval()
    assert loaded.config.video_backbone == backbone
    assert_same_parameters(model, loaded)  # backbones included, read back from the file: bit for bit
    with torch.no_grad():
        got = loaded(**inputs)
    # another instance: its kernels may round differently (see test_modeling)
    assert_outputs_close(got, expected, OUTPUT_KEYS)


def test_pretrained_backbone_weights_load_from_a_clip_checkpoint_and_a_timm_file(tmp_path):
    clip = CLIPModel(CLIPConfig(**tiny_clip_config()))
    clip.save_pretrained(tmp_path / "clip")
    model = RDMFForMomentRetrieval(tiny_clip_rdmf_config())
    model.rdmf.load_backbone_weights(clip_name_or_path=str(tmp_path / "clip"))
    # exact: weights read back from the saved files
    assert torch.equal(
        model.rdmf.video_backbone.encoder.visual_projection.weight, clip.visual_projection.weight
    )
    assert torch.equal(
        model.rdmf.text_backbone.encoder.embeddings.token_embedding.weight,
        clip.text_model.embeddings.token_embedding.weight,
    )

    reference = timm.create_model(TIMM_MODEL, num_classes=0)
    save_file(reference.state_dict(), tmp_path / "timm.safetensors")
    config = tiny_config(
        video_backbone="timm", timm_model_name=TIMM_MODEL, video_feature_dim=reference.num_features
    )
    model = RDMFForMomentRetrieval(config)
    model.rdmf.load_backbone_weights(timm_checkpoint=tmp_path / "timm.safetensors")
    for name, value in reference.state_dict().items():
        assert torch.equal(model.rdmf.video_backbone.encoder.state_dict()[name], value), name


def test_backbone_config_errors_name_the_field():
    with pytest.raises(
        ValueError, match="video_feature_dim=24 is invalid: expected the CLIP projection_dim 16"
    ):
        tiny_config(video_backbone="clip", clip_config=tiny_clip_config())
    with pytest.raises(
        ValueError, match="text_feature_dim=12 is invalid: expected the CLIP text hidden_size 16"
    ):
        tiny_config(text_backbone="clip", clip_config=tiny_clip_config())
    with pytest.raises(ValueError, match="timm_model_name=None is invalid"):
        tiny_config(video_backbone="timm")
    with pytest.raises(ValueError, match="video_backbone='vit' is invalid"):
        tiny_config(video_backbone="vit")
    with pytest.raises(ValueError, match="timm model 'test_resnet' gives"):
        RDMFForMomentRetrieval(tiny_config(video_backbone="timm", timm_model_name=TIMM_MODEL))


def test_raw_input_errors_name_the_argument():
    features_only = RDMFForMomentRetrieval(tiny_config())
    batch = raw_batch()
    with pytest.raises(ValueError, match="pixel_values: this model has no video backbone"):
        features_only(pixel_values=batch["pixel_values"], text_features=torch.randn(2, 3, 12))
    model = RDMFForMomentRetrieval(tiny_clip_rdmf_config())
    with pytest.raises(ValueError, match="pixel_values: pass either video_features or pixel_values"):
        model(torch.randn(2, 6, 16), pixel_values=batch["pixel_values"], input_ids=batch["input_ids"])
    with pytest.raises(ValueError, match=r"pixel_values: expected \(batch, clips, frames_per_clip"):
        model(pixel_values=batch["pixel_values"][0], input_ids=batch["input_ids"])
    with pytest.raises(ValueError, match=r"pixel_mask: expected shape \(2, 6\)"):
        model(pixel_values=batch["pixel_values"], pixel_mask=torch.ones(2, 5), input_ids=batch["input_ids"])
    with pytest.raises(ValueError, match="input_ids: expected a non-empty"):
        model(pixel_values=batch["pixel_values"], input_ids=torch.zeros(2, 0, dtype=torch.long))
