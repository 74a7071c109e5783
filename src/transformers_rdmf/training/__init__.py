"""Training and evaluation of RDMF with Accelerate (one CPU, one GPU, or many processes).

``rdmf-train`` / ``scripts/train.py`` and ``rdmf-evaluate`` / ``scripts/evaluate.py`` call :func:`train_main`
and :func:`evaluate_main`. The same code runs under ``accelerate launch``: the sampler is seeded and
sharded, evaluation gathers every prediction exactly once, and ``--resume_from_checkpoint`` continues
with the same data order, optimiser, scheduler and random state.

Modules: `arguments` (what a run is given, and the checks before it starts), `data` (datasets and
loaders), `loop` (the run), `evaluation` (predictions and official metrics), `tracking` (logs and state),
`selection` and `sweep` (fold protocols and result sweeps). Names load on first use, so that
``import transformers_rdmf.training.selection`` (a sweep's ``--report``) costs no torch.
"""

import importlib
from typing import TYPE_CHECKING

# name -> the submodule that defines it
_LAZY_NAMES = {
    "PRESET_PROTOCOL_KEYS": "arguments",
    "RDMFTrainingArguments": "arguments",
    "arguments_from_namespace": "arguments",
    "build_train_parser": "arguments",
    "check_before_training": "arguments",
    "check_preset_training": "arguments",
    "command_line_for": "arguments",
    "parse_overrides": "arguments",
    "use_cpu": "arguments",
    "check_resume_checkpoint": "checkpoints",
    "save_training_state": "checkpoints",
    "build_dataset": "data",
    "build_loader": "data",
    "compute_metrics": "evaluation",
    "evaluate_checkpoint": "evaluation",
    "evaluate_main": "evaluation",
    "run_evaluation": "evaluation",
    "TrainingLoop": "loop",
    "build_config": "loop",
    "heads_trained_by": "loop",
    "load_model": "loop",
    "save_model": "loop",
    "train": "loop",
    "train_main": "loop",
    "CSVTracker": "tracking",
    "TrainerState": "tracking",
    "read_csv_log": "tracking",
}
__all__ = [
    "CSVTracker",
    "PRESET_PROTOCOL_KEYS",
    "RDMFTrainingArguments",
    "TrainerState",
    "TrainingLoop",
    "arguments_from_namespace",
    "build_config",
    "build_dataset",
    "build_loader",
    "build_train_parser",
    "check_before_training",
    "check_preset_training",
    "check_resume_checkpoint",
    "command_line_for",
    "compute_metrics",
    "evaluate_checkpoint",
    "evaluate_main",
    "heads_trained_by",
    "load_model",
    "parse_overrides",
    "read_csv_log",
    "run_evaluation",
    "save_model",
    "save_training_state",
    "train",
    "train_main",
    "use_cpu",
]  # the keys of _LAZY_NAMES (a test checks)


def __getattr__(name: str):
    module_name = _LAZY_NAMES.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_NAMES))


if TYPE_CHECKING:
    from .arguments import (
        PRESET_PROTOCOL_KEYS,
        RDMFTrainingArguments,
        arguments_from_namespace,
        build_train_parser,
        check_before_training,
        check_preset_training,
        command_line_for,
        parse_overrides,
        use_cpu,
    )
    from .checkpoints import check_resume_checkpoint, save_training_state
    from .data import build_dataset, build_loader
    from .evaluation import compute_metrics, evaluate_checkpoint, evaluate_main, run_evaluation
    from .loop import TrainingLoop, build_config, heads_trained_by, load_model, save_model, train, train_main
    from .tracking import CSVTracker, TrainerState, read_csv_log
