"""Publish a trained RDMF checkpoint as a Hub repository folder, and push it.

`publish_checkpoint` turns what ``save_pretrained`` wrote (plus, optionally, ``preset.json``,
``training_args.json`` and processor files beside it) and the metrics JSON of its evaluation into a
folder ready for ``upload_folder``: ``model.safetensors``, ``config.json`` with its ``auto_map``, the
modeling files ``trust_remote_code`` needs, processor files, ``eval_results.json`` and a model card
whose ``model-index`` holds every metric of the evaluation. Every input is checked before anything
is written. `push_folder` uploads the folder.

This module is not imported by the model code, so Hub repositories never depend on it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id

from .atomic import atomic_folder
from .configuration_rdmf import RDMFConfig
from .dataset_specs import DATASETS as ALL_DATASETS
from .dataset_specs import HIGHLIGHT_DETECTION, MOMENT_RETRIEVAL, DatasetSpec
from .presets import preset_name, read_preset

TASK_NAMES = {MOMENT_RETRIEVAL: "Moment Retrieval", HIGHLIGHT_DETECTION: "Highlight Detection"}

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
PROCESSOR_FILE_PATTERNS = (
    "*processor_config.json",
    "tokenizer*",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.*",
    "merges.txt",
    "*.model",
    "processing_*.py",
    "video_processing_*.py",
    "tokenization_*.py",
)
ARCHITECTURES = ("RDMFForMomentRetrieval", "RDMFModel")
# Training arguments that describe how a run was continued, not what it was.
NOT_REPLAYED = ("resume_from_checkpoint", "disable_progress_bar")


class PublishError(ValueError):
    """An input that cannot be published: the message names the file and what is wrong."""


# The training loop's best/metrics.json adds these beside the metrics.
BOOKKEEPING_KEYS = ("epoch", "dataset")
# The datasets a model card can describe (`dataset_specs.DatasetSpec.publishable`).
DATASETS: dict[str, DatasetSpec] = {name: spec for name, spec in ALL_DATASETS.items() if spec.publishable}


@dataclass(frozen=True)
class Preset:
    """A named preset: ``hub_configs/<name>.json`` or a checkpoint's ``preset.json``."""

    name: str
    description: str
    config: dict
    features: dict
    training: dict

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "config": self.config,
            "features": self.features,
            "training": self.training,
        }


def load_preset(name_or_path: str | Path) -> Preset:
    """Read a preset by name (`list_presets`) or from a JSON path."""
    try:
        data = read_preset(name_or_path)
    except ValueError as error:
        raise PublishError(str(error)) from None
    missing = [key for key in ("config", "features", "training") if not isinstance(data.get(key), dict)]
    if missing:
        raise PublishError(f"{name_or_path}: preset without {', '.join(missing)} (each a JSON object)")
    return Preset(
        preset_name(name_or_path, data),
        data.get("description", ""),
        data["config"],
        data["features"],
        data["training"],
    )


def _read_json(path: Path, what: str):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise PublishError(f"{what} file not found: {path}") from None
    except json.JSONDecodeError as error:
        raise PublishError(f"{path}: not valid JSON ({error})") from None


def flatten_metrics(metrics: Mapping, source: str = "metrics", prefix: str = "") -> dict[str, float]:
    """Every number of a nested metrics dict, keyed by its path (``"full/MR-mAP/0.5"``).

    Raises:
        PublishError: for a null, non-numeric or non-finite value, or an empty group.
    """
    if not metrics:
        raise PublishError(f"{source}: {prefix.rstrip('/') or 'the file'} holds no metrics")
    flat = {}
    for key, value in metrics.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, source, f"{path}/"))
        elif value is None:
            raise PublishError(f"{source}: {path!r} has no value (null); every metric must be a number")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise PublishError(
                f"{source}: {path!r} is {value!r} ({type(value).__name__}); every metric must be a number"
            )
        elif not math.isfinite(value):
            raise PublishError(f"{source}: {path!r} is {value}; every metric must be finite")
        else:
            flat[path] = value
    return flat


