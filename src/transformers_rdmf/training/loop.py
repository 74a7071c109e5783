"""The training loop: model and config, optimiser and schedule, epochs, evaluation, checkpoints, ``rdmf-train``."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import set_seed
from timm.utils import ModelEmaV3
from tqdm.auto import tqdm
from transformers import get_scheduler

from ..atomic import atomic_folder, atomic_write_json
from ..checkpoint_loading import load_checkpoint_model, read_checkpoint_config
from ..configuration_rdmf import HEADS, RDMFConfig
from ..dataset_specs import dataset_spec
from ..errors import run_command, wants_debug
from ..feature_manifest import (
    read_model_feature_signatures,
)
from ..modeling_rdmf import RDMFForMomentRetrieval, RDMFReactionDiffusionFusion, RDMFTemporalDiffusion
from ..presets import preset_source
from .arguments import (
    RDMFTrainingArguments,
    arguments_from_namespace,
    build_train_parser,
    check_before_training,
    use_cpu,
)
from .checkpoints import check_output_dir, check_resume_checkpoint, remove_run, save_training_state
from .data import build_dataset, build_loader, write_training_feature_signatures
from .evaluation import check_early_stopping_metric, metrics_and_per_video_scores, run_evaluation, write_jsonl
from .tracking import (
    CSVTracker,
    TrainerState,
    csv_log_path,
    epoch_eval_path,
    per_video_scores_path,
    transformers_progress_bars_off,
)


def build_config(args: RDMFTrainingArguments) -> RDMFConfig:
    known = {f.name for f in dataclasses.fields(RDMFConfig)}
    unknown = sorted(set(args.config_overrides) - known)
    if unknown:
        raise ValueError(f"--set: unknown config field(s) {unknown}; known: {', '.join(sorted(known))}")
    return RDMFConfig.from_preset(args.preset, **args.config_overrides)


def load_model(args: RDMFTrainingArguments, config: RDMFConfig) -> tuple[RDMFForMomentRetrieval, dict | None]:
    """The model to train and the feature signatures it was trained on (None for a fresh model).

    A fresh model from ``config`` (the preset with ``--set``), or ``--model_name_or_path``'s checkpoint
    with ``--set`` applied to its config (validated again), after checking that it reads features as
    wide as ``config``. The feature-manifest check of moment datasets needs a local folder; a Hub id
    loads without it.
    """
    if args.model_name_or_path is None:
        return RDMFForMomentRetrieval(config), None
    where, flag = args.model_name_or_path, "--model_name_or_path"
    local = Path(
        where
    ).is_dir()  # a folder is loaded checked (checkpoint_loading); a Hub id as transformers does
    try:
        saved = read_checkpoint_config(where, flag) if local else RDMFConfig.from_pretrained(where)
    except OSError as error:
        raise FileNotFoundError(f"{flag}: cannot load an RDMF checkpoint from {where} ({error})") from None
    except ValueError as error:
        raise ValueError(f"{flag}: the config of {where} is invalid ({error})") from None
    for name in ("video_feature_dim", "text_feature_dim"):
        if getattr(saved, name) != getattr(config, name):
            raise ValueError(
                f"{flag}: {where} has {name}={getattr(saved, name)}, but preset {args.preset!r} "
                f"(with --set) reads features of width {getattr(config, name)}; use the preset of the features "
                "the checkpoint was trained on"
            )
    try:  # the checkpoint's config with --set on top, through the constructor, which validates it
        updated = RDMFConfig.from_dict({**saved.to_dict(), **args.config_overrides})
    except ValueError as error:
        raise ValueError(f"--set on the config of {where}: {error}") from None
    try:
        if local:
            model = load_checkpoint_model(where, flag, config=updated)
        else:
            model = RDMFForMomentRetrieval.from_pretrained(where, config=updated)
    except OSError as error:
        raise FileNotFoundError(f"{flag}: cannot load the weights of {where} ({error})") from None
    except (RuntimeError, ValueError) as error:
        changed = sorted(k for k, v in args.config_overrides.items() if getattr(saved, k, None) != v)
        raise ValueError(
            f"{flag}: the weights of {where} do not fit its config after --set {changed} "
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
        **{head: spans and on for head, on in config.moment_losses_on().items()},
    }
    return [head for head in HEADS if fitted[head] or head in (start or [])]


def save_model(
    folder: str, model, accelerator: Accelerator, args: RDMFTrainingArguments, metrics: dict, epoch: int
) -> None:
    """``save_pretrained`` into ``output_dir/folder`` (``best`` or ``final``), with the preset, the
    arguments, the feature signatures and the metrics of that epoch beside it; written as a whole
    (`atomic.atomic_folder`), so a crash mid-save leaves the previous folder, never half of one."""
    if not accelerator.is_main_process:
        return

    def fill(target: Path) -> None:
        accelerator.unwrap_model(model).save_pretrained(target)
        (target / "preset.json").write_text(preset_source(args.preset)[1])
        atomic_write_json(target / "training_args.json", dataclasses.asdict(args), indent=2)
        write_training_feature_signatures(target, args, accelerator.unwrap_model(model).config)
        atomic_write_json(
            target / "metrics.json", {"epoch": epoch, "dataset": args.dataset, **metrics}, indent=2
        )

    atomic_folder(Path(args.output_dir) / folder, fill)


def train(args: RDMFTrainingArguments) -> dict:
    """Train; returns ``{"best_metric", "best_epoch", "global_step", "last_metrics"}``."""
    with transformers_progress_bars_off(args.disable_progress_bar):
        return run_training(args)


def run_training(args: RDMFTrainingArguments) -> dict:
    """`train`'s body (transformers' own progress bars already set)."""
    check_before_training(args)
    old_run = check_output_dir(args)
    if args.resume_from_checkpoint is not None:
        check_resume_checkpoint(args.resume_from_checkpoint)
    config = build_config(args)
    resume = args.resume_from_checkpoint is not None
    accelerator = Accelerator(
        cpu=use_cpu(args),
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=[CSVTracker(csv_log_path(args.output_dir).parent, resume_from=args.resume_from_checkpoint)]
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
    check_early_stopping_metric(args, eval_set)
    if accelerator.is_main_process:  # --overwrite_output_dir: the old run goes whole, once the new one's
        remove_run(old_run)  # model and data have loaded, and before anything new is written
    accelerator.wait_for_everyone()
    train_loader = build_loader(train_set, args, shuffle=True)
    eval_loader = build_loader(eval_set, args, shuffle=False) if eval_set is not None else None
    freeze_decoder_without_moment_loss(model)
    optimizer = torch.optim.AdamW(
        optimizer_parameter_groups(model, args.dynamics_learning_rate),
        lr=args.learning_rate,
        weight_decay=args.weight_decay,
    )
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
    save_training_state(accelerator, args.output_dir, "last")
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


def dynamics_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The dynamics' scalar coefficients: the temporal diffusion's ``D`` (eqs. 1-3) and the reaction's
    ``D_u, D_v, F, k`` (eqs. 5-8), as raw (unconstrained) parameters; none in an ablation without them."""
    found = []
    for module in model.modules():
        if isinstance(module, RDMFTemporalDiffusion):
            found.append(module.raw_coefficient)
        elif isinstance(module, RDMFReactionDiffusionFusion):
            found += module.reaction_parameters()
    return found


