"""PyTorch RDMF: Reaction-Diffusion Multimodal Fusion for video moment retrieval and highlight detection.

Paper: "Turing Patterns for Multimedia: Reaction-Diffusion Multi-Modal Fusion for Language-Guided Video
Moment Retrieval". Clip features diffuse along time (heat equation, eqs. 1-3), react with the query's
sentence vector through Gray-Scott dynamics (eqs. 5-8), a saliency head scores every clip (eq. 12) and a
DETR-style decoder with an IoU-confidence head returns ranked moments (eq. 13).
"""

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from transformers import (
    CLIPConfig,
    CLIPModel,
    CLIPTextModel,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
    PreTrainedModel,
)
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from .configuration_rdmf import TURING_MAX_RATIO, RDMFConfig
from .loss_rdmf import FOREGROUND, RDMFLoss
from .reaction_diffusion import (
    GRAY_SCOTT_IMPLEMENTATIONS,
    euler_stability_bound,
    temporal_diffusion,
    temporal_diffusion_closed_form,
    tracing,
)


@dataclass
class RDMFModelOutput(ModelOutput):
    """Output of :class:`RDMFModel`.

    Args:
        last_hidden_state: ``(batch, clips, hidden_size)`` fused clip features (zero at padded clips).
        saliency_logits: ``(batch, clips)`` logits of the per-clip saliency ``s_i`` (eq. 12).
        video_mask: ``(batch, clips)`` the mask used (1 = valid clip).
        diffused_features: ``(batch, clips, hidden_size)`` projected clip features after temporal diffusion.
        sentence_embedding: ``(batch, hidden_size)`` the projected sentence vector ``q P_t`` (eq. 4).
        activator: ``(batch, clips, hidden_size)`` ``U`` after ``T_r`` Gray-Scott steps (reaction-diffusion only).
        inhibitor: ``(batch, clips, hidden_size)`` ``V`` after ``T_r`` Gray-Scott steps (reaction-diffusion only).
    """

    last_hidden_state: torch.FloatTensor | None = None
    saliency_logits: torch.FloatTensor | None = None
    video_mask: torch.LongTensor | None = None
    diffused_features: torch.FloatTensor | None = None
    sentence_embedding: torch.FloatTensor | None = None
    activator: torch.FloatTensor | None = None
    inhibitor: torch.FloatTensor | None = None


@dataclass
class RDMFMomentRetrievalOutput(ModelOutput):
    """Output of :class:`RDMFForMomentRetrieval`.

    Args:
        loss: ``()`` the total loss of eq. 17, when ``labels`` are given.
        loss_dict: the terms of the loss (``loss_saliency``, ``loss_moment``, ``loss_span``, ``loss_giou``,
            ``loss_class``, ``loss_iou``), each ``()``, when ``labels`` are given.
        pred_spans: ``(batch, num_moment_queries, 2)`` normalised (center, width) in [0, 1].
        logits: ``(batch, num_moment_queries, 2)`` foreground / background logits.
        pred_ious: ``(batch, num_moment_queries)`` predicted IoU with the ground truth, in [0, 1]
            (``None`` without the IoU head).
        scores: ``(batch, num_moment_queries)`` ranking score of eq. 13, ``p^(1-alpha) * iou^alpha``.
        saliency_logits: ``(batch, clips)`` per-clip saliency logits (eq. 12).
        last_hidden_state: ``(batch, clips, hidden_size)`` fused clip features.
        video_mask: ``(batch, clips)`` the mask used.
        decoder_hidden_states: ``(num_decoder_layers, batch, num_moment_queries, hidden_size)``.

    Beside the fields, the attribute ``trained_heads`` carries the model's ``config.trained_heads`` (None:
    not recorded), so that `post_process_moment_retrieval` can warn when the moment head was never trained.
    It is not a field: tuples and pytrees of the output hold tensors only.
    """

    loss: torch.FloatTensor | None = None
    loss_dict: dict | None = None
    pred_spans: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    pred_ious: torch.FloatTensor | None = None
    scores: torch.FloatTensor | None = None
    saliency_logits: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    video_mask: torch.LongTensor | None = None
    decoder_hidden_states: torch.FloatTensor | None = None


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------


def bounded_parameter(raw: torch.Tensor, upper: float) -> torch.Tensor:
    """``upper * sigmoid(raw)``: keeps a coefficient in ``(0, upper)`` whatever the optimiser does."""
    return upper * torch.sigmoid(raw)


def inverse_bounded(value: float, upper: float) -> float:
    """The ``raw`` for which :func:`bounded_parameter` gives ``value``."""
    ratio = value / upper
    return math.log(ratio / (1 - ratio))


def inverse_softplus(value: float) -> float:
    return value + math.log(-math.expm1(-value))


