"""The backbones that turn a clip's frames (or a query) into features: CLIP's vision and text towers,
torchvision's video Swin, any timm image model."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..modeling_rdmf import average_frame_embeddings
from ..video_processing_rdmf import (
    RDMFVideoProcessor,
    preprocess_frames,
)

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv")
KINETICS_MEAN, KINETICS_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class VideoEncoder:
    """A backbone that turns the sampled frames of clips into one feature row per clip.

    Attributes:
        name: the stream's folder name under the output folder (``clip``, ``swin3d_t``, ``timm_resnet50``).
        backbone: what the manifest records as the architecture (``clip``, ``swin3d_t``, ``timm:resnet50``).
        weights: where the weights came from (a checkpoint name or path, ``random``).
        module: frames ``(n, 3, h, w)`` -> ``(n, dim)``; with ``temporal``, clips ``(n, 3, t, h, w)`` -> ``(n, dim)``.
        feature_dim: the width of a clip's features.
        video_processor: resize, crop and normalisation for this backbone.
        temporal: the module takes each clip's frames together (a video model); otherwise each frame
            goes through alone and a clip's feature is the mean of its frames'.
    """

    name: str
    backbone: str
    weights: str
    module: nn.Module
    feature_dim: int
    video_processor: RDMFVideoProcessor
    temporal: bool = False

    @property
    def preprocessing(self) -> dict:
        processor = self.video_processor
        return {
            "shortest_edge": processor.size.shortest_edge,
            "crop_size": [processor.crop_size.height, processor.crop_size.width],
            "image_mean": [round(float(v), 8) for v in processor.image_mean],
            "image_std": [round(float(v), 8) for v in processor.image_std],
        }

    @torch.no_grad()
    def encode(self, frames: torch.Tensor, frames_per_clip: int) -> torch.Tensor:
        """``(clips * frames_per_clip, 3, H, W)`` uint8, clip-major -> ``(clips, feature_dim)`` float32."""
        device = next(self.module.parameters()).device
        pixels = preprocess_frames(self.video_processor, frames, frames_per_clip).to(device)
        if self.temporal:
            features = self.module(pixels.transpose(1, 2))
        else:
            features = average_frame_embeddings(self.module, pixels.flatten(0, 1), frames_per_clip)
        return features.float().cpu()


def _processor(shortest_edge: int, crop: int, mean, std, resample=None) -> RDMFVideoProcessor:
    extra = {"resample": resample} if resample is not None else {}
    return RDMFVideoProcessor(
        size={"shortest_edge": int(shortest_edge)},
        crop_size={"height": int(crop), "width": int(crop)},
        image_mean=list(mean),
        image_std=list(std),
        **extra,
    )


def clip_image_encoder(
    weights: str | None = "openai/clip-vit-base-patch32", config=None, name: str = "clip"
) -> VideoEncoder:
    """CLIP's vision tower + projection (the frames' image embeddings, ``projection_dim`` wide).

    Args:
        weights: a CLIP checkpoint (hub name or local folder) for ``from_pretrained``.
        config: instead, a `CLIPConfig` (or its dict) for a randomly initialised model (tests).
    """
    from transformers import CLIPConfig, CLIPVisionModelWithProjection

    from ..modeling_rdmf import RDMFClipVideoBackbone, clip_vision_config

    if config is not None:
        clip = config if isinstance(config, CLIPConfig) else CLIPConfig(**config)
        encoder, weights = CLIPVisionModelWithProjection(clip_vision_config(clip)), "random"
    elif weights is not None:
        vision = clip_vision_config(CLIPConfig.from_pretrained(weights))
        encoder = CLIPVisionModelWithProjection.from_pretrained(weights, config=vision)
    else:
        raise ValueError("clip_image_encoder: give weights (a CLIP checkpoint) or a config")
    size = encoder.config.image_size
    processor = _processor(size, size, RDMFVideoProcessor.image_mean, RDMFVideoProcessor.image_std)
    dim = encoder.config.projection_dim
    return VideoEncoder(
        name, "clip", str(weights), RDMFClipVideoBackbone(encoder=encoder).eval(), dim, processor
    )


def swin3d_encoder(
    weights: str | None = "KINETICS400_V1",
    name: str = "swin3d_t",
    image_size: int = 224,
    shortest_edge: int = 256,
    **model_kwargs,
) -> VideoEncoder:
    """torchvision's Video Swin-T (Kinetics-400): a clip's frames together, pooled to 768 features.

    Args:
        weights: a ``Swin3D_T_Weights`` name (``KINETICS400_V1``, fetched by torchvision), a local
            state-dict file, or None for random weights.
        image_size, shortest_edge: the centre crop after resizing the shortest edge (torchvision's
            Kinetics transforms: 224 after 256).
        **model_kwargs: instead, the arguments of ``SwinTransformer3d`` for a smaller random model (tests).
    """
    from torchvision.models.video import Swin3D_T_Weights, swin3d_t
    from torchvision.models.video.swin_transformer import SwinTransformer3d

    if model_kwargs:
        model, weights = SwinTransformer3d(**{"num_classes": 1, **model_kwargs}), "random"
    elif weights is None or Path(str(weights)).is_file():
        model = swin3d_t(weights=None)
        if weights is not None:
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        weights = weights or "random"
    else:
        model = swin3d_t(weights=Swin3D_T_Weights[weights])
    dim = model.head.in_features
    model.head = nn.Identity()
    processor = _processor(shortest_edge, image_size, KINETICS_MEAN, KINETICS_STD)
    return VideoEncoder(name, "swin3d_t", str(weights), model.eval(), dim, processor, temporal=True)


def timm_encoder(model_name: str, pretrained: bool | str = True, name: str | None = None) -> VideoEncoder:
    """Any timm image model by name: pooled features without classifier (``num_features`` wide).

    Args:
        pretrained: True for timm's pretrained weights, a local weights file, or False for random weights.
    """
    import timm

    from ..modeling_rdmf import create_timm_encoder

    model = create_timm_encoder(model_name, pretrained)
    data = timm.data.resolve_data_config(model=model)
    crop = data["input_size"][-1]
    processor = _processor(round(crop / data.get("crop_pct", 1.0)), crop, data["mean"], data["std"])
    if isinstance(pretrained, (str, os.PathLike)):
        weights = str(pretrained)
    else:
        weights = (
            f"timm:{model_name}.{model.pretrained_cfg.get('tag') or 'default'}" if pretrained else "random"
        )
    folder = name or f"timm_{model_name.replace('/', '_')}"
    return VideoEncoder(folder, f"timm:{model_name}", weights, model.eval(), model.num_features, processor)


@dataclass
class TextEncoder:
    """CLIP's text tower and tokenizer: a query -> its token states and pooled (end-of-text) state."""

    backbone: str
    weights: str
    model: nn.Module
    tokenizer: object
    feature_dim: int

    @torch.no_grad()
    def encode(self, queries: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query ``(last_hidden_state (tokens, dim), pooler_output (dim,))``, padding removed."""
        tokens = self.tokenizer(
            list(queries), padding=True, truncation=True, return_tensors="pt", return_token_type_ids=False
        )
        device = next(self.model.parameters()).device
        outputs = self.model(**{k: v.to(device) for k, v in tokens.items()})
        lengths = tokens["attention_mask"].sum(dim=1).tolist()
        states, pooled = outputs.last_hidden_state.float().cpu(), outputs.pooler_output.float().cpu()
        return [(states[i, :n].numpy(), pooled[i].numpy()) for i, n in enumerate(lengths)]


def clip_text_encoder(
    weights: str | None = "openai/clip-vit-base-patch32", config=None, tokenizer=None
) -> TextEncoder:
    """CLIP's text tower (Moment-DETR's query features: ``text_config.hidden_size`` wide).

    Args:
        weights: a CLIP checkpoint (hub name or local folder) holding the model and its tokenizer.
        config, tokenizer: instead, a `CLIPConfig` (or dict) for a random tower and a tokenizer (tests).
    """
    from transformers import AutoTokenizer, CLIPConfig, CLIPTextModel

    if config is not None:
        clip = config if isinstance(config, CLIPConfig) else CLIPConfig(**config)
        model, weights = CLIPTextModel(clip.text_config), "random"
    elif weights is not None:
        model = CLIPTextModel.from_pretrained(weights)
    else:
        raise ValueError("clip_text_encoder: give weights (a CLIP checkpoint) or a config and a tokenizer")
    if tokenizer is None:
        if weights == "random":
            raise ValueError("clip_text_encoder: a random text tower needs a tokenizer")
        tokenizer = AutoTokenizer.from_pretrained(weights)
    return TextEncoder("clip_text", str(weights), model.eval(), tokenizer, model.config.hidden_size)


def build_video_encoder(
    spec: str, *, clip_weights: str, swin_weights: str | None, timm_pretrained
) -> VideoEncoder:
    """``clip``, ``swin3d_t`` or ``timm:MODEL`` -> its encoder (the command line's ``--backbones``)."""
    if spec == "clip":
        return clip_image_encoder(clip_weights)
    if spec == "swin3d_t":
        return swin3d_encoder(swin_weights)
    if spec.startswith("timm:") and len(spec) > 5:
        return timm_encoder(spec[5:], pretrained=timm_pretrained)
    raise ValueError(f"--backbones: unknown backbone {spec!r}; expected clip, swin3d_t or timm:MODEL_NAME")
