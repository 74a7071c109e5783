"""Training and evaluation of RDMF with Accelerate (one CPU, one GPU, or many processes).

``rdmf-train`` / ``scripts/train.py`` and ``rdmf-evaluate`` / ``scripts/evaluate.py`` call :func:`train_main`
and :func:`evaluate_main`. The same code runs under ``accelerate launch``: the sampler is seeded and
sharded, evaluation gathers every prediction exactly once, and ``--resume_from_checkpoint`` continues
with the same data order, optimiser, scheduler and random state.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.tracking import GeneralTracker
from accelerate.utils import set_seed
from timm.utils import ModelEmaV3
from tqdm.auto import tqdm
from transformers import HfArgumentParser, get_scheduler

from .atomic import atomic_folder
from .configuration_rdmf import HEADS, RDMFConfig
from .dataset_specs import HIGHLIGHT_DATASETS, MOMENT_DATASETS, dataset_spec
from .feature_manifest import (
    check_feature_folders,
    read_model_feature_signatures,
    write_model_feature_signatures,
)
from .modeling_rdmf import RDMFForMomentRetrieval
from .post_processing import post_process_moment_retrieval
from .presets import list_presets, preset_source, read_preset


@dataclass
class TrainingArguments:
    """Everything a run needs besides the model config; defaults follow the paper and Moment-DETR.

    Data (pick the fields of your dataset):
        dataset: ``qvhighlights``, ``charades_sta``, ``activitynet_captions``, ``tvsum``, ``youtube_highlights``
            or ``custom`` (your own data in the simple schema, ``docs/custom_data.md``).
        train_annotations / eval_annotations: unified jsonl files (moment datasets, TVSum).
        video_feature_dirs: one folder per stream, ``{vid}.npz`` with ``features`` (moment datasets).
        text_feature_dir: ``qid{qid}.npz`` with ``last_hidden_state`` (moment datasets).
        data_root: the TVSum / YouTube Highlights folder (features, ``splits.json``).
        domain: train and evaluate on one category (TVSum, YouTube Highlights).
        clip_length: seconds per feature row (moment datasets); default: the features' manifest for
            ``custom``, else the dataset's usual clip length.

    Fine-tuning:
        model_name_or_path: start from this checkpoint (a folder written by ``save_pretrained``, such as
            a run's ``best/``, or a Hub id) instead of random weights. Its config is kept, with
            ``config_overrides`` (``--set``) on top; the preset still gives the data layout and the
            training recipe, and its feature widths must match the checkpoint's.
    """

    output_dir: str
    preset: str = "qvhighlights_clip_slowfast"
    config_overrides: dict[str, Any] = field(default_factory=dict)
    model_name_or_path: str | None = None
    dataset: str = "qvhighlights"
    train_annotations: str | None = None
    eval_annotations: str | None = None
    video_feature_dirs: list[str] = field(default_factory=list)
    text_feature_dir: str | None = None
    data_root: str | None = None
    domain: str | None = None
    clip_length: float | None = None
    learning_rate: float = 1e-4
    weight_decay: float = 1e-4
    batch_size: int = 16
    num_epochs: int = 50
    max_steps: int | None = None
    warmup_steps: int = 0
    lr_scheduler: str = "constant_with_warmup"
    max_grad_norm: float | None = 0.1
    ema_decay: float | None = None
    random_crop_clips: int | None = None
    gradient_accumulation_steps: int = 1
    mixed_precision: str = "no"
    seed: int = 42
    max_clips: int | None = None
    num_workers: int = 0
    eval_every_epochs: int = 1
    early_stopping_metric: str | None = None
    early_stopping_patience: int | None = None
    save_state_every_steps: int | None = None
    resume_from_checkpoint: str | None = None
    log_with: str = "csv"
    top_k_windows: int = 10
    nms_threshold: float | None = 0.7
    disable_progress_bar: bool = False
    cpu: bool = False


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def build_dataset(args: TrainingArguments, split: str, config: RDMFConfig, trained_on: dict | None = None):
    """A ``MomentFeatureDataset`` for ``split`` ("train" or "eval"), or None when the split has no data.

    Feature folders with a manifest (``rdmf extract-features``) must agree with ``config``'s widths, the
    clip length, and ``trained_on`` (a checkpoint's ``feature_manifest.json``).
    """
    from .data import (
        DomainQueryEncoder,
        MomentFeatureDataset,
        TextFeatureReader,
        load_annotations,
        load_youtube_highlights,
        standard_video_reader,
        tvsum_text_reader,
        tvsum_video_reader,
        youtube_highlights_video_reader,
    )

    annotations_path = args.train_annotations if split == "train" else args.eval_annotations
    if args.dataset == "youtube_highlights":
        annotations = load_youtube_highlights(
            args.data_root, "train" if split == "train" else "val", args.domain
        )
        video = youtube_highlights_video_reader(args.data_root)
        text = DomainQueryEncoder(dim=config.text_feature_dim)
    elif annotations_path is None:
        return None
    elif args.dataset == "tvsum":
        annotations = load_annotations(annotations_path, "tvsum", domain=args.domain)
        video = tvsum_video_reader(args.data_root, audio=config.video_feature_dim == 4096)
        text = tvsum_text_reader(args.data_root)
    else:
        clip_length = checked_clip_length(args, config, trained_on)
        annotations = load_annotations(annotations_path, args.dataset, clip_length=clip_length)
        video = standard_video_reader(args.video_feature_dirs)
        text = TextFeatureReader(args.text_feature_dir, dim=config.text_feature_dim)
    if len(annotations) == 0:
        raise ValueError(
            f"{split} split of {args.dataset} is empty (domain={args.domain!r}, file={annotations_path})"
        )
    dataset = MomentFeatureDataset(annotations, video, text)
    dataset.check_lengths(args.max_clips)  # fails now, naming the file, rather than mid-epoch
    return dataset


def checked_clip_length(args: TrainingArguments, config: RDMFConfig, trained_on: dict | None) -> float | None:
    """The clip length of a moment dataset's features, after checking their manifests (if any) agree."""
    wanted = args.clip_length or (
        None if args.dataset == "custom" else dataset_spec(args.dataset).clip_length
    )
    found = check_feature_folders(
        args.video_feature_dirs,
        args.text_feature_dir,
        video_feature_dim=config.video_feature_dim,
        text_feature_dim=config.text_feature_dim,
        clip_length=wanted,
        trained_on=trained_on,
        expected_by=f"the model (preset {args.preset!r}, --dataset {args.dataset}, --clip_length {wanted})",
    )
    return wanted or found


def build_loader(dataset, args: TrainingArguments, shuffle: bool):
    from .data import MomentRetrievalCollator, build_dataloader

    return build_dataloader(
        dataset,
        args.batch_size,
        shuffle=shuffle,
        seed=args.seed,
        num_workers=args.num_workers,
        collate_fn=MomentRetrievalCollator(max_clips=args.max_clips),
    )


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


def predictions_for_batch(outputs, meta: list[dict], args: TrainingArguments) -> list[dict]:
    """One QVHighlights-submission row per example: windows ``[start, end, score]`` and per-clip saliency."""
    durations = [m["span_duration"] for m in meta]
    moments = post_process_moment_retrieval(outputs, durations, args.top_k_windows, args.nms_threshold)
    saliency = outputs.saliency_logits.detach().float().sigmoid().cpu()
    rows = []
    for item, windows, clip_saliency in zip(meta, moments, saliency):
        rows.append(
            {
                "qid": item["qid"],
                "query": item["query"],
                "vid": item["vid"],
                "pred_relevant_windows": [
                    [round(w["start"], 4), round(w["end"], 4), round(w["score"], 6)] for w in windows
                ],
                "pred_saliency_scores": [round(float(s), 6) for s in clip_saliency[: item["num_clips"]]],
            }
        )
    return rows


def highlight_references(meta: list[dict]) -> list[dict]:
    """Ground truth of highlight-only datasets from what the loader read (per-clip annotator scores)."""
    return [
        {"qid": m["qid"], "domain": m["domain"], "label": m["saliency_scores"].tolist()}
        for m in meta
        if m["saliency_scores"] is not None
    ]


@torch.no_grad()
def run_evaluation(
    model, loader, accelerator: Accelerator, args: TrainingArguments
) -> tuple[list[dict], list[dict]]:
    """Predictions (and highlight references) for every example of ``loader``, gathered exactly once."""
    model.eval()
    predictions, references = [], []
    for batch in tqdm(
        loader, desc="eval", disable=args.disable_progress_bar or not accelerator.is_local_main_process
    ):
        meta = batch.pop("meta")
        batch.pop("labels")
        outputs = model(**batch)
        rows = predictions_for_batch(outputs, meta, args)
        predictions.extend(accelerator.gather_for_metrics(rows, use_gather_object=True))
        if args.dataset in HIGHLIGHT_DATASETS:
            references.extend(
                accelerator.gather_for_metrics(highlight_references(meta), use_gather_object=True)
            )
    model.train()
    return predictions, references


def compute_metrics(
    dataset: str, predictions: list[dict], references: list[dict], annotations_path: str | None
) -> dict:
    """The dataset's official metrics, flattened to ``{name: value}`` (percent)."""
    from .metrics import (
        evaluate_moment_retrieval,
        evaluate_qvhighlights,
        evaluate_tvsum,
        evaluate_youtube_highlights,
    )

    evaluator = dataset_spec(dataset).evaluator
    if evaluator in ("tvsum", "youtube_highlights"):
        scores = (evaluate_tvsum if evaluator == "tvsum" else evaluate_youtube_highlights)(
            predictions, references
        )
        headline = dataset_spec(dataset).headline_metric
        return {headline: scores[headline], **{f"{headline}/{d}": v for d, v in scores["per_domain"].items()}}
    ground_truth = reference_rows_for(predictions, annotations_path)
    if evaluator == "qvhighlights":
        return dict(evaluate_qvhighlights(predictions, ground_truth)["brief"])
    if evaluator == "moment_retrieval+qvhighlights":  # QVHighlights' official MR part and R1/R5/mIoU
        windows_only = [{k: v for k, v in p.items() if k != "pred_saliency_scores"} for p in predictions]
        brief = evaluate_qvhighlights(windows_only, ground_truth)["brief"]
        return {**brief, **evaluate_moment_retrieval(predictions, ground_truth)}
    return evaluate_moment_retrieval(predictions, ground_truth)


def reference_rows_for(predictions: list[dict], annotations_path: str) -> list[dict]:
    """The annotation rows of the predicted queries; prediction qids are set to the file's qid type."""
    by_qid = {}
    with open(annotations_path) as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                by_qid[str(row["qid"])] = row
    rows = []
    for prediction in predictions:
        row = by_qid[str(prediction["qid"])]
        prediction["qid"] = row["qid"]
        rows.append(row)
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


# ---------------------------------------------------------------------------------------------
# Logging and state
# ---------------------------------------------------------------------------------------------


class CSVTracker(GeneralTracker):
    """Accelerate tracker writing ``step,name,value`` rows to ``<output_dir>/logs/metrics.csv``."""

    name = "csv"
    requires_logging_directory = True
    main_process_only = True

    def __init__(self, logging_dir: str, resume: bool = False):
        super().__init__()
        self.path = Path(logging_dir) / "metrics.csv"
        self.resume = resume

    def start(self):
        """Called by ``init_trackers`` on the main process only: no other process can truncate the log."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.resume or not self.path.exists():
            self.path.write_text("step,name,value\n")

    @property
    def tracker(self):
        return self.path

    def store_init_configuration(self, values: dict):
        (self.path.parent / "run_config.json").write_text(json.dumps(values, indent=2, default=str))

    def log(self, values: dict, step: int | None = None, **kwargs):
        with open(self.path, "a", newline="") as handle:
            writer = csv.writer(handle)
            for name, value in values.items():
                writer.writerow([step, name, repr(float(value))])


def read_csv_log(output_dir: str | Path) -> list[tuple[int, str, float]]:
    """The rows a :class:`CSVTracker` wrote: ``(step, name, value)``."""
    with open(Path(output_dir) / "logs" / "metrics.csv") as handle:
        return [(int(r["step"]), r["name"], float(r["value"])) for r in csv.DictReader(handle)]


@dataclass
class TrainerState:
    """Progress saved with ``accelerator.save_state`` so a resumed run continues exactly."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best_metric: float | None = None
    best_epoch: int | None = None
    evaluations_without_improvement: int = 0

    def state_dict(self) -> dict:
        return dataclasses.asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------


def build_config(args: TrainingArguments) -> RDMFConfig:
    known = {f.name for f in dataclasses.fields(RDMFConfig)}
    unknown = sorted(set(args.config_overrides) - known)
    if unknown:
        raise ValueError(f"--set: unknown config field(s) {unknown}; known: {', '.join(sorted(known))}")
    return RDMFConfig.from_preset(args.preset, **args.config_overrides)


def load_model(args: TrainingArguments, config: RDMFConfig) -> tuple[RDMFForMomentRetrieval, dict | None]:
    """The model to train and the feature signatures it was trained on (None for a fresh model).

    A fresh model from ``config`` (the preset with ``--set``), or ``--model_name_or_path``'s checkpoint
    with ``--set`` applied to its config (validated again), after checking that it reads features as
    wide as ``config``. The feature-manifest check of moment datasets needs a local folder; a Hub id
    loads without it.
    """
    if args.model_name_or_path is None:
        return RDMFForMomentRetrieval(config), None
    where = args.model_name_or_path
    try:
        saved = RDMFConfig.from_pretrained(where)
    except OSError as error:
        raise FileNotFoundError(
            f"--model_name_or_path: cannot load an RDMF checkpoint from {where} ({error})"
        ) from None
    except ValueError as error:
        raise ValueError(f"--model_name_or_path: the config of {where} is invalid ({error})") from None
    for name in ("video_feature_dim", "text_feature_dim"):
        if getattr(saved, name) != getattr(config, name):
            raise ValueError(
                f"--model_name_or_path: {where} has {name}={getattr(saved, name)}, but preset {args.preset!r} "
                f"(with --set) reads features of width {getattr(config, name)}; use the preset of the features "
                "the checkpoint was trained on"
            )
    try:  # the checkpoint's config with --set on top, through the constructor, which validates it
        updated = RDMFConfig.from_dict({**saved.to_dict(), **args.config_overrides})
    except ValueError as error:
        raise ValueError(f"--set on the config of {where}: {error}") from None
    try:
        model = RDMFForMomentRetrieval.from_pretrained(where, config=updated)
    except OSError as error:
        raise FileNotFoundError(
            f"--model_name_or_path: cannot load the weights of {where} ({error})"
        ) from None
    except (RuntimeError, ValueError) as error:
        changed = sorted(k for k, v in args.config_overrides.items() if getattr(saved, k, None) != v)
        raise ValueError(
            f"--model_name_or_path: the weights of {where} do not fit its config after --set {changed} "
            f"({str(error).splitlines()[0]})"
        ) from None
    return model, read_model_feature_signatures(where)


def heads_trained_by(dataset: str, config: RDMFConfig, start: list[str] | None = None) -> list[str]:
    """The heads a run on ``dataset`` fits (``config.trained_heads``): those with a positive loss weight
    whose labels the dataset has (a highlight-only dataset has no spans, so no moments and no IoU), together
    with the heads the starting checkpoint ``start`` records (an unrecorded start adds none).
    """
    spans = dataset_spec(dataset).has_spans
    fitted = {
        "saliency": config.saliency_loss_weight > 0 or config.saliency_rank_loss_weight > 0,
        "moments": spans and config.moment_loss_weight > 0,
        "iou": spans and config.use_iou_head and config.iou_loss_weight > 0,
    }
    return [head for head in HEADS if fitted[head] or head in (start or [])]


def check_before_training(args: TrainingArguments) -> None:
    """Stop at once, with a clear message, on what would otherwise fail mid-run."""
    dataset_spec(args.dataset)  # an unknown name stops here, listing the known ones
    paths = [("--train_annotations", args.train_annotations), ("--eval_annotations", args.eval_annotations)]
    paths += [("--video_feature_dirs", d) for d in args.video_feature_dirs]
    paths += [("--text_feature_dir", args.text_feature_dir), ("--data_root", args.data_root)]
    for flag, path in paths:
        if path is not None and not Path(path).exists():
            raise FileNotFoundError(f"{flag}: {path} does not exist")
    if (
        args.dataset in MOMENT_DATASETS
        and args.train_annotations
        and not (args.video_feature_dirs and args.text_feature_dir)
    ):
        raise ValueError(f"{args.dataset} needs --video_feature_dirs and --text_feature_dir")
    if args.dataset in HIGHLIGHT_DATASETS and args.data_root is None:
        raise ValueError(f"{args.dataset} needs --data_root (the folder with its features)")
    if args.dataset == "tvsum" and args.train_annotations is None:
        raise ValueError("tvsum needs --train_annotations (tvsum_train_release.jsonl)")
    if args.random_crop_clips is not None and (
        args.random_crop_clips < 1 or args.dataset not in HIGHLIGHT_DATASETS
    ):
        raise ValueError(
            f"--random_crop_clips {args.random_crop_clips}: expected a positive clip count, and a "
            f"highlight-only dataset ({', '.join(HIGHLIGHT_DATASETS)}) whose labels are per clip; "
            f"got --dataset {args.dataset}"
        )
    if args.ema_decay is not None and not 0 <= args.ema_decay < 1:
        raise ValueError(f"--ema_decay {args.ema_decay}: expected a value in [0, 1)")
    output = Path(args.output_dir)
    try:
        output.mkdir(parents=True, exist_ok=True)
        probe = output / f".write_test_{os.getpid()}"  # one per process: several may check at once
        probe.write_text("ok")
        probe.unlink(missing_ok=True)
    except OSError as error:
        raise PermissionError(f"--output_dir: cannot write to {output} ({error})") from None


def use_cpu(args: TrainingArguments) -> bool:
    """CPU when asked, or when launched as several processes on a machine without CUDA.

    ``accelerate launch --multi_gpu --num_processes N`` (or ``torchrun --nproc_per_node N``) on a CPU-only
    machine then trains with the gloo backend; Accelerate alone would run N unrelated processes.
    """
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return args.cpu or (several and not torch.cuda.is_available())


def save_model(
    folder: str, model, accelerator: Accelerator, args: TrainingArguments, metrics: dict, epoch: int
) -> None:
    """``save_pretrained`` into ``output_dir/folder`` (``best`` or ``final``), with the preset, the
    arguments, the feature signatures and the metrics of that epoch beside it; written as a whole
    (`atomic.atomic_folder`), so a crash mid-save leaves the previous folder, never half of one."""
    if not accelerator.is_main_process:
        return

    def fill(target: Path) -> None:
        accelerator.unwrap_model(model).save_pretrained(target)
        (target / "preset.json").write_text(preset_source(args.preset)[1])
        (target / "training_args.json").write_text(json.dumps(dataclasses.asdict(args), indent=2))
        write_model_feature_signatures(target, args.video_feature_dirs, args.text_feature_dir)
        (target / "metrics.json").write_text(
            json.dumps({"epoch": epoch, "dataset": args.dataset, **metrics}, indent=2)
        )

    atomic_folder(Path(args.output_dir) / folder, fill)


def train(args: TrainingArguments) -> dict:
    """Train; returns ``{"best_metric", "best_epoch", "global_step", "last_metrics"}``."""
    check_before_training(args)
    config = build_config(args)
    resume = args.resume_from_checkpoint is not None
    accelerator = Accelerator(
        cpu=use_cpu(args),
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=[CSVTracker(os.path.join(args.output_dir, "logs"), resume=resume)]
        if args.log_with == "csv"
        else args.log_with,
        project_dir=args.output_dir,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
        step_scheduler_with_optimizer=False,
    )
    set_seed(args.seed)
    model, trained_on = load_model(args, config)
    config = model.config
    config.trained_heads = heads_trained_by(args.dataset, config, start=config.trained_heads)
    train_set = build_dataset(args, "train", config, trained_on)
    eval_set = build_dataset(args, "eval", config, trained_on)
    train_loader = build_loader(train_set, args, shuffle=True)
    eval_loader = build_loader(eval_set, args, shuffle=False) if eval_set is not None else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    if eval_loader is not None:
        eval_loader = accelerator.prepare(eval_loader)
    steps_per_epoch = math.ceil(len(train_loader) / args.gradient_accumulation_steps)
    total_steps = args.max_steps or steps_per_epoch * args.num_epochs
    scheduler = get_scheduler(
        args.lr_scheduler, optimizer, num_warmup_steps=args.warmup_steps, num_training_steps=total_steps
    )
    state = TrainerState()
    accelerator.register_for_checkpointing(scheduler, state)
    ema = None
    if args.ema_decay is not None:
        ema = ModelEmaV3(accelerator.unwrap_model(model), decay=args.ema_decay)
        accelerator.register_for_checkpointing(ema)
    if resume:
        accelerator.load_state(args.resume_from_checkpoint)
    accelerator.init_trackers("rdmf", config={**dataclasses.asdict(args), "model": config.to_dict()})
    metric_name = args.early_stopping_metric or dataset_spec(args.dataset).headline_metric
    last_metrics: dict = {}
    evaluated_at_step = None

    progress = tqdm(
        total=total_steps,
        initial=state.global_step,
        desc="train",
        disable=args.disable_progress_bar or not accelerator.is_local_main_process,
    )
    loop = TrainingLoop(accelerator, model, optimizer, scheduler, state, args, total_steps, progress, ema)
    eval_model = model if ema is None else ema.module
    while state.epoch < args.num_epochs and state.global_step < total_steps:
        if not loop.run_epoch(train_loader):
            break  # max_steps reached inside the epoch
        state.epoch += 1
        state.step_in_epoch = 0
        if eval_loader is not None and state.epoch % args.eval_every_epochs == 0:
            last_metrics = evaluate_epoch(eval_model, eval_loader, accelerator, args, state, metric_name)
            evaluated_at_step = state.global_step
            if should_stop_early(args, state):
                break
    progress.close()
    accelerator.save_state(os.path.join(args.output_dir, "checkpoints", "last"))
    # the weights training ended with (the EMA when on), for a fixed schedule or further fine-tuning;
    # its metrics only when the last evaluation saw exactly these weights
    final_metrics = last_metrics if evaluated_at_step == state.global_step else {}
    save_model("final", eval_model, accelerator, args, final_metrics, state.epoch)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return {
        "best_metric": state.best_metric,
        "best_epoch": state.best_epoch,
        "global_step": state.global_step,
        "last_metrics": last_metrics,
    }


@dataclass
class TrainingLoop:
    """One epoch of optimisation steps, with logging and periodic state saving."""

    accelerator: Accelerator
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    state: TrainerState
    args: TrainingArguments
    total_steps: int
    progress: Any
    ema: ModelEmaV3 | None = None

    def run_epoch(self, train_loader) -> bool:
        """Train over the rest of the current epoch; False when ``total_steps`` was reached before its end."""
        from .data import random_temporal_crop

        state, accelerator = self.state, self.accelerator
        train_loader.set_epoch(state.epoch)
        batches = train_loader
        if state.step_in_epoch:  # resumed mid-epoch: same order, minus the batches already seen
            batches = accelerator.skip_first_batches(train_loader, state.step_in_epoch)
        self.model.train()
        for batch in batches:
            batch.pop("meta")
            if self.args.random_crop_clips:
                generator = torch.Generator().manual_seed(self.args.seed * 1_000_003 + state.global_step)
                batch = random_temporal_crop(batch, self.args.random_crop_clips, generator)
            outputs = self.forward_backward(batch)
            state.step_in_epoch += 1
            if accelerator.sync_gradients:
                self.after_optimizer_step(outputs)
                if state.global_step >= self.total_steps:
                    return state.step_in_epoch >= len(train_loader)
        return True

    def forward_backward(self, batch):
        accelerator, args = self.accelerator, self.args
        with accelerator.accumulate(self.model):
            outputs = self.model(**batch)
            accelerator.backward(outputs.loss)
            if accelerator.sync_gradients and args.max_grad_norm:
                accelerator.clip_grad_norm_(self.model.parameters(), args.max_grad_norm)
            self.optimizer.step()
            self.optimizer.zero_grad()
        return outputs

    def after_optimizer_step(self, outputs) -> None:
        state, accelerator = self.state, self.accelerator
        self.scheduler.step()
        state.global_step += 1
        if self.ema is not None:
            self.ema.update(accelerator.unwrap_model(self.model), step=state.global_step)
        self.progress.update(1)
        terms = {"loss": outputs.loss.detach(), **{k: v.detach() for k, v in outputs.loss_dict.items()}}
        logged = {f"train/{k}": accelerator.reduce(v.float(), "mean").item() for k, v in terms.items()}
        accelerator.log({**logged, "train/lr": self.scheduler.get_last_lr()[0]}, step=state.global_step)
        every = self.args.save_state_every_steps
        if every and state.global_step % every == 0:
            accelerator.save_state(
                os.path.join(self.args.output_dir, "checkpoints", f"step_{state.global_step}")
            )


def evaluate_epoch(
    model, eval_loader, accelerator, args: TrainingArguments, state: TrainerState, metric_name: str
) -> dict:
    predictions, references = run_evaluation(model, eval_loader, accelerator, args)
    metrics = {}
    if accelerator.is_main_process:
        metrics = compute_metrics(args.dataset, predictions, references, args.eval_annotations)
        folder = Path(args.output_dir) / "eval"
        write_jsonl(folder / f"epoch_{state.epoch:03d}_preds.jsonl", predictions)
        (folder / f"epoch_{state.epoch:03d}_metrics.json").write_text(json.dumps(metrics, indent=2))
    metrics = broadcast_object(metrics)
    if metric_name not in metrics:
        raise ValueError(f"--early_stopping_metric {metric_name!r} is not among {sorted(metrics)}")
    accelerator.log({f"eval/{k}": v for k, v in metrics.items()}, step=state.global_step)
    if state.best_metric is None or metrics[metric_name] > state.best_metric:
        state.best_metric, state.best_epoch = metrics[metric_name], state.epoch
        state.evaluations_without_improvement = 0
        save_model("best", model, accelerator, args, metrics, state.epoch)
    else:
        state.evaluations_without_improvement += 1
    accelerator.wait_for_everyone()
    return metrics


def should_stop_early(args: TrainingArguments, state: TrainerState) -> bool:
    patience = args.early_stopping_patience
    return patience is not None and state.evaluations_without_improvement >= patience


def broadcast_object(value):
    """``value`` of the main process, on every process."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        holder = [value]
        torch.distributed.broadcast_object_list(holder, src=0)
        return holder[0]
    return value


# ---------------------------------------------------------------------------------------------
# Command lines
# ---------------------------------------------------------------------------------------------


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["hidden_size=128", "fusion_type=cross_attention"]`` -> typed values (JSON where it parses)."""
    overrides = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key] = raw
    return overrides


# Keys a preset's ``training`` section may hold beside the `TrainingArguments` fields: facts about the
# protocol that no run argument carries (read by publishing).
PRESET_PROTOCOL_KEYS = {
    "per_domain": "one model per category (TVSum, YouTube Highlights), as their protocols"
}
COMMAND_LINE_ONLY = ("config_overrides",)  # given as --set KEY=VALUE


def command_line_fields() -> list[dataclasses.Field]:
    """The `TrainingArguments` fields that are flags of their own (``--name``)."""
    return [f for f in dataclasses.fields(TrainingArguments) if f.name not in COMMAND_LINE_ONLY]


def build_train_parser() -> HfArgumentParser:
    """``rdmf-train``'s parser: one flag per `TrainingArguments` field, typed from its annotation by
    ``transformers.HfArgumentParser`` (``--name`` and ``--name-with-dashes``), plus ``--set KEY=VALUE``.

    A flag not given is None in the namespace, so that `arguments_from_namespace` can put the flags given
    on top of the preset's ``training`` section.
    """
    hints = typing.get_type_hints(TrainingArguments)
    view = dataclasses.make_dataclass(
        "TrainingCommandLine",
        [(f.name, hints[f.name], _unset_default(f)) for f in command_line_fields()],
    )
    parser = HfArgumentParser(
        view,
        prog="rdmf-train",
        description="Train RDMF with Accelerate.",
        formatter_class=argparse.HelpFormatter,
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field (repeatable)"
    )
    return parser


def _unset_default(item: dataclasses.Field) -> dataclasses.Field:
    """The field for the parser: required stays required; any other defaults to None, which no flag parses
    to, so that a flag not given can be told apart (the real default is shown in the help)."""
    if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
        return dataclasses.field(metadata={"help": "required"})
    default = item.default if item.default is not dataclasses.MISSING else item.default_factory()
    help_text = f"default: {default!r}"
    if item.name == "preset":
        help_text = f"one of {list_presets()} or a preset JSON path; {help_text}"
    return dataclasses.field(default=None, metadata={"help": help_text})


def check_preset_training(training: dict, source: str) -> dict:
    """The preset's ``training`` values that are `TrainingArguments` fields; any key that is neither such a
    field nor a protocol key (`PRESET_PROTOCOL_KEYS`) is an error naming it."""
    fields = {f.name for f in command_line_fields()}
    unknown = sorted(set(training) - fields - set(PRESET_PROTOCOL_KEYS))
    if unknown:
        raise ValueError(
            f"{source}: unknown training key(s) {unknown}; a preset's training section holds "
            f"TrainingArguments fields ({', '.join(sorted(fields))}) and {sorted(PRESET_PROTOCOL_KEYS)}"
        )
    return {key: value for key, value in training.items() if key in fields}


def arguments_from_namespace(namespace: argparse.Namespace) -> TrainingArguments:
    """The dataclass defaults, then the preset's ``training`` section, then the flags given."""
    given = {f.name: getattr(namespace, f.name, None) for f in command_line_fields()}  # None: not given
    given = {name: value for name, value in given.items() if value is not None}
    name = given.get("preset", TrainingArguments.__dataclass_fields__["preset"].default)
    try:
        preset = read_preset(name)
    except ValueError as error:
        raise ValueError(f"--preset: {error}") from None
    values = {**check_preset_training(preset.get("training", {}), f"--preset {name}"), **given}
    values["config_overrides"] = parse_overrides(getattr(namespace, "set", []))
    return TrainingArguments(**values)


def train_main(argv: list[str] | None = None) -> int:
    try:
        args = arguments_from_namespace(build_train_parser().parse_args(argv))
        result = train(args)
    except (ValueError, FileNotFoundError, PermissionError) as error:
        print(f"rdmf-train: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


def evaluate_checkpoint(checkpoint: str, args: TrainingArguments) -> dict:
    """Predictions file + official metrics of a saved checkpoint on ``args``' eval split."""
    check_before_training(args)
    accelerator = Accelerator()
    model = RDMFForMomentRetrieval.from_pretrained(checkpoint)
    eval_set = build_dataset(args, "eval", model.config, read_model_feature_signatures(checkpoint))
    if eval_set is None:
        raise ValueError(
            "nothing to evaluate: give --eval_annotations (or --data_root for YouTube Highlights)"
        )
    model, loader = accelerator.prepare(model, build_loader(eval_set, args, shuffle=False))
    predictions, references = run_evaluation(model, loader, accelerator, args)
    metrics = {}
    if accelerator.is_main_process:
        metrics = compute_metrics(args.dataset, predictions, references, args.eval_annotations)
        write_jsonl(Path(args.output_dir) / "preds.jsonl", predictions)
        (Path(args.output_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def evaluate_main(argv: list[str] | None = None) -> int:
    parser = build_train_parser()
    parser.prog = "rdmf-evaluate"
    parser.description = "Evaluate a checkpoint: predictions file + official metrics in --output_dir."
    parser.add_argument("--checkpoint", required=True, help="a folder written by save_pretrained")
    try:
        namespace = parser.parse_args(argv)
        metrics = evaluate_checkpoint(namespace.checkpoint, arguments_from_namespace(namespace))
    except (ValueError, FileNotFoundError, PermissionError, OSError) as error:
        print(f"rdmf-evaluate: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(metrics, indent=2))
    return 0
