"""Training and evaluation of RDMF with Accelerate (one CPU, one GPU, or many processes).

``rdmf-train`` / ``scripts/train.py`` and ``rdmf-evaluate`` / ``scripts/evaluate.py`` call :func:`train_main`
and :func:`evaluate_main`. The same code runs under ``accelerate launch``: the sampler is seeded and
sharded, evaluation gathers every prediction exactly once, and ``--resume_from_checkpoint`` continues
with the same data order, optimiser, scheduler and random state.

Modules: `arguments` (what a run is given, and the checks before it starts), `data` (datasets and
loaders), `loop` (the run), `evaluation` (predictions and official metrics), `tracking` (logs and state).
"""

from .arguments import (
    PRESET_PROTOCOL_KEYS,
    RDMFTrainingArguments,
    arguments_from_namespace,
    build_train_parser,
    check_before_training,
    check_preset_training,
    parse_overrides,
    use_cpu,
)
from .data import build_dataset, build_loader
from .evaluation import compute_metrics, evaluate_checkpoint, evaluate_main, run_evaluation
from .loop import TrainingLoop, build_config, heads_trained_by, load_model, save_model, train, train_main
from .tracking import CSVTracker, TrainerState, read_csv_log

__all__ = [
    "PRESET_PROTOCOL_KEYS",
    "CSVTracker",
    "TrainerState",
    "RDMFTrainingArguments",
    "TrainingLoop",
    "arguments_from_namespace",
    "build_config",
    "build_dataset",
    "build_loader",
    "build_train_parser",
    "check_before_training",
    "check_preset_training",
    "compute_metrics",
    "evaluate_checkpoint",
    "evaluate_main",
    "heads_trained_by",
    "load_model",
    "parse_overrides",
    "read_csv_log",
    "run_evaluation",
    "save_model",
    "train",
    "train_main",
    "use_cpu",
]
