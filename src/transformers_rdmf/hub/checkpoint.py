"""Reading what is to be published: the checkpoint folder, its preset, its training arguments (and the
``rdmf-train`` command they replay) and its metrics, each checked, with errors naming the file."""

from __future__ import annotations

import dataclasses
import json
import math
import shlex
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import EvalResult

from ..configuration_rdmf import RDMFConfig
from ..dataset_specs import DATASETS as ALL_DATASETS
from ..dataset_specs import HIGHLIGHT_DETECTION, MOMENT_RETRIEVAL, TASK_NAMES, DatasetSpec
from ..presets import preset_name, read_preset

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
    """Load the checkpoint's model (`checkpoint_loading.load_checkpoint_model`, strict): every weight must
    match a parameter, none missing or unexpected, all finite."""
    from ..checkpoint_loading import CheckpointError, load_checkpoint_model
    from ..modeling_rdmf import RDMFForMomentRetrieval, RDMFModel

    model_class = RDMFModel if checkpoint.architecture == "RDMFModel" else RDMFForMomentRetrieval
    try:
        return load_checkpoint_model(checkpoint.folder, "checkpoint", model_class, strict=True)
    except (CheckpointError, OSError) as error:
        raise PublishError(f"{checkpoint.folder}: the checkpoint does not load: {error}") from error


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
    from ..training.arguments import command_line_for

    try:
        return shlex.join(["rdmf-train", *command_line_for(args)])
    except (
        ValueError
    ) as error:  # the card then points to training_args.json rather than print a wrong command
        warnings.warn(
            f"{checkpoint.folder / 'training_args.json'}: no training command is shown: {error}", stacklevel=2
        )
        return None