class RDMFTemporalDiffusion(nn.Module):
    """Heat equation along time (eqs. 1-3) with a learnable coefficient ``D`` in ``(0, 1/(2 dt))``.

    The stability bound holds by construction (``D = bound * sigmoid(raw)``), so no clamp is needed.
    """

    def __init__(self, config: RDMFConfig):
        super().__init__()
        self.steps, self.dt = config.diffusion_steps, config.diffusion_dt
        self.implementation = config.diffusion_implementation
        self.bound = euler_stability_bound(config.diffusion_dt)
        self.raw_coefficient = nn.Parameter(torch.empty(()))

    @property
    def coefficient(self) -> torch.Tensor:
        return bounded_parameter(self.raw_coefficient, self.bound)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(batch, clips, dim)`` -> ``(batch, clips, dim)``."""
        diffuse = (
            temporal_diffusion_closed_form if self.implementation == "closed_form" else temporal_diffusion
        )
        return diffuse(features, mask, self.coefficient, self.dt, self.steps)


class RDMFReactionDiffusionFusion(nn.Module):
    """Gray-Scott fusion of clip features (activator ``U``) with the sentence vector (inhibitor ``V``), eqs. 5-8.

    Concentrations (**project choice**): the projected features are layer-normalised and mapped into
    (0, 1) by a sigmoid before the cubic dynamics; the final ``U`` is projected back and added to the
    normalised features (residual) under a LayerNorm, so the heads see well-scaled features.
    ``D_u > D_v`` is kept by construction when ``enforce_turing_ordering`` is set:
    ``D_v = TURING_MAX_RATIO * D_u * sigmoid(raw)``, strict even where the sigmoid saturates in float32.
    """

    def __init__(self, config: RDMFConfig):
        super().__init__()
        self.config = config
        self.bound = euler_stability_bound(config.reaction_dt)
        self.activator_norm = nn.LayerNorm(config.hidden_size)
        self.inhibitor_norm = nn.LayerNorm(config.hidden_size)
        self.output_projection = nn.Linear(config.hidden_size, config.hidden_size)
        self.output_norm = nn.LayerNorm(config.hidden_size)
        self.raw_activator_diffusion = nn.Parameter(torch.empty(()))
        self.raw_inhibitor_diffusion = nn.Parameter(torch.empty(()))
        self.raw_feed_rate = nn.Parameter(torch.empty(()))
        self.raw_kill_rate = nn.Parameter(torch.empty(()))
        for parameter in self.reaction_parameters():
            parameter.requires_grad_(config.learnable_reaction_parameters)

    def reaction_parameters(self) -> list[nn.Parameter]:
        return [
            self.raw_activator_diffusion,
            self.raw_inhibitor_diffusion,
            self.raw_feed_rate,
            self.raw_kill_rate,
        ]

    def initial_raw_values(self) -> list[float]:
        """Raw values giving the configured ``D_u, D_v, F, k``."""
        cfg = self.config
        raw_d_u = inverse_bounded(cfg.activator_diffusion, self.bound)
        if cfg.enforce_turing_ordering:
            raw_d_v = inverse_bounded(cfg.inhibitor_diffusion, cfg.activator_diffusion * TURING_MAX_RATIO)
        else:
            raw_d_v = inverse_bounded(cfg.inhibitor_diffusion, self.bound)
        return [raw_d_u, raw_d_v, inverse_softplus(cfg.feed_rate), inverse_softplus(cfg.kill_rate)]

    def rates(self) -> dict[str, torch.Tensor]:
        """The current ``D_u, D_v, F, k`` as 0-d tensors."""
        d_u = bounded_parameter(self.raw_activator_diffusion, self.bound)
        upper_v = d_u * TURING_MAX_RATIO if self.config.enforce_turing_ordering else self.bound
        return {
            "d_u": d_u,
            "d_v": bounded_parameter(self.raw_inhibitor_diffusion, upper_v),
            "feed": nn.functional.softplus(self.raw_feed_rate),
            "kill": nn.functional.softplus(self.raw_kill_rate),
        }

    def forward(self, video: torch.Tensor, sentence: torch.Tensor, mask: torch.Tensor):
        """Fuse.

        Args:
            video: ``(batch, clips, hidden)`` diffused, projected clip features ``X~ P_v``.
            sentence: ``(batch, hidden)`` projected sentence vector ``q P_t``.
            mask: ``(batch, clips)``.

        Returns:
            ``(fused, u, v)``, each ``(batch, clips, hidden)``.
        """
        video = self.activator_norm(video)
        u = torch.sigmoid(video)
        v = torch.sigmoid(self.inhibitor_norm(sentence)).unsqueeze(1).expand_as(u)  # V = 1_L (q P_t)^T
        rates = self.rates()
        dynamics = GRAY_SCOTT_IMPLEMENTATIONS[self.config.reaction_implementation]
        u, v = dynamics(u, v, mask, **rates, dt=self.config.reaction_dt, steps=self.config.reaction_steps)
        fused = self.output_norm(video + self.output_projection(u))
        return fused * mask.unsqueeze(-1).to(fused.dtype), u, v


class RDMFAttention(nn.Module):
    """Multi-head attention with ``nn.MultiheadAttention``'s parameters (``in_proj_weight``, ``in_proj_bias``,
    ``out_proj``), so checkpoints load unchanged, and its numbers.

    Unlike ``nn.MultiheadAttention``, which reads ``out_proj.weight`` directly, this calls ``out_proj`` as a
    module: hooks on it run, so a model offloaded to disk (``device_map`` with accelerate) loads its weight.
    """

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(
                f"hidden_size {hidden_size} must be divisible by num_attention_heads {num_heads}"
            )
        self.num_heads, self.dropout = num_heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * hidden_size))
        self.out_proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, query, key, value, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``query`` ``(batch, n, hidden)`` attends to ``key``/``value`` ``(batch, m, hidden)``;
        ``key_padding_mask`` ``(batch, m)`` True where a key is padding. Returns ``(batch, n, hidden)``.

        torch's own ``multi_head_attention_forward`` computes it (the numbers of ``nn.MultiheadAttention``,
        which keep multi-process training equal to one process to 1e-7), with an identity output
        projection (exact: each output is ``1 * x``); ``out_proj`` is then called as a module."""
        hidden = query.shape[-1]
        identity = torch.eye(hidden, dtype=query.dtype, device=query.device)
        attended, _ = F.multi_head_attention_forward(
            query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1), hidden, self.num_heads,
            self.in_proj_weight, self.in_proj_bias, None, None, False, self.dropout, identity, None,
            training=self.training, key_padding_mask=key_padding_mask, need_weights=False,
        )  # fmt: skip
        return self.out_proj(attended.transpose(0, 1))


