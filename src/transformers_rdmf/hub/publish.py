"""`publish_checkpoint` (the folder a Hub repository holds, written as a whole) and `push_folder`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub.utils import HFValidationError, validate_repo_id

from ..atomic import atomic_folder, check_output_paths
from ..processing_rdmf import RDMFProcessor
from .card import CardInputs, build_model_card
from .checkpoint import (
    PROCESSOR_FILE_PATTERNS,
    Checkpoint,
    PublishError,
    check_metrics,
    dataset_info,
    flatten_metrics,
    load_checked_model,
    read_checkpoint,
    read_metrics_file,
    training_command_of,
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
    inputs = {"checkpoint_dir": checkpoint_dir, "metrics": metrics_path}
    if preset is not None and Path(preset).exists():
        inputs["preset"] = preset
    try:
        check_output_paths({}, inputs, folders={"output_dir": output_dir})
    except ValueError as error:
        raise PublishError(str(error)) from None
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
        model.save_pretrained(folder)  # with the model's code and the pipeline's (trust_remote_code)
        if (checkpoint.folder / "processor_config.json").is_file():  # saved again: its auto_map and code
            RDMFProcessor.from_pretrained(checkpoint.folder).save_pretrained(folder)
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
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")


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


__all__ = ["publish_checkpoint", "push_folder"]
