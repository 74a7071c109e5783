"""Publish a trained RDMF checkpoint as a Hub repository folder, and push it.

`publish_checkpoint` turns what ``save_pretrained`` wrote (plus, optionally, ``preset.json``,
``training_args.json`` and processor files beside it) and the metrics JSON of its evaluation into a
folder ready for ``upload_folder``: ``model.safetensors``, ``config.json`` with its ``auto_map``, the
modeling files ``trust_remote_code`` needs, processor files, ``eval_results.json`` and a model card
whose ``model-index`` holds every metric of the evaluation. Every input is checked before anything
is written. `push_folder` uploads the folder.

Modules: `checkpoint` (reading and checking the inputs), `card` (the model card), `publish` (the
folder and the upload), `space` (a folder that runs as a Gradio Space). Not imported by the model code, so Hub repositories never depend on it.
"""

from .card import CardInputs, build_model_card
from .checkpoint import (
    DATASETS,
    Checkpoint,
    Preset,
    PublishError,
    eval_results_for,
    flatten_metrics,
    load_preset,
    metrics_from_eval_results,
    read_checkpoint,
)
from .publish import publish_checkpoint, push_folder
from .space import check_space_dir, write_space

__all__ = [
    "DATASETS",
    "CardInputs",
    "Checkpoint",
    "Preset",
    "PublishError",
    "build_model_card",
    "check_space_dir",
    "eval_results_for",
    "flatten_metrics",
    "load_preset",
    "metrics_from_eval_results",
    "publish_checkpoint",
    "push_folder",
    "read_checkpoint",
    "write_space",
]