def optimizer_parameter_groups(model: torch.nn.Module, dynamics_learning_rate: float | None) -> list[dict]:
    """AdamW's parameter groups: one of every parameter; with ``dynamics_learning_rate``, the dynamics'
    coefficients (`dynamics_parameters`) in a second group at that rate. At the shared rate (1e-3 or less)
    Adam moves a raw coefficient by about the rate per step, so a few hundred steps leave ``D`` near its
    initial value; a rate of its own lets each dataset learn how far its clips diffuse."""
    if dynamics_learning_rate is None:
        return [{"params": list(model.parameters())}]
    dynamics = dynamics_parameters(model)
    ids = {id(parameter) for parameter in dynamics}
    rest = [parameter for parameter in model.parameters() if id(parameter) not in ids]
    return [{"params": rest}, {"params": dynamics, "lr": dynamics_learning_rate}]


def freeze_decoder_without_moment_loss(model) -> None:
    """Highlight-only training (moment and IoU weights 0) runs the decoder without autograd, so the decoder and
    its query embeddings get no gradient: freeze them, as DistributedDataParallel wants every trained
    parameter to take part in the loss. They were trained by zero gradients before (weight decay only)."""
    if not model.moment_loss_on:
        model.decoder.requires_grad_(False)
        model.query_embeddings.requires_grad_(False)


@dataclass
class TrainingLoop:
    """One epoch of optimisation steps, with logging and periodic state saving."""

    accelerator: Accelerator
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    state: TrainerState
    args: RDMFTrainingArguments
    total_steps: int
    progress: Any
    ema: ModelEmaV3 | None = None

    def run_epoch(self, train_loader) -> bool:
        """Train over the rest of the current epoch; False when ``total_steps`` was reached before its end."""
        from ..data import random_temporal_crop

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
            save_training_state(accelerator, self.args.output_dir, f"step_{state.global_step}")


def evaluate_epoch(
    model, eval_loader, accelerator, args: RDMFTrainingArguments, state: TrainerState, metric_name: str
) -> dict:
    predictions, references = run_evaluation(model, eval_loader, accelerator, args)
    metrics = {}
    if accelerator.is_main_process:
        metrics, per_video = metrics_and_per_video_scores(
            args.dataset, predictions, references, args.eval_annotations
        )
        write_jsonl(epoch_eval_path(args.output_dir, state.epoch, "preds.jsonl"), predictions)
        atomic_write_json(epoch_eval_path(args.output_dir, state.epoch, "metrics.json"), metrics, indent=2)
        if per_video is not None:
            atomic_write_json(per_video_scores_path(args.output_dir, state.epoch), per_video, indent=1)
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


def should_stop_early(args: RDMFTrainingArguments, state: TrainerState) -> bool:
    patience = args.early_stopping_patience
    return patience is not None and state.evaluations_without_improvement >= patience


def broadcast_object(value):
    """``value`` of the main process, on every process."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        holder = [value]
        torch.distributed.broadcast_object_list(holder, src=0)
        return holder[0]
    return value


def train_main(argv: list[str] | None = None) -> int:
    """``rdmf-train``: one line and exit 2 on a usage error (`errors.run_command`)."""

    def work() -> None:
        result = train(arguments_from_namespace(build_train_parser().parse_args(argv)))
        print(json.dumps(result, allow_nan=False))

    return run_command("rdmf-train", work, debug=wants_debug(argv))
