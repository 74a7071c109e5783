"""RDMF model configuration."""

import dataclasses

from huggingface_hub.dataclasses import strict
from transformers import CLIPConfig, PreTrainedConfig

from .presets import list_presets, read_preset

FUSION_TYPES = ("reaction_diffusion", "cross_attention")
DIFFUSION_IMPLEMENTATIONS = ("closed_form", "euler")
REACTION_IMPLEMENTATIONS = ("fused", "euler", "compiled")
SPAN_LOSS_TYPES = ("smooth_l1", "l1")
IOU_LOSS_TARGETS = ("matched", "all")
SALIENCY_RANK_LOSSES = ("pairwise", "listwise")
# What `trained_heads` may list: the saliency head (eq. 12), the moment head's class and span outputs, the
# IoU-confidence head (eq. 13).
HEADS = ("saliency", "moments", "iou")
VIDEO_BACKBONES = (None, "clip", "timm")
TEXT_BACKBONES = (None, "clip")
# With the Turing ordering on, D_v is parametrised as a fraction of D_u of at most this.
TURING_MAX_RATIO = 0.999


@strict
class RDMFConfig(PreTrainedConfig):
    r"""
    Configuration of an RDMF model (Reaction-Diffusion Multimodal Fusion for video moment retrieval and
    highlight detection). Defaults are the paper's settings (rdmf-spec.md); **project choices** are marked.

    Inputs:
        video_feature_dim (`int`, defaults to 2816): width of the pre-extracted clip features
            (CLIP ViT-B/32 512 + SlowFast 2304 for QVHighlights).
        text_feature_dim (`int`, defaults to 512): width of the pre-extracted query token features.
        hidden_size (`int`, defaults to 256): the fusion and decoder width `d`.
        dropout (`float`, defaults to 0.1): dropout after the input projections and in the decoder.
        input_dropout (`float`, optional): dropout after the input projections only, instead of
            ``dropout`` there (QD-DETR and CG-DETR use 0.5 on the projected features); None: ``dropout``.

    Backbones (raw input: ``pixel_values`` and ``input_ids`` instead of features):
        video_backbone (`str`, defaults to None): None (pre-extracted ``video_features`` only), "clip" (CLIP's
            vision tower and projection, one embedding per frame) or "timm" (``timm_model_name``'s pooled
            features). Frame embeddings are averaged over each clip; the result must be ``video_feature_dim`` wide.
        text_backbone (`str`, defaults to None): None (``text_features`` only) or "clip" (CLIP's text tower; its
            token states, ``text_feature_dim`` wide, as Moment-DETR's query features).
        clip_config (`dict`, defaults to None): a `CLIPConfig` as a dict for the CLIP towers; None is CLIP
            ViT-B/32 (``video_feature_dim=512`` = ``projection_dim``, ``text_feature_dim=512``).
        timm_model_name (`str`, defaults to None): any timm image model (built with ``num_classes=0``).
        freeze_backbones (`bool`, defaults to True): the backbones are not trained.
        normalize_backbone_features (`bool`, defaults to True): L2-normalise each clip's and each token's
            backbone features, as the pre-extracted features are before use.

    Temporal diffusion (eqs. 1-3):
        use_temporal_diffusion (`bool`, defaults to True): ablation switch ("w/o temporal diffusion").
        diffusion_steps (`int`, defaults to 10): Euler steps `K`.
        diffusion_coefficient (`float`, defaults to 0.2): initial `D` (learnable, kept in (0, 1/(2 dt))).
        diffusion_dt (`float`, defaults to 1.0): Euler step (**project choice**).
        diffusion_implementation (`str`, defaults to "closed_form"): "closed_form" (one banded
            convolution) or "euler" (the step-by-step reference); same result.

    Reaction-diffusion fusion (eqs. 5-8):
        fusion_type (`str`, defaults to "reaction_diffusion"): or "cross_attention" (ablation "w/o RD":
            clips attend to the query tokens).
        reaction_steps (`int`, defaults to 5): Gray-Scott Euler steps `T_r` (**project choice**).
        reaction_dt (`float`, defaults to 1.0): Euler step (**project choice**).
        reaction_implementation (`str`, defaults to "fused"): how the Gray-Scott steps run: "fused" (both
            species stacked, one Laplacian, in place without autograd), "euler" (the step-by-step
            reference) or "compiled" (the fused steps through `torch.compile`; compiles on first use).
            Same result to float rounding.
        activator_diffusion (`float`, defaults to 0.2): `D_u`. inhibitor_diffusion (defaults to 0.1): `D_v`.
        feed_rate (`float`, defaults to 0.04): `F`. kill_rate (`float`, defaults to 0.06): `k`.
        learnable_reaction_parameters (`bool`, defaults to True): learn `D_u, D_v, F, k`.
        enforce_turing_ordering (`bool`, defaults to True): keep `D_u > D_v` by parametrisation.
        num_attention_heads (`int`, defaults to 8): heads of the decoder and of the cross-attention ablation.

    Moment head (section 3.5):
        num_moment_queries (`int`, defaults to 100), num_decoder_layers (`int`, defaults to 2),
        decoder_ffn_dim (`int`, defaults to 1024), use_iou_head (`bool`, defaults to True, ablation switch),
        score_alpha (`float`, defaults to 0.5): eq. 13 score `p^(1-alpha) * iou^alpha` (**project choice**).
        auxiliary_loss (`bool`, defaults to True): losses on every decoder layer, as DETR.

    Losses (section 3.6, eq. 17 `L = l1 L_sal + l2 L_mr + l3 L_iou`):
        saliency_loss_weight, moment_loss_weight, iou_loss_weight (`float`, default 1.0 each).
        saliency_rank_loss_weight (`float`, defaults to 0.0): weight of a within-video ranking loss on the
            saliency logits added to eq. 17 (**project choice**, off by default; see `saliency_rank_loss`).
        saliency_rank_loss (`str`, "pairwise"): "pairwise" (RankNet over clip pairs, memory ~ clips**2) or
            "listwise" (ListNet, softmax of the targets over ``saliency_rank_temperature`` (0.1)).
        saliency_margin_loss_weight (`float`, 0.0): the margin hinge of Moment-DETR / QD-DETR,
            ``max(0, saliency_margin + z[neg] - z[pos])`` between the clips with the highest and the lowest
            target of each video (``saliency_margin`` 0.2; `loss_rdmf.saliency_margin_loss`).
        saliency_rank_contrastive_weight (`float`, 0.0): CG-DETR's rank-contrastive loss over
            ``saliency_rank_contrastive_levels`` (12) thresholds, temperature
            ``saliency_rank_contrastive_temperature`` (0.5) (`loss_rdmf.saliency_rank_contrastive_loss`).
        saliency_negative_query_weight (`float`, 0.0): QD-DETR's negative pairs: each video with the
            query of the previous one in the batch scores low, ``-log(1 - sigmoid(z))`` per clip; pairs
            whose video or query features are the same are left out (so a domain whose every query is
            one word, as YouTube Highlights, has none) (`loss_rdmf.negative_query_loss`).
        span_loss_coefficient (10.0), giou_loss_coefficient (1.0), class_loss_coefficient (4.0),
        no_object_weight (0.1): the terms inside `L_mr`, as Moment-DETR. use_giou_loss (`bool`, True).
        span_loss_type (`str`, "smooth_l1" or "l1"), smooth_l1_beta (`float`, 0.05).
        matcher_class_cost (4.0), matcher_span_cost (10.0), matcher_giou_cost (1.0): Hungarian costs.
        iou_loss_on (`str`, "matched"): regress predicted IoU on matched queries only, or "all" queries
            (target: best IoU with any ground-truth span).
        initializer_range (`float`, defaults to 0.02).

    Provenance:
        trained_heads (`list[str]`, defaults to None): which heads training fitted, a subset of
            ``("saliency", "moments", "iou")``; ``rdmf-train`` writes it from the loss weights and the labels
            the dataset has (a highlight-only dataset trains no moments). None: not recorded ("unknown", as
            in checkpoints saved before the field existed). Outputs of a checkpoint whose moment head was
            not trained are not moments: ``rdmf predict`` then reports top clips instead.
    """

    model_type = "rdmf"
    _auto_class = "AutoConfig"  # save_pretrained copies this file for trust_remote_code

    video_feature_dim: int = 2816
    text_feature_dim: int = 512
    hidden_size: int = 256
    dropout: float | int = 0.1
    input_dropout: float | int | None = None

    video_backbone: str | None = None
    text_backbone: str | None = None
    clip_config: dict | None = None
    timm_model_name: str | None = None
    freeze_backbones: bool = True
    normalize_backbone_features: bool = True

    use_temporal_diffusion: bool = True
    diffusion_steps: int = 10
    diffusion_coefficient: float | int = 0.2
    diffusion_dt: float | int = 1.0
    diffusion_implementation: str = "closed_form"

    fusion_type: str = "reaction_diffusion"
    reaction_steps: int = 5
    reaction_dt: float | int = 1.0
    reaction_implementation: str = "fused"
    activator_diffusion: float | int = 0.2
    inhibitor_diffusion: float | int = 0.1
    feed_rate: float | int = 0.04
    kill_rate: float | int = 0.06
    learnable_reaction_parameters: bool = True
    enforce_turing_ordering: bool = True
    num_attention_heads: int = 8

    num_moment_queries: int = 100
    num_decoder_layers: int = 2
    decoder_ffn_dim: int = 1024
    use_iou_head: bool = True
    score_alpha: float | int = 0.5
    auxiliary_loss: bool = True

    saliency_loss_weight: float | int = 1.0
    saliency_rank_loss_weight: float | int = 0.0
    saliency_rank_loss: str = "pairwise"
    saliency_rank_temperature: float | int = 0.1
    saliency_margin_loss_weight: float | int = 0.0
    saliency_margin: float | int = 0.2
    saliency_rank_contrastive_weight: float | int = 0.0
    saliency_rank_contrastive_levels: int = 12
    saliency_rank_contrastive_temperature: float | int = 0.5
    saliency_negative_query_weight: float | int = 0.0
    moment_loss_weight: float | int = 1.0
    iou_loss_weight: float | int = 1.0
    span_loss_coefficient: float | int = 10.0
    giou_loss_coefficient: float | int = 1.0
    class_loss_coefficient: float | int = 4.0
    no_object_weight: float | int = 0.1
    use_giou_loss: bool = True
    span_loss_type: str = "smooth_l1"
    smooth_l1_beta: float | int = 0.05
    matcher_class_cost: float | int = 4.0
    matcher_span_cost: float | int = 10.0
    matcher_giou_cost: float | int = 1.0
    iou_loss_on: str = "matched"
    initializer_range: float | int = 0.02

    trained_heads: list[str] | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        # `@strict` would wrap a ValueError from its validators in its own error type: raise it plainly.
        self.validate_architecture()

    def moment_losses_on(self) -> dict[str, bool]:
        """Which parts of the moment head the loss (eq. 17) reaches: ``{"moments": ..., "iou": ...}``."""
        return {
            "moments": self.moment_loss_weight > 0,
            "iou": self.use_iou_head and self.iou_loss_weight > 0,
        }

    def validate_architecture(self):
        """Raise `ValueError` naming the field and its value for any invalid setting."""
        for name in ("video_feature_dim", "text_feature_dim", "hidden_size", "num_attention_heads"):
            _require(getattr(self, name) > 0, name, getattr(self, name), "a positive integer")
        for name in ("num_moment_queries", "num_decoder_layers", "decoder_ffn_dim"):
            _require(getattr(self, name) > 0, name, getattr(self, name), "a positive integer")
        for name in ("diffusion_steps", "reaction_steps"):
            _require(getattr(self, name) >= 0, name, getattr(self, name), "a non-negative integer")
        _require(
            self.hidden_size % self.num_attention_heads == 0,
            "hidden_size",
            self.hidden_size,
            f"a multiple of num_attention_heads={self.num_attention_heads}",
        )
        _require(0 <= self.dropout < 1, "dropout", self.dropout, "in [0, 1)")
        if self.input_dropout is not None:
            _require(0 <= self.input_dropout < 1, "input_dropout", self.input_dropout, "in [0, 1)")
        _require(0 <= self.score_alpha <= 1, "score_alpha", self.score_alpha, "in [0, 1]")
        _require_choice("fusion_type", self.fusion_type, FUSION_TYPES)
        _require_choice("diffusion_implementation", self.diffusion_implementation, DIFFUSION_IMPLEMENTATIONS)
        _require_choice("reaction_implementation", self.reaction_implementation, REACTION_IMPLEMENTATIONS)
        _require_choice("span_loss_type", self.span_loss_type, SPAN_LOSS_TYPES)
        _require_choice("iou_loss_on", self.iou_loss_on, IOU_LOSS_TARGETS)
        self._validate_dynamics()
        self._validate_loss_weights()
        self._validate_trained_heads()
        self._validate_backbones()

    @property
    def moment_head_trained(self) -> bool | None:
        """Whether training fitted the moment head: True, False, or None when not recorded."""
        return None if self.trained_heads is None else "moments" in self.trained_heads

    def _validate_trained_heads(self):
        if self.trained_heads is None:
            return
        _require(
            all(head in HEADS for head in self.trained_heads)
            and len(set(self.trained_heads)) == len(self.trained_heads),
            "trained_heads",
            self.trained_heads,
            f"None or a list of distinct names from {HEADS}",
        )

    def clip_backbone_config(self) -> CLIPConfig:
        """The `CLIPConfig` of the CLIP towers (ViT-B/32 when ``clip_config`` is None)."""
        return CLIPConfig(**self.clip_config) if self.clip_config is not None else CLIPConfig()

    def _validate_backbones(self):
        _require_choice("video_backbone", self.video_backbone, VIDEO_BACKBONES)
        _require_choice("text_backbone", self.text_backbone, TEXT_BACKBONES)
        if self.video_backbone == "timm":
            _require(
                isinstance(self.timm_model_name, str) and bool(self.timm_model_name),
                "timm_model_name",
                self.timm_model_name,
                'a timm model name with video_backbone="timm"',
            )
        if "clip" not in (self.video_backbone, self.text_backbone):
            return
        clip = self.clip_backbone_config()
        if self.video_backbone == "clip":
            _require(
                self.video_feature_dim == clip.projection_dim,
                "video_feature_dim",
                self.video_feature_dim,
                f"the CLIP projection_dim {clip.projection_dim} with video_backbone='clip'",
            )
        if self.text_backbone == "clip":
            _require(
                self.text_feature_dim == clip.text_config.hidden_size,
                "text_feature_dim",
                self.text_feature_dim,
                f"the CLIP text hidden_size {clip.text_config.hidden_size} with text_backbone='clip'",
            )

    def _validate_dynamics(self):
        for name in ("diffusion_dt", "reaction_dt"):
            _require(getattr(self, name) > 0, name, getattr(self, name), "positive")
        rates = (
            "diffusion_coefficient",
            "activator_diffusion",
            "inhibitor_diffusion",
            "feed_rate",
            "kill_rate",
        )
        for name in rates:
            _require(getattr(self, name) > 0, name, getattr(self, name), "positive")
        _require_euler_bound(
            "diffusion_coefficient", self.diffusion_coefficient, "diffusion_dt", self.diffusion_dt
        )
        for name in ("activator_diffusion", "inhibitor_diffusion"):
            _require_euler_bound(name, getattr(self, name), "reaction_dt", self.reaction_dt)
        if (
            self.enforce_turing_ordering
            and self.inhibitor_diffusion >= TURING_MAX_RATIO * self.activator_diffusion
        ):
            raise ValueError(
                f"activator_diffusion={self.activator_diffusion} must exceed inhibitor_diffusion="
                f"{self.inhibitor_diffusion} (by at least {1 - TURING_MAX_RATIO:.1%}) while "
                "enforce_turing_ordering=True (D_u > D_v, section 3.4)."
            )

    def _validate_loss_weights(self):
        names = (
            "saliency_loss_weight",
            "saliency_rank_loss_weight",
            "saliency_margin_loss_weight",
            "saliency_margin",
            "saliency_rank_contrastive_weight",
            "saliency_negative_query_weight",
            "moment_loss_weight",
            "iou_loss_weight",
            "span_loss_coefficient",
            "giou_loss_coefficient",
            "class_loss_coefficient",
            "no_object_weight",
            "matcher_class_cost",
            "matcher_span_cost",
            "matcher_giou_cost",
            "initializer_range",
        )
        for name in names:
            _require(getattr(self, name) >= 0, name, getattr(self, name), "non-negative")
        _require(self.smooth_l1_beta > 0, "smooth_l1_beta", self.smooth_l1_beta, "positive")
        _require_choice("saliency_rank_loss", self.saliency_rank_loss, SALIENCY_RANK_LOSSES)
        _require(
            self.saliency_rank_contrastive_levels >= 1,
            "saliency_rank_contrastive_levels",
            self.saliency_rank_contrastive_levels,
            "a positive integer",
        )
        _require(
            self.saliency_rank_contrastive_temperature > 0,
            "saliency_rank_contrastive_temperature",
            self.saliency_rank_contrastive_temperature,
            "positive",
        )
        _require(
            self.saliency_rank_temperature > 0,
            "saliency_rank_temperature",
            self.saliency_rank_temperature,
            "positive",
        )

    @classmethod
    def from_preset(cls, name_or_path: str, **overrides) -> "RDMFConfig":
        """Build the config of a named preset (`list_presets`) or of a preset JSON path.

        A preset file holds ``{"config": {...}, ...}`` (training arguments and feature layout beside it);
        ``overrides`` replace config fields.

        Raises:
            ValueError: a ``config`` key that is no field of the config (a misspelling is never ignored).
        """
        config = read_preset(name_or_path)["config"]
        check_config_keys(config, f"preset {name_or_path}")
        return cls(**{**config, **overrides})