def dataset_info(dataset: str | None) -> DatasetSpec:
    """The `DatasetSpec` of a dataset name, or a `PublishError` listing the known ones."""
    if dataset is None:
        raise PublishError(
            f"no training dataset: neither the preset nor training_args.json names one; pass --dataset "
            f"(one of {', '.join(DATASETS)})"
        )
    if dataset not in DATASETS:
        raise PublishError(
            f"unknown dataset {dataset!r}: a model card needs one of {', '.join(DATASETS)} "
            "(pass --dataset when the preset does not name one)"
        )
    return DATASETS[dataset]


def read_metrics_file(path: str | Path) -> tuple[dict, dict]:
    """A metrics JSON split into its metrics and its bookkeeping (`BOOKKEEPING_KEYS`, e.g. the epoch)."""
    metrics = _read_json(Path(path), "metrics")
    if not isinstance(metrics, dict):
        raise PublishError(f"{path}: expected a JSON object of metrics, got {type(metrics).__name__}")
    bookkeeping = {key: metrics.pop(key) for key in BOOKKEEPING_KEYS if key in metrics}
    return metrics, bookkeeping


def check_metrics(metrics: dict, dataset: str, source: str) -> None:
    """Every key ``dataset``'s evaluation writes is there, and every value is a finite number."""
    required = dataset_info(dataset).required_metrics
    groups = [(group,) if isinstance(group, str) else group for group in required]
    missing = [" or ".join(map(repr, group)) for group in groups if not any(key in metrics for key in group)]
    if missing:
        raise PublishError(
            f"{source}: missing {', '.join(missing)}, which a {dataset} evaluation writes "
            f"(found: {', '.join(metrics) or 'nothing'})"
        )
    flatten_metrics(metrics, source)


def metric_task(dataset: str, metric: str) -> str:
    """The task a metric scores: QVHighlights mixes both (``HL-*`` keys are highlight detection)."""
    tasks = dataset_info(dataset).tasks
    if len(tasks) == 1:
        return tasks[0]
    return (
        HIGHLIGHT_DETECTION if any(part.startswith("HL-") for part in metric.split("/")) else MOMENT_RETRIEVAL
    )


def eval_results_for(metrics: Mapping[str, float], dataset: str, split: str) -> list[EvalResult]:
    """One `EvalResult` per flattened metric; ``metric_type`` is the metric's path in the JSON."""
    info = dataset_info(dataset)
    return [
        EvalResult(
            task_type=metric_task(dataset, metric),
            task_name=TASK_NAMES[metric_task(dataset, metric)],
            dataset_type=dataset,
            dataset_name=info.pretty_name,
            dataset_split=split,
            metric_type=metric,
            metric_name=metric.replace("/", " "),
            metric_value=value,
        )
        for metric, value in metrics.items()
    ]


def metrics_from_eval_results(eval_results: list[EvalResult]) -> dict[str, float]:
    """The inverse of `eval_results_for`: ``{metric path: value}``."""
    return {result.metric_type: result.metric_value for result in eval_results}


@dataclass
class Checkpoint:
    """A checked checkpoint folder: its config, its optional preset and training arguments."""

    folder: Path
    config: dict
    preset: Preset | None
    training_args: dict | None

    @property
    def architecture(self) -> str:
        return (self.config.get("architectures") or ["RDMFForMomentRetrieval"])[0]