class RDMFCrossAttentionFusion(nn.Module):
    """The "w/o RD" ablation: clips attend to the query tokens (``O(clips * tokens * hidden)``)."""

    def __init__(self, config: RDMFConfig):
        super().__init__()
        self.attention = RDMFAttention(config.hidden_size, config.num_attention_heads, dropout=config.dropout)
        self.norm = nn.LayerNorm(config.hidden_size)

    def forward(
        self, video: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor, token_mask: torch.Tensor
    ):
        """``video`` ``(batch, clips, hidden)`` attends to ``tokens`` ``(batch, tokens, hidden)``."""
        attended = self.attention(video, tokens, tokens, key_padding_mask=~token_mask.bool())
        fused = self.norm(video + attended)
        return fused * mask.unsqueeze(-1).to(fused.dtype)


def normalized_position_embedding(mask: torch.Tensor, dim: int, max_frequency: float = 64.0) -> torch.Tensor:
    """Sine embedding of each clip's relative position ``p = (i + 0.5) / n_valid`` in its video.

    Spans are predicted relative to the video's duration, so positions are too. Angles are
    ``pi * p * f_j`` with frequencies ``f_j`` geometric from 1 to ``max_frequency``: positions in [0, 1]
    need frequencies above 1 (DETR's ``1 / 10000^(2j/d)`` would leave most channels constant).

    Returns:
        ``(batch, clips, dim)``.
    """
    lengths = mask.sum(dim=1, keepdim=True).clamp(min=1).to(torch.float32)
    positions = (torch.arange(mask.shape[1], device=mask.device, dtype=torch.float32) + 0.5) / lengths
    frequencies = max_frequency ** (torch.arange(dim // 2, device=mask.device, dtype=torch.float32) * 2 / dim)
    angles = math.pi * positions.unsqueeze(-1) * frequencies
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class RDMFMLP(nn.Module):
    """A small MLP with ReLU between layers (DETR's span head)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int):
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = nn.functional.relu(x)
        return x


class RDMFDecoderLayer(GradientCheckpointingLayer):
    """DETR decoder layer (post-norm): self-attention of moment queries, cross-attention to clips, FFN.

    A ``GradientCheckpointingLayer``: after ``model.activation_checkpointing_enable()`` its activations are
    recomputed in the backward pass instead of kept (the same gradients, less memory)."""

    def __init__(self, config: RDMFConfig):
        super().__init__()
        d, heads, p = config.hidden_size, config.num_attention_heads, config.dropout
        self.self_attention = RDMFAttention(d, heads, dropout=p)
        self.cross_attention = RDMFAttention(d, heads, dropout=p)
        self.feed_forward = nn.Sequential(
            nn.Linear(d, config.decoder_ffn_dim),
            nn.ReLU(),
            nn.Dropout(p),
            nn.Linear(config.decoder_ffn_dim, d),
        )
        self.self_attention_norm = nn.LayerNorm(d)
        self.cross_attention_norm = nn.LayerNorm(d)
        self.feed_forward_norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(p)

    def forward(self, queries, query_position, memory, memory_position, memory_padding):
        """``queries`` ``(batch, num_queries, hidden)`` attend to ``memory`` ``(batch, clips, hidden)``."""
        q = queries + query_position
        attended = self.self_attention(q, q, queries)
        queries = self.self_attention_norm(queries + self.dropout(attended))
        located = memory + memory_position  # positions in the values too: a span is read off directly
        attended = self.cross_attention(
            queries + query_position, located, located, key_padding_mask=memory_padding
        )
        queries = self.cross_attention_norm(queries + self.dropout(attended))
        return self.feed_forward_norm(queries + self.dropout(self.feed_forward(queries)))


class RDMFDecoder(nn.Module):
    """Stack of :class:`RDMFDecoderLayer`; returns every layer's normalised output for auxiliary losses."""

    def __init__(self, config: RDMFConfig):
        super().__init__()
        self.layers = nn.ModuleList(RDMFDecoderLayer(config) for _ in range(config.num_decoder_layers))
        self.norm = nn.LayerNorm(config.hidden_size)

    def forward(self, query_position, memory, memory_position, memory_padding) -> torch.Tensor:
        """Returns ``(num_layers, batch, num_queries, hidden)``."""
        queries = torch.zeros_like(query_position)
        states = []
        for layer in self.layers:
            queries = layer(queries, query_position, memory, memory_position, memory_padding)
            states.append(self.norm(queries))
        return torch.stack(states)


# ---------------------------------------------------------------------------------------------
# Backbones (raw input)
# ---------------------------------------------------------------------------------------------


def clip_vision_config(clip: CLIPConfig) -> CLIPVisionConfig:
    """CLIP's vision config with the projection width (a ``CLIPModel`` keeps it on the outer config)."""
    vision = clip.vision_config
    vision.projection_dim = clip.projection_dim
    return vision


class RDMFClipVideoBackbone(nn.Module):
    """CLIP's vision tower and projection: one image embedding per frame (``projection_dim`` wide).

    The model's video backbone, and the tower ``rdmf extract-features`` runs (``encoder``: pretrained
    weights), so extracted features and raw-video inference embed frames with the same code.
    """

    def __init__(
        self, config: RDMFConfig | None = None, encoder: CLIPVisionModelWithProjection | None = None
    ):
        super().__init__()
        if encoder is None:
            encoder = CLIPVisionModelWithProjection(clip_vision_config(config.clip_backbone_config()))
        self.encoder = encoder

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``(frames, 3, height, width)`` -> ``(frames, projection_dim)``."""
        return self.encoder(pixel_values=frames).image_embeds


def create_timm_encoder(model_name: str, pretrained=False) -> nn.Module:
    """A timm image model without classifier (``num_classes=0``: pooled features, ``num_features`` wide).

    Args:
        pretrained: False for random weights, True for timm's pretrained weights, or a local weights file.
    """
    import timm

    overlay = {"file": str(pretrained)} if isinstance(pretrained, str | os.PathLike) else None
    return timm.create_model(
        model_name, pretrained=bool(pretrained), num_classes=0, pretrained_cfg_overlay=overlay
    )


class RDMFTimmVideoBackbone(nn.Module):
    """Any timm image model by name, pooled features without classifier (``num_features`` wide)."""

    def __init__(self, config: RDMFConfig):
        super().__init__()
        self.model_name = config.timm_model_name
        self.encoder = create_timm_encoder(config.timm_model_name)
        if self.encoder.num_features != config.video_feature_dim:
            raise ValueError(
                f"RDMFConfig.video_feature_dim={config.video_feature_dim} is invalid: timm model "
                f"{config.timm_model_name!r} gives {self.encoder.num_features} features per frame."
            )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``(frames, 3, height, width)`` -> ``(frames, num_features)``."""
        return self.encoder(frames)


class RDMFClipTextBackbone(nn.Module):
    """CLIP's text tower: the token states after its final LayerNorm (``text_config.hidden_size`` wide)."""

    def __init__(self, config: RDMFConfig):
        super().__init__()
        self.encoder = CLIPTextModel(config.clip_backbone_config().text_config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``(batch, tokens)`` ids -> ``(batch, tokens, hidden)``."""
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


VIDEO_BACKBONE_CLASSES = {"clip": RDMFClipVideoBackbone, "timm": RDMFTimmVideoBackbone}


def average_frame_embeddings(backbone: nn.Module, frames: torch.Tensor, frames_per_clip: int) -> torch.Tensor:
    """``(clips * frames_per_clip, 3, h, w)`` clip-major -> ``(clips, dim)``: each frame through ``backbone``,
    averaged over its clip's frames (the clip feature of an image backbone)."""
    return backbone(frames).unflatten(0, (-1, frames_per_clip)).mean(dim=1)


def embed_clips(
    backbone: nn.Module, pixel_values: torch.Tensor, clip_mask: torch.Tensor, normalize: bool
) -> torch.Tensor:
    """Per-clip features from frames: each frame through ``backbone``, averaged over the clip's frames.

    Only valid clips run through the backbone; padded clips get zero features.

    Args:
        pixel_values: ``(batch, clips, frames_per_clip, 3, height, width)``.
        clip_mask: ``(batch, clips)`` 1 for valid clips.

    Returns:
        ``(batch, clips, dim)``.
    """
    batch, clips, frames_per_clip = pixel_values.shape[:3]
    valid = clip_mask.bool()
    frames = pixel_values[valid].flatten(0, 1)  # (valid clips * frames_per_clip, 3, h, w)
    embeddings = average_frame_embeddings(backbone, frames, frames_per_clip)
    if normalize:
        embeddings = nn.functional.normalize(embeddings, dim=-1)
    features = embeddings.new_zeros(batch, clips, embeddings.shape[-1])
    features[valid] = embeddings
    return features


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


class RDMFPreTrainedModel(PreTrainedModel):
    """Weight initialisation and the Hugging Face plumbing shared by the RDMF models."""

    config_class = RDMFConfig
    base_model_prefix = "rdmf"
    main_input_name = "video_features"
    _auto_class = "AutoModel"  # save_pretrained copies this file and its imports for trust_remote_code
    _no_split_modules = ["RDMFDecoderLayer"]
    supports_gradient_checkpointing = True  # the decoder layers (GradientCheckpointingLayer)

    @classmethod
    def is_custom_code(cls) -> bool:
        """False: this code initialises through ``transformers.initialization``, which leaves loaded tensors
        alone, so transformers need not guess. Its guess for code outside the library skips modules without
        parameters of their own, such as CLIP's attention, whose init sets its projections: missing backbone
        weights then got normal(0.02) instead of CLIP's own scheme."""
        return False

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, RDMFAttention):
            init.xavier_uniform_(module.in_proj_weight)
            init.zeros_(module.in_proj_bias)
        elif isinstance(module, RDMFTemporalDiffusion):
            init.constant_(
                module.raw_coefficient, inverse_bounded(self.config.diffusion_coefficient, module.bound)
            )
        elif isinstance(module, RDMFReactionDiffusionFusion):
            for parameter, value in zip(module.reaction_parameters(), module.initial_raw_values()):
                init.constant_(parameter, value)


class RDMFModel(RDMFPreTrainedModel):
    """RDMF encoder: projections, temporal diffusion, reaction-diffusion (or cross-attention) fusion, saliency head.

    Takes pre-extracted clip features and query token features, or (with backbones in the config) frames
    and token ids; returns fused clip features and per-clip saliency logits.
    """

    # A checkpoint of the moment head loads into this base model (AutoModel) without a word about the head.
    _keys_to_ignore_on_load_unexpected = [r"^(decoder|query_embeddings|span_head|class_head|iou_head)\."]

    def __init__(self, config: RDMFConfig):
        super().__init__(config)
        self.video_backbone = self.text_backbone = None
        if config.video_backbone is not None:
            self.video_backbone = VIDEO_BACKBONE_CLASSES[config.video_backbone](config)
        if config.text_backbone == "clip":
            self.text_backbone = RDMFClipTextBackbone(config)
        for backbone in (self.video_backbone, self.text_backbone):
            if backbone is not None and config.freeze_backbones:
                backbone.requires_grad_(False)
        self.video_projection = nn.Linear(config.video_feature_dim, config.hidden_size)  # P_v
        self.text_projection = nn.Linear(config.text_feature_dim, config.hidden_size)  # P_t
        # on the projected features; QD-DETR / CG-DETR use 0.5 there (config.input_dropout)
        self.dropout = nn.Dropout(config.dropout if config.input_dropout is None else config.input_dropout)
        self.temporal_diffusion = RDMFTemporalDiffusion(config) if config.use_temporal_diffusion else None
        if config.fusion_type == "reaction_diffusion":
            self.fusion = RDMFReactionDiffusionFusion(config)
        else:
            self.fusion = RDMFCrossAttentionFusion(config)
        self.saliency_head = nn.Linear(config.hidden_size, 1)  # eq. 12
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        video_features: torch.FloatTensor | None = None,
        text_features: torch.FloatTensor | None = None,
        video_mask: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        pixel_mask: torch.Tensor | None = None,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        durations: torch.Tensor | None = None,
        clip_sampling: list | None = None,
    ) -> RDMFModelOutput:
        """Encode and fuse.

        Args:
            video_features: ``(batch, clips, video_feature_dim)`` pre-extracted clip features.
            text_features: ``(batch, tokens, text_feature_dim)`` query token features.
            video_mask: ``(batch, clips)`` 1 for valid clips, which come first in each row; all ones if None.
            text_mask: ``(batch, tokens)`` 1 for valid tokens; all ones if None.
            pixel_values: ``(batch, clips, frames_per_clip, 3, height, width)`` instead of ``video_features``
                (needs ``config.video_backbone``); ``pixel_mask`` ``(batch, clips)`` is then the clip mask.
            input_ids: ``(batch, tokens)`` instead of ``text_features`` (needs ``config.text_backbone``);
                ``attention_mask`` ``(batch, tokens)`` is then the token mask.
            durations, clip_sampling: what the processor returns beside the tensors (for post-processing),
                accepted so that ``model(**processor(...))`` works; not used here. Any other keyword (a
                misspelt ``vide_mask``) is a ``TypeError`` naming it.
        """
        if pixel_values is not None:
            video_features, video_mask = self.embed_video(pixel_values, pixel_mask, video_features)
        if input_ids is not None:
            text_features, text_mask = self.embed_text(input_ids, attention_mask, text_features)
        video_mask, text_mask = self._check_inputs(video_features, text_features, video_mask, text_mask)
        valid = video_mask.unsqueeze(-1).to(video_features.dtype)
        # Diffusion with a scalar D commutes with the affine projection (it preserves constants), so
        # diffusing after P_v equals eq. 3 on the raw features, at hidden_size instead of the input width.
        video = self.video_projection(video_features) * valid
        if self.temporal_diffusion is not None:
            video = self.temporal_diffusion(video, video_mask)
        video = self.dropout(video)
        tokens = self.dropout(self.text_projection(text_features))
        sentence = masked_mean(tokens, text_mask)  # eq. 4 (then P_t, which commutes with the mean)

        activator = inhibitor = None
        if isinstance(self.fusion, RDMFReactionDiffusionFusion):
            fused, activator, inhibitor = self.fusion(video, sentence, video_mask)
        else:
            fused = self.fusion(video, tokens, video_mask, text_mask)
        saliency_logits = self.saliency_head(fused).squeeze(-1)
        saliency_logits = saliency_logits.masked_fill(
            ~video_mask.bool(), torch.finfo(saliency_logits.dtype).min
        )
        return RDMFModelOutput(
            last_hidden_state=fused,
            saliency_logits=saliency_logits,
            video_mask=video_mask,
            diffused_features=video,
            sentence_embedding=sentence,
            activator=activator,
            inhibitor=inhibitor,
        )

    def load_backbone_weights(
        self, clip_name_or_path: str | None = None, timm_checkpoint: str | bool = False
    ):
        """Load pretrained backbone weights into a fresh model (a saved RDMF checkpoint already holds them).

        Args:
            clip_name_or_path: a CLIP checkpoint (`CLIPModel.from_pretrained`) for the CLIP towers.
            timm_checkpoint: True for timm's pretrained weights of ``timm_model_name``, or a local weights file.
        """
        if clip_name_or_path is not None:
            clip = CLIPModel.from_pretrained(clip_name_or_path)
            if isinstance(self.video_backbone, RDMFClipVideoBackbone):
                self.video_backbone.encoder.vision_model.load_state_dict(clip.vision_model.state_dict())
                self.video_backbone.encoder.visual_projection.load_state_dict(
                    clip.visual_projection.state_dict()
                )
            if self.text_backbone is not None:
                self.text_backbone.encoder.load_state_dict(clip.text_model.state_dict())
        if timm_checkpoint and isinstance(self.video_backbone, RDMFTimmVideoBackbone):
            pretrained = create_timm_encoder(self.config.timm_model_name, pretrained=timm_checkpoint)
            self.video_backbone.encoder.load_state_dict(pretrained.state_dict())

    def embed_video(self, pixel_values, pixel_mask, video_features):
        """Clip features ``(batch, clips, video_feature_dim)`` from frames, and the clip mask."""
        if video_features is not None:
            raise ValueError("pixel_values: pass either video_features or pixel_values, not both.")
        if self.video_backbone is None:
            raise ValueError(
                "pixel_values: this model has no video backbone (config.video_backbone=None); pass video_features."
            )
        if not isinstance(pixel_values, torch.Tensor) or pixel_values.dim() != 6:
            shape = (
                tuple(pixel_values.shape) if isinstance(pixel_values, torch.Tensor) else type(pixel_values)
            )
            raise ValueError(
                f"pixel_values: expected (batch, clips, frames_per_clip, 3, height, width), got {shape}."
            )
        pixel_mask = _check_mask("pixel_mask", pixel_mask, pixel_values, prefix=True)
        features = embed_clips(
            self.video_backbone, pixel_values, pixel_mask, self.config.normalize_backbone_features
        )
        return features, pixel_mask

    def embed_text(self, input_ids, attention_mask, text_features):
        """Token features ``(batch, tokens, text_feature_dim)`` from token ids, and the token mask."""
        if text_features is not None:
            raise ValueError("input_ids: pass either text_features or input_ids, not both.")
        if self.text_backbone is None:
            raise ValueError(
                "input_ids: this model has no text backbone (config.text_backbone=None); pass text_features."
            )
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.shape[1] == 0:
            shape = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids)
            raise ValueError(f"input_ids: expected a non-empty (batch, tokens) tensor, got {shape}.")
        attention_mask = _check_mask("attention_mask", attention_mask, input_ids, prefix=False)
        features = self.text_backbone(input_ids, attention_mask)
        if self.config.normalize_backbone_features:
            features = nn.functional.normalize(features, dim=-1)
        return features, attention_mask

    def _check_inputs(self, video_features, text_features, video_mask, text_mask):
        """Validate shapes, widths, masks and values; return the masks (long)."""
        cfg = self.config
        if video_features is None or text_features is None:
            raise ValueError(
                "inputs: pass video_features (or pixel_values) and text_features (or input_ids)."
            )
        _check_features("video_features", video_features, cfg.video_feature_dim, "video_feature_dim", "clips")
        _check_features("text_features", text_features, cfg.text_feature_dim, "text_feature_dim", "tokens")
        if video_features.shape[0] != text_features.shape[0]:
            raise ValueError(
                f"video_features has batch size {video_features.shape[0]} but text_features has {text_features.shape[0]}."
            )
        video_mask = _check_mask("video_mask", video_mask, video_features, prefix=True)
        text_mask = _check_mask("text_mask", text_mask, text_features, prefix=False)
        return video_mask, text_mask


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over valid positions: ``(batch, n, dim)``, ``(batch, n)`` -> ``(batch, dim)``."""
    weights = mask.to(x.dtype).unsqueeze(-1)
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


def all_finite(x: torch.Tensor) -> bool:
    """Whether every entry is finite, in one reduction: a NaN or infinity makes the sum non-finite.

    A finite sum proves the check (17x faster than ``isfinite(x).all()`` on 18,000 x 2,816 floats); only a
    non-finite sum, which finite values can also give by overflowing, pays for the element-wise test.
    """
    return bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all())


def _check_features(name: str, features, width: int, width_field: str, axis: str) -> None:
    if not isinstance(features, torch.Tensor) or features.dim() != 3:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ValueError(f"{name}: expected a tensor (batch, {axis}, {width}), got {shape}.")
    if features.shape[1] == 0:
        raise ValueError(f"{name}: has zero {axis} (shape {tuple(features.shape)}); at least one is needed.")
    if features.shape[2] != width:
        raise ValueError(
            f"{name}: expected feature width {width} (config.{width_field}), got {features.shape[2]} "
            f"(shape {tuple(features.shape)})."
        )
    if not tracing() and not all_finite(features):
        bad = (~torch.isfinite(features)).nonzero()[0].tolist()
        raise ValueError(f"{name}: contains NaN or infinite values (first at index {bad}).")


def _check_mask(name: str, mask, features: torch.Tensor, prefix: bool) -> torch.Tensor:
    batch, length = features.shape[:2]
    if mask is None:
        return torch.ones(batch, length, dtype=torch.long, device=features.device)
    if tuple(mask.shape) != (batch, length):
        raise ValueError(
            f"{name}: expected shape ({batch}, {length}) to match the features, got {tuple(mask.shape)}."
        )
    mask = mask.to(device=features.device).long()
    if tracing():
        return mask
    empty = (mask.sum(dim=1) == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"{name}: rows {empty} have no valid entry (all-zero mask).")
    if prefix:
        lengths = mask.sum(dim=1, keepdim=True)
        if not torch.equal(mask.bool(), torch.arange(length, device=mask.device) < lengths):
            raise ValueError(f"{name}: valid clips must come first in each row (padding only at the end).")
    return mask


class RDMFForMomentRetrieval(RDMFPreTrainedModel):
    """RDMF with the DETR-style moment head (section 3.5) and the loss of eq. 17.

    ``num_moment_queries`` learned queries decode against the fused clip features; each predicts a span
    (center, width) relative to the video's duration, a foreground logit and (optionally) its IoU with
    the ground truth. Their ranking score is eq. 13.
    """

    _auto_class = "AutoModelForMomentRetrieval"  # save_pretrained puts the head here in auto_map

    def __init__(self, config: RDMFConfig):
        super().__init__(config)
        d = config.hidden_size
        self.rdmf = RDMFModel(config)
        self.query_embeddings = nn.Embedding(config.num_moment_queries, d)
        self.decoder = RDMFDecoder(config)
        self.span_head = RDMFMLP(d, d, 2, num_layers=3)
        self.class_head = nn.Linear(d, 2)
        self.iou_head = RDMFMLP(d, d, 1, num_layers=2) if config.use_iou_head else None
        self.criterion = RDMFLoss(config)
        self.post_init()

    def save_pretrained(self, save_directory, *args, **kwargs):
        """``save_pretrained``, with what ``trust_remote_code`` needs where this package is not installed:
        ``auto_map`` (``AutoModel``: the base `RDMFModel`, as transformers' models; the head under
        ``AutoModelForMomentRetrieval``) and the ``video-moment-retrieval`` pipeline with its files."""
        auto_map = dict(getattr(self.config, "auto_map", None) or {})
        auto_map["AutoModel"] = "modeling_rdmf.RDMFModel"
        self.config.auto_map = auto_map
        self.config.custom_pipelines = {PIPELINE_TASK: PIPELINE_ENTRY}
        result = super().save_pretrained(save_directory, *args, **kwargs)
        _copy_pipeline_files(save_directory)
        return result

    @property
    def moment_loss_on(self) -> bool:
        """Whether the loss reaches the decoder: ``moment_loss_weight`` or, with the IoU head, ``iou_loss_weight`` > 0."""
        return any(self.config.moment_losses_on().values())

    def decoder_needs_grad(self, labels) -> bool:
        """Autograd through the decoder: without labels (a caller may differentiate the moments) or when the
        loss reaches it. A highlight-only loss (TVSum, YouTube Highlights) gave it zero gradients."""
        return labels is None or self.moment_loss_on

    def predict_heads(self, hidden: torch.Tensor):
        """Decoder states ``(..., num_queries, hidden)`` -> spans ``(..., 2)``, logits ``(..., 2)``, IoUs or None."""
        spans = self.span_head(hidden).sigmoid()
        logits = self.class_head(hidden)
        ious = self.iou_head(hidden).squeeze(-1).sigmoid() if self.iou_head is not None else None
        return spans, logits, ious

    def ranking_scores(self, logits: torch.Tensor, ious: torch.Tensor | None) -> torch.Tensor:
        """Eq. 13: ``p^(1-alpha) * iou^alpha`` with ``p`` the foreground probability (``p`` without the IoU head)."""
        probability = logits.softmax(-1)[..., FOREGROUND]
        if ious is None:
            return probability
        alpha = self.config.score_alpha
        return probability.pow(1 - alpha) * ious.clamp(min=0, max=1).pow(alpha)

    def negative_query_saliency(
        self, video_features, text_features, video_mask, text_mask, pixel_values, pixel_mask, input_ids,
        attention_mask,
    ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """Saliency logits of each video with the previous video's query (the batch rolled by one), and which
        rows are real negatives: both the video and the query differ from the row's own (QD-DETR's
        negative pairs). Returns ``(logits (batch, clips), pairs (batch,) bool)``."""

        def rolled(tensor):
            return None if tensor is None else tensor.roll(1, dims=0)

        text = text_features if input_ids is None else input_ids
        videos = video_features if pixel_values is None else pixel_values
        pairs = torch.tensor(
            [
                not (_same(videos[i], videos[i - 1]) or _same(text[i], text[i - 1]))
                for i in range(videos.shape[0])
            ],
            device=videos.device,
        )
        encoded = self.rdmf(
            video_features, rolled(text_features), video_mask, rolled(text_mask),
            pixel_values=pixel_values, pixel_mask=pixel_mask, input_ids=rolled(input_ids),
            attention_mask=rolled(attention_mask), return_dict=True,
        )  # fmt: skip
        return encoded.saliency_logits, pairs & (videos.shape[0] > 1)

    @can_return_tuple
    def forward(
        self,
        video_features: torch.FloatTensor | None = None,
        text_features: torch.FloatTensor | None = None,
        video_mask: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        labels: list[dict[str, torch.Tensor]] | None = None,
        pixel_values: torch.FloatTensor | None = None,
        pixel_mask: torch.Tensor | None = None,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        durations: torch.Tensor | None = None,
        clip_sampling: list | None = None,
    ) -> RDMFMomentRetrievalOutput:
        """Predict moments and saliency; with ``labels``, also the loss.

        Args:
            video_features, text_features, video_mask, text_mask: as :meth:`RDMFModel.forward`.
            labels: one dict per video: ``spans`` ``(n_i, 2)`` normalised (center, width) ground-truth
                windows (``n_i`` may be 0) and ``saliency`` ``(clips,)`` targets in [0, 1].
            pixel_values, pixel_mask, input_ids, attention_mask: raw input instead of features, as
                :meth:`RDMFModel.forward`; the same fusion and heads follow.
            durations, clip_sampling: the processor's other outputs, accepted and not used, as
                :meth:`RDMFModel.forward` (any other keyword is a ``TypeError`` naming it).
        """
        encoded = self.rdmf(
            video_features,
            text_features,
            video_mask,
            text_mask,
            pixel_values=pixel_values,
            pixel_mask=pixel_mask,
            input_ids=input_ids,
            attention_mask=attention_mask,
            return_dict=True,  # this forward reads its fields, whatever config.return_dict says
        )
        memory, mask = encoded.last_hidden_state, encoded.video_mask
        batch = memory.shape[0]
        # through the module's forward (not .weight), so that offloading hooks load the weight first
        query_ids = torch.arange(self.config.num_moment_queries, device=memory.device)
        query_position = self.query_embeddings(query_ids).unsqueeze(0).expand(batch, -1, -1)
        memory_position = normalized_position_embedding(mask, memory.shape[-1]).to(memory.dtype)
        # A highlight-only loss (moment and IoU weights 0) gives the decoder zero gradients: run it without
        # autograd. The same dropout draws keep the random stream, so the saliency path trains as before.
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.decoder_needs_grad(labels)):
            states = self.decoder(query_position, memory, memory_position, ~mask.bool())
        spans, logits, ious = self.predict_heads(states)  # each with a leading (num_layers,) axis

        loss = loss_dict = None
        if labels is not None:
            layers = range(len(states) - 1, -1, -1) if self.config.auxiliary_loss else [len(states) - 1]
            per_layer = [(logits[i], spans[i], None if ious is None else ious[i]) for i in layers]
            negative = None
            if self.config.saliency_negative_query_weight > 0:
                negative = self.negative_query_saliency(
                    video_features, text_features, video_mask, text_mask, pixel_values, pixel_mask,
                    input_ids, attention_mask,
                )  # fmt: skip
            loss, loss_dict = self.criterion(per_layer, encoded.saliency_logits, mask, labels, negative)

        final_ious = None if ious is None else ious[-1]
        output = RDMFMomentRetrievalOutput(
            loss=loss,
            loss_dict=loss_dict,
            pred_spans=spans[-1],
            logits=logits[-1],
            pred_ious=final_ious,
            scores=self.ranking_scores(logits[-1], final_ious),
            saliency_logits=encoded.saliency_logits,
            last_hidden_state=memory,
            video_mask=mask,
            decoder_hidden_states=states,
        )
        output.trained_heads = self.config.trained_heads
        return output


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two padded rows hold the same values (a video or query paired with itself)."""
    return a.shape == b.shape and bool(torch.equal(a, b))


# The pipeline a saved checkpoint carries (config.custom_pipelines): transformers.pipeline reads it with
# trust_remote_code, loads the model through AutoModel and the pipeline class from pipeline_rdmf.py.
PIPELINE_TASK = "video-moment-retrieval"
PIPELINE_ENTRY = {
    "impl": "pipeline_rdmf.VideoMomentRetrievalPipeline",
    "pt": ["AutoModel"],
    "type": "multimodal",
}


def _copy_pipeline_files(save_directory) -> None:
    """Copy pipeline_rdmf.py and the files it imports beside the model's (when this copy of the code has it)."""
    import shutil

    from transformers.dynamic_module_utils import get_relative_import_files

    source = Path(__file__).with_name("pipeline_rdmf.py")
    if not source.is_file():
        return
    for path in [source, *map(Path, get_relative_import_files(str(source)))]:
        target = Path(save_directory) / path.name
        if not target.exists():
            shutil.copy(path, target)


__all__ = [
    "RDMFForMomentRetrieval",
    "RDMFModel",
    "RDMFModelOutput",
    "RDMFMomentRetrievalOutput",
    "RDMFPreTrainedModel",
]