# Keys save_pretrained writes into config.json that are no config field.
SAVED_KEYS = frozenset(
    {"auto_map", "custom_pipelines", "model_type", "transformers_version", "architectures", "_name_or_path"}
)


def check_config_keys(config: dict, source: str) -> None:
    """Refuse a key of a preset's ``config`` section that is neither an `RDMFConfig` field nor one
    ``save_pretrained`` writes (`SAVED_KEYS`: a config copied from a checkpoint is fine); a misspelling
    would otherwise be stored and ignored. Names ``source``."""
    unknown = sorted(set(config) - {field.name for field in dataclasses.fields(RDMFConfig)} - SAVED_KEYS)
    if unknown:
        raise ValueError(f"{source}: unknown config key(s) {unknown} (not RDMFConfig fields)")


def _require(condition: bool, name: str, value, expected: str) -> None:
    if not condition:
        raise ValueError(f"RDMFConfig.{name}={value!r} is invalid: expected {expected}.")


def _require_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    _require(value in choices, name, value, f"one of {choices}")


def _require_euler_bound(name: str, coeff: float, dt_name: str, dt: float) -> None:
    if dt * coeff > 0.5:
        raise ValueError(
            f"RDMFConfig.{name}={coeff} with {dt_name}={dt} breaks the forward-Euler bound: "
            f"{dt_name} * {name} = {dt * coeff:g} > 1/2 (the diffusion would be unstable)."
        )


__all__ = ["RDMFConfig", "list_presets"]
