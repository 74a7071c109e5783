"""The model card: ``ModelCardData`` (with ``model-index``: every metric) and its text from
``model_card_template.md`` (a Jinja template, rendered by ``ModelCard.from_template``), filled from the
checked inputs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

from ..dataset_specs import TASK_NAMES, DatasetSpec
from .checkpoint import (
    Checkpoint,
    dataset_info,
    eval_results_for,
)

TEMPLATE = Path(__file__).resolve().parent / "model_card_template.md"


@dataclass(frozen=True)
class CardInputs:
    """Everything the model card says, gathered and checked before it is written."""

    model_name: str
    repo_id: str | None
    dataset: str
    split: str
    metrics: dict[str, float]
    raw_metrics: dict
    checkpoint: Checkpoint
    training_command: str | None
    license: str
    epoch: int | None = None


def build_model_card(inputs: CardInputs) -> ModelCard:
    """The ``README.md``: metadata with ``model-index`` (every metric), then the card's text."""
    info = dataset_info(inputs.dataset)
    licence_name = {"license_name": "research-use"} if inputs.license == "other" else {}
    data = ModelCardData(
        model_name=inputs.model_name,
        license=inputs.license,
        library_name="transformers",
        tags=["rdmf", "video-moment-retrieval", "highlight-detection", "custom_code", inputs.dataset],
        eval_results=eval_results_for(inputs.metrics, inputs.dataset, inputs.split),
        **licence_name,
    )
    return ModelCard.from_template(data, template_path=str(TEMPLATE), **card_context(inputs, info))


def card_context(inputs: CardInputs, info: DatasetSpec) -> dict:
    """The values ``model_card_template.md`` fills in."""
    checkpoint, preset = inputs.checkpoint, inputs.checkpoint.preset
    heads = checkpoint.config.get("trained_heads")
    features = preset.features if preset is not None else None
    return {
        "model_name": inputs.model_name,
        "dataset": info.pretty_name,
        "tasks": " and ".join(TASK_NAMES[task].lower() for task in info.tasks),
        "untrained_moments": heads is not None and "moments" not in heads,
        "trained_heads": json.dumps(heads),
        "preset": None
        if preset is None
        else {
            "name": preset.name,
            "description": preset.description,
            "json": json.dumps(preset.to_json(), indent=2),
        },
        "split": inputs.split,
        "headline": list((inputs.raw_metrics.get("brief") or inputs.metrics).items()),
        "repo": inputs.repo_id or inputs.model_name,
        "video_feature_dim": checkpoint.config["video_feature_dim"],
        "raw_video": checkpoint.config.get("video_backbone") is not None,
        "text_feature_dim": checkpoint.config["text_feature_dim"],
        "features": None if features is None else _feature_streams(features),
        "per_category": _per_category(checkpoint),
        "source": info.source,
        "epoch": inputs.epoch,
        "command": inputs.training_command,
        "training_args": json.dumps(checkpoint.training_args, indent=2) if checkpoint.training_args else None,
        "licence": info.licence,
        "license": inputs.license,
    }


def _feature_streams(features: dict) -> dict:
    clip = features.get("clip_length")
    return {
        "streams": " + ".join(
            f"{name} ({width})" for name, width in features.get("video_streams", {}).items()
        ),
        "text": ", ".join(f"{name} ({width})" for name, width in features.get("text_stream", {}).items()),
        "clips": f"{clip} s clips" if clip else "clips as the dataset defines them",
        "layout": features.get("layout"),
    }


def _per_category(checkpoint: Checkpoint) -> str | None:
    """For a per-category protocol: ``"all"`` (one model trained without ``--domain``), ``"named"``
    (trained on what its arguments name), else None."""
    if checkpoint.preset is None or not checkpoint.preset.training.get("per_domain"):
        return None
    trained = checkpoint.training_args
    return "all" if trained is not None and trained.get("domain") is None else "named"
