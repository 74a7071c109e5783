"""The model card: ``model-index`` from the metrics, and its sections, from the checked inputs."""

from __future__ import annotations

import json
from dataclasses import dataclass

from huggingface_hub import ModelCard, ModelCardData

from ..dataset_specs import TASK_NAMES, DatasetSpec
from .checkpoint import (
    Checkpoint,
    dataset_info,
    eval_results_for,
)


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
    sections = [
        _summary_section(inputs, info),
        _results_section(inputs, info),
        _usage_section(inputs),
        _intended_use_section(info),
        _limitations_section(inputs, info),
        _training_section(inputs, info),
        _licence_section(inputs, info),
    ]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")


def _summary_section(inputs: CardInputs, info: DatasetSpec) -> str:
    preset = inputs.checkpoint.preset
    tasks = " and ".join(TASK_NAMES[task].lower() for task in info.tasks)
    text = (
        f"# {inputs.model_name}\n\n"
        f"RDMF (Reaction-Diffusion Multimodal Fusion) trained on {info.pretty_name} for language-guided "
        f"video {tasks}: from a video's pre-extracted clip features and a query's token features it "
        "predicts ranked moments (normalised `(center, width)` spans with scores) and a saliency score per clip."
    )
    heads = inputs.checkpoint.config.get("trained_heads")
    if heads is not None and "moments" not in heads:
        text += (
            f"\n\n**Its moment head was not trained** (`trained_heads: {json.dumps(heads)}` in `config.json`): "
            "use its per-clip saliency (highlight detection); the moments it outputs come from untrained "
            "weights, and `rdmf predict` shows its top clips instead."
        )
    if preset is not None:
        text += f"\n\nPreset `{preset.name}`: {preset.description}"
    return text


def _results_section(inputs: CardInputs, info: DatasetSpec) -> str:
    headline = inputs.raw_metrics.get("brief") or inputs.metrics
    rows = "\n".join(f"| {name} | {value} |" for name, value in headline.items())
    return (
        f"## Results\n\n{info.pretty_name}, split `{inputs.split}`, in percent. Every metric of the "
        "evaluation is in the `model-index` metadata of this card and in `eval_results.json`.\n\n"
        f"| metric | value |\n|---|---|\n{rows}"
    )


def _features_text(checkpoint: Checkpoint) -> str:
    config = checkpoint.config
    widths = (
        f"`video_features` `(batch, clips, {config['video_feature_dim']})` and `text_features` "
        f"`(batch, tokens, {config['text_feature_dim']})`"
    )
    if checkpoint.preset is None:
        return f"Inputs: {widths}, with `video_mask` / `text_mask` (1 = valid)."
    features = checkpoint.preset.features
    streams = " + ".join(f"{name} ({width})" for name, width in features.get("video_streams", {}).items())
    text = ", ".join(f"{name} ({width})" for name, width in features.get("text_stream", {}).items())
    clip = features.get("clip_length")
    clip_text = f"{clip} s clips" if clip else "clips as the dataset defines them"
    return (
        f"Inputs: {widths}, with `video_mask` / `text_mask` (1 = valid). Video: {streams} per clip "
        f"({clip_text}), each stream L2-normalised per clip, then concatenated; text: {text}. "
        f"Feature layout `{features.get('layout')}` (the `transformers_rdmf.data` readers)."
    )


def _usage_section(inputs: CardInputs) -> str:
    repo = inputs.repo_id or inputs.model_name
    return f"""## How to use

Without installing anything beyond `transformers` (the model code ships with this repository):

```python
from transformers import AutoModel

model = AutoModel.from_pretrained("{repo}", trust_remote_code=True).eval()
outputs = model(video_features=video, text_features=text, video_mask=video_mask, text_mask=text_mask)
outputs.pred_spans, outputs.scores, outputs.saliency_logits
```

With `transformers_rdmf` installed (its post-processing turns outputs into seconds):

```python
from transformers_rdmf import AutoModelForMomentRetrieval

model = AutoModelForMomentRetrieval.from_pretrained("{repo}").eval()
```

{_features_text(inputs.checkpoint)}"""


def _intended_use_section(info: DatasetSpec) -> str:
    tasks = " and ".join(TASK_NAMES[task].lower() for task in info.tasks)
    return (
        "## Intended use\n\n"
        f"Research on language-guided video {tasks}, and as a baseline or starting point for "
        f"fine-tuning, on features extracted exactly as for {info.pretty_name} (same extractors, "
        "widths, clip length and normalisation). Not for decisions about people, surveillance, or "
        "any use the training data's licence excludes."
    )


def _limitations_section(inputs: CardInputs, info: DatasetSpec) -> str:
    items = [
        "It sees pre-extracted features only: features from another extractor, clip length or "
        "normalisation are out of distribution even when their width matches.",
        f"It learned from {info.pretty_name} alone: its videos, its query style (English) and its "
        "moment lengths; expect lower scores elsewhere.",
        f"The scores above are on `{inputs.split}`; if the checkpoint was selected on that split "
        "(early stopping on it), they are optimistic.",
    ]
    if inputs.checkpoint.preset is not None and inputs.checkpoint.preset.training.get("per_domain"):
        trained = inputs.checkpoint.training_args
        if trained is not None and trained.get("domain") is None:
            items.append(
                "The published protocol trains one model per category; this checkpoint is one model "
                "trained on every category's train videos at once, so its scores are not those of that "
                "protocol."
            )
        else:
            items.append(
                "The protocol trains one model per category and reports per category: this checkpoint "
                "covers what its training arguments name, not necessarily every category above."
            )
    return "## Limitations\n\n" + "\n".join(f"- {item}" for item in items)


def _training_section(inputs: CardInputs, info: DatasetSpec) -> str:
    command = inputs.training_command
    epoch = f" Checkpoint of epoch {inputs.epoch}." if inputs.epoch is not None else ""
    text = f"## Training\n\nDataset: {info.pretty_name} ({info.source}).{epoch}\n\n" + (
        f"Command:\n\n```bash\n{command}\n```" if command else "Command: not recorded with the checkpoint."
    )
    preset = inputs.checkpoint.preset
    if preset is not None:
        text += f"\n\nPreset `{preset.name}`:\n\n```json\n{json.dumps(preset.to_json(), indent=2)}\n```"
    if inputs.checkpoint.training_args:
        text += (
            "\n\nTraining arguments (`training_args.json`):\n\n"
            f"```json\n{json.dumps(inputs.checkpoint.training_args, indent=2)}\n```"
        )
    return text


def _licence_section(inputs: CardInputs, info: DatasetSpec) -> str:
    return (
        "## Licence of the training data\n\n"
        f"{info.pretty_name}: {info.licence} ({info.source}). The videos and the features extracted "
        f"from them keep their own terms. This card's `license: {inputs.license}` is for the weights; "
        "the model code is the `transformers_rdmf` library's (Apache-2.0)."
    )