def read_checkpoint(folder: str | Path, preset: str | Path | None = None) -> Checkpoint:
    """Check a ``save_pretrained`` folder (config and weights present) and read what lies beside them.

    ``preset`` (a name or path) replaces the folder's own ``preset.json``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PublishError(f"checkpoint folder not found: {folder}")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise PublishError(
            f"{folder}: no weights ({' or '.join(WEIGHT_FILES)}); is this a checkpoint folder?"
        )
    config = _read_json(folder / "config.json", "config")
    if config.get("model_type") != RDMFConfig.model_type:
        raise PublishError(
            f"{folder / 'config.json'}: model_type {config.get('model_type')!r}, expected 'rdmf'"
        )
    if preset is None and (folder / "preset.json").is_file():
        preset = folder / "preset.json"
    training_args = (
        _read_json(folder / "training_args.json", "training arguments")
        if (folder / "training_args.json").is_file()
        else None
    )
    loaded = load_preset(preset) if preset else None
    if loaded is not None and loaded.name == "custom" and (training_args or {}).get("preset"):
        # the training loop copies the preset file, whose name is in its arguments
        loaded = dataclasses.replace(loaded, name=Path(str(training_args["preset"])).stem)
    checkpoint = Checkpoint(folder, config, loaded, training_args)
    if checkpoint.architecture not in ARCHITECTURES:
        raise PublishError(
            f"{folder}: architecture {checkpoint.architecture!r} is not one of {ARCHITECTURES}"
        )
    _check_preset_widths(checkpoint)
    return checkpoint


def _check_preset_widths(checkpoint: Checkpoint) -> None:
    if checkpoint.preset is None:
        return
    for name in ("video_feature_dim", "text_feature_dim"):
        expected = checkpoint.preset.config.get(name)
        if expected is not None and checkpoint.config.get(name) != expected:
            raise PublishError(
                f"{checkpoint.folder}: {name}={checkpoint.config.get(name)} but preset "
                f"{checkpoint.preset.name!r} has {expected}: the card would document the wrong features"
            )


def load_checked_model(checkpoint: Checkpoint):
    """Load the checkpoint's model; every weight must match a parameter (none missing or unexpected)."""
    from .modeling_rdmf import RDMFForMomentRetrieval, RDMFModel

    model_class = RDMFModel if checkpoint.architecture == "RDMFModel" else RDMFForMomentRetrieval
    try:
        model, info = model_class.from_pretrained(checkpoint.folder, output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as error:
        raise PublishError(f"{checkpoint.folder}: the checkpoint does not load: {error}") from error
    problems = {key: info.get(key) for key in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    problems = {key: sorted(map(str, value)) for key, value in problems.items() if value}
    if problems:
        raise PublishError(f"{checkpoint.folder}: weights do not match {model_class.__name__}: {problems}")
    return model


def training_command_of(checkpoint: Checkpoint, explicit: str | None) -> str | None:
    """The command that trained the checkpoint.

    In order: ``explicit``; ``training_args.json``'s ``command`` (a string or an argv list); else the
    ``rdmf-train`` command that gives the same arguments, rebuilt from ``training_args.json`` as the
    training loop writes it (every field explicit, so the preset's defaults cannot change it).
    """
    if explicit:
        return explicit
    args = checkpoint.training_args or {}
    command = args.get("command")
    if isinstance(command, list):
        return shlex.join(map(str, command))
    if command or "output_dir" not in args:
        return command
    return shlex.join(["rdmf-train", *training_argv(args)])


def training_argv(args: Mapping) -> list[str]:
    """``rdmf-train`` arguments for a ``TrainingArguments`` dict (unset, false and empty fields left out)."""
    argv = []
    for name, value in args.items():
        if name in NOT_REPLAYED or value is None or value is False or value in ([], {}):
            continue
        if name == "config_overrides":
            argv += [item for key, val in value.items() for item in ("--set", f"{key}={json.dumps(val)}")]
        elif value is True:
            argv.append(f"--{name}")
        elif isinstance(value, list):
            argv += [f"--{name}", *map(str, value)]
        else:
            argv += [f"--{name}", str(value)]
    return argv


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


def _copy_beside(checkpoint: Checkpoint, staging: Path) -> None:
    """Copy processor files and training arguments, which ``save_pretrained`` does not write."""
    names = {path.name for pattern in PROCESSOR_FILE_PATTERNS for path in checkpoint.folder.glob(pattern)}
    names |= {"training_args.json"} & {path.name for path in checkpoint.folder.iterdir()}
    for name in sorted(names):
        if (checkpoint.folder / name).is_file() and not (staging / name).exists():
            shutil.copy2(checkpoint.folder / name, staging / name)


def _check_output_dir(output_dir: Path, overwrite: bool) -> None:
    if output_dir.exists() and not output_dir.is_dir():
        raise PublishError(f"output {output_dir} exists and is not a folder")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise PublishError(f"output folder {output_dir} is not empty (pass overwrite=True / --overwrite)")


def publish_checkpoint(
    checkpoint_dir: str | Path,
    metrics_path: str | Path,
    output_dir: str | Path,
    *,
    preset: str | Path | None = None,
    dataset: str | None = None,
    split: str | None = None,
    training_command: str | None = None,
    model_name: str | None = None,
    repo_id: str | None = None,
    license: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a complete Hub repository folder for a trained checkpoint and its evaluation.

    Args:
        checkpoint_dir: what ``save_pretrained`` wrote, optionally with ``preset.json``,
            ``training_args.json`` (its ``command`` is the training command) and processor files.
        metrics_path: the metrics JSON of the evaluation (any `transformers_rdmf.metrics` result).
        output_dir: the repository folder to write (created; must be empty unless ``overwrite``).
        preset: a preset name or path, instead of the checkpoint's ``preset.json``.
        dataset: the training dataset (one of `DATASETS`); defaults to the preset's.
        split: the split the metrics were computed on; defaults to the dataset's usual one.
        training_command: the command that trained it, instead of ``training_args.json``'s.
        model_name: the name in the card and its ``model-index``; defaults to the repo's name.
        repo_id: the Hub repository the card's examples load from.
        license: the card's ``license``; defaults to the training data's.
        overwrite: replace a non-empty ``output_dir``.

    Returns:
        ``output_dir``.

    Raises:
        PublishError: before anything is written, for any bad input.
    """
    output_dir = Path(output_dir)
    checkpoint = read_checkpoint(checkpoint_dir, preset)
    metrics, bookkeeping = read_metrics_file(metrics_path)
    dataset = resolve_dataset(dataset, checkpoint, bookkeeping.get("dataset"))
    check_metrics(metrics, dataset, str(metrics_path))
    _check_repo_id(repo_id)
    _check_output_dir(output_dir, overwrite)
    model = load_checked_model(checkpoint)
    card = build_model_card(
        CardInputs(
            model_name=model_name or (repo_id.split("/")[-1] if repo_id else f"rdmf-{dataset}"),
            repo_id=repo_id,
            dataset=dataset,
            split=split or dataset_info(dataset).split,
            metrics=flatten_metrics(metrics),
            raw_metrics=metrics,
            checkpoint=checkpoint,
            training_command=training_command_of(checkpoint, training_command),
            license=license or dataset_info(dataset).hub_license,
            epoch=bookkeeping.get("epoch"),
        )
    )

    def fill(folder: Path) -> None:
        model.save_pretrained(folder)
        _copy_beside(checkpoint, folder)
        if checkpoint.preset is not None:
            _write_json(folder / "preset.json", checkpoint.preset.to_json())
        _write_json(folder / "eval_results.json", {**bookkeeping, **metrics})
        card.save(folder / "README.md")

    atomic_folder(output_dir, fill)
    return output_dir


def resolve_dataset(explicit: str | None, checkpoint: Checkpoint, from_metrics: str | None) -> str:
    """The training dataset: given, else the training arguments', the preset's, or the metrics file's."""
    preset_dataset = checkpoint.preset.training.get("dataset") if checkpoint.preset else None
    dataset = explicit or (checkpoint.training_args or {}).get("dataset") or preset_dataset or from_metrics
    dataset_info(dataset)
    if from_metrics is not None and from_metrics != dataset:
        raise PublishError(f"the metrics file is of dataset {from_metrics!r}, the checkpoint of {dataset!r}")
    return dataset


def _check_repo_id(repo_id: str | None) -> None:
    if repo_id is None:
        return
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise PublishError(f"invalid repo_id {repo_id!r}: {error}") from None


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload RDMF checkpoint",
):
    """Create ``repo_id`` (if needed) and upload ``folder`` to it; returns the commit info."""
    api = HfApi(token=token)
    api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
    return api.upload_folder(
        repo_id=repo_id, folder_path=str(folder), repo_type="model", commit_message=commit_message
    )


__all__ = [
    "DATASETS",
    "DatasetSpec",
    "Preset",
    "PublishError",
    "build_model_card",
    "eval_results_for",
    "flatten_metrics",
    "load_preset",
    "metrics_from_eval_results",
    "publish_checkpoint",
    "push_folder",
]
