"""`RDMFTrainingArguments`, the ``rdmf-train`` command line (typed from the dataclass by ``HfArgumentParser``),
the preset's ``training`` section checked against it, and the checks that stop a run before it starts."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import check_can_write_in
from ..dataset_specs import HIGHLIGHT_DATASETS, MOMENT_DATASETS, dataset_spec
from ..errors import usage_error_in_one_line
from ..presets import list_presets, read_preset, value_fits


@dataclass
class RDMFTrainingArguments:
    """Everything a run needs besides the model config; defaults follow the paper and Moment-DETR.

    Data (pick the fields of your dataset):
        dataset: ``qvhighlights``, ``charades_sta``, ``activitynet_captions``, ``tvsum``, ``youtube_highlights``
            or ``custom`` (your own data in the simple schema, ``docs/custom_data.md``).
        train_annotations / eval_annotations: unified jsonl files (moment datasets, TVSum).
        video_feature_dirs: one folder per stream, ``{vid}.npz`` with ``features`` (moment datasets).
        text_feature_dir: ``qid{qid}.npz`` with ``last_hidden_state`` (moment datasets).
        data_root: the TVSum / YouTube Highlights folder (features, ``splits.json``).
        audio: TVSum: read the PANN audio stream too (None: the preset's ``features.audio``); the config's
            ``video_feature_dim`` must be the total width (4096 with audio).
        splits_file: YouTube Highlights: a ``splits.json`` (per domain train/val lists) to use instead of
            ``data_root``'s, e.g. a fold of the train videos (`training.selection.fold_data_arguments`).
        domain: train and evaluate on one category (TVSum, YouTube Highlights).
        clip_length: seconds per feature row (moment datasets); default: the features' manifest for
            ``custom``, else the dataset's usual clip length.
        feature_set: a feature set (`data.FeatureSet`: a folder or Hub dataset id written by
            ``rdmf convert-features``) read instead of the feature folders (``video_feature_dirs`` and
            ``text_feature_dir``; for TVSum, ``data_root``'s features).
        feature_set_streams: its video streams to concatenate, in order; default: TVSum and YouTube
            Highlights ``i3d_rgb i3d_flow`` (and ``audio`` with ``audio``), otherwise every video stream.

    Output:
        output_dir: the run's folder (``best/``, ``final/``, ``checkpoints/``, ``logs/``, ``eval/``). One
            that holds a run is refused unless ``resume_from_checkpoint`` continues it or
            ``overwrite_output_dir`` replaces it whole (transformers' name).
        resume_from_checkpoint: a complete ``checkpoints/step_N`` (or ``last``) of a run to continue exactly.

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
    splits_file: str | None = None
    audio: bool | None = None
    domain: str | None = None
    clip_length: float | None = None
    feature_set: str | None = None
    feature_set_streams: list[str] = field(default_factory=list)
    learning_rate: float = 1e-4
    dynamics_learning_rate: float | None = None
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
    overwrite_output_dir: bool = False
    log_with: str = "csv"
    top_k_windows: int = 10
    nms_threshold: float | None = 0.7
    disable_progress_bar: bool = False
    cpu: bool = False


def check_before_training(args: RDMFTrainingArguments) -> None:
    """Stop at once, with a clear message, on what would otherwise fail mid-run."""
    dataset_spec(args.dataset)  # an unknown name stops here, listing the known ones
    for flag, given in data_paths(args).items():
        for path in given if isinstance(given, list) else [given]:
            if path is not None and not Path(path).exists():
                raise FileNotFoundError(f"{flag}: {path} does not exist")
    if (
        args.dataset in MOMENT_DATASETS
        and args.train_annotations
        and not (args.video_feature_dirs and args.text_feature_dir)
        and args.feature_set is None
    ):
        raise ValueError(
            f"{args.dataset} needs --video_feature_dirs and --text_feature_dir (or --feature_set)"
        )
    if args.data_root is None and (
        args.dataset == "youtube_highlights" or (args.dataset == "tvsum" and args.feature_set is None)
    ):
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
    check_flags_apply(args)
    check_numeric_ranges(args)
    check_can_write_in("--output_dir", args.output_dir)


def check_flags_apply(args: RDMFTrainingArguments) -> None:
    """Refuse a flag the dataset has no use for, rather than ignore it: ``--domain`` (one of the dataset's
    categories), ``--splits_file`` (YouTube Highlights), ``--audio`` (TVSum)."""
    domains = dataset_spec(args.dataset).domains
    if args.domain is not None and args.domain not in domains:
        known = (
            f"one of {', '.join(domains)}" if domains else f"no --domain: {args.dataset} has no categories"
        )
        raise ValueError(f"--domain {args.domain!r}: expected {known}")
    if args.splits_file is not None and args.dataset != "youtube_highlights":
        raise ValueError(f"--splits_file: YouTube Highlights' splits; --dataset {args.dataset} reads none")
    if args.audio and args.dataset != "tvsum":
        raise ValueError(f"--audio: TVSum's PANN audio stream; --dataset {args.dataset} has none here")


# field -> (lowest allowed, whether the lowest itself is allowed, what the value is); None fields are unset.
NUMERIC_RANGES = {
    "learning_rate": (0.0, True, "a learning rate"),
    "dynamics_learning_rate": (0.0, True, "a learning rate"),
    "weight_decay": (0.0, True, "a weight decay"),
    "batch_size": (1, True, "a batch size"),
    "num_epochs": (1, True, "an epoch count"),
    "max_steps": (1, True, "a step count"),
    "warmup_steps": (0, True, "a step count"),
    "max_grad_norm": (0.0, False, "a gradient norm"),
    "gradient_accumulation_steps": (1, True, "a step count"),
    "max_clips": (1, True, "a clip count"),
    "num_workers": (0, True, "a worker count"),
    "eval_every_epochs": (1, True, "an epoch count"),
    "early_stopping_patience": (1, True, "an evaluation count"),
    "save_state_every_steps": (1, True, "a step count"),
    "top_k_windows": (1, True, "a window count"),
    "clip_length": (0.0, False, "seconds per clip"),
    "seed": (0, True, "a seed"),
}


def check_numeric_ranges(args: RDMFTrainingArguments) -> None:
    """Every numeric argument finite and in its range (`NUMERIC_RANGES`); ``--nms_threshold`` in [0, 1]."""
    for name, (lowest, inclusive, meaning) in NUMERIC_RANGES.items():
        value = getattr(args, name)
        if value is None:
            continue
        if not math.isfinite(value) or value < lowest or (value == lowest and not inclusive):
            bound = f">= {lowest}" if inclusive else f"> {lowest}"
            raise ValueError(f"--{name} {value}: expected {meaning} {bound}")
    if args.nms_threshold is not None and not 0 <= args.nms_threshold <= 1:
        raise ValueError(f"--nms_threshold {args.nms_threshold}: expected an IoU threshold in [0, 1]")


def data_paths(args: RDMFTrainingArguments) -> dict[str, str | list[str] | None]:
    """The data a run reads, by flag (None: not given): checked to exist, and never an output."""
    return {
        "--train_annotations": args.train_annotations,
        "--eval_annotations": args.eval_annotations,
        "--video_feature_dirs": list(args.video_feature_dirs),
        "--text_feature_dir": args.text_feature_dir,
        "--data_root": args.data_root,
        "--splits_file": args.splits_file,
        # a folder (a Hub id is not a path: `data.FeatureSet` names it when it cannot be found)
        "--feature_set": args.feature_set if args.feature_set and Path(args.feature_set).exists() else None,
    }


def use_cpu(args: RDMFTrainingArguments) -> bool:
    """CPU when asked, or when launched as several processes on a machine without CUDA (`launched_on_cpu`)."""
    return args.cpu or launched_on_cpu()


def launched_on_cpu() -> bool:
    """Whether this is one of several launched processes on a machine without CUDA.

    ``accelerate launch --multi_gpu --num_processes N`` (or ``torchrun --nproc_per_node N``) there must
    run with ``cpu=True`` (the gloo backend); Accelerate alone would run N unrelated processes.
    """
    import torch

    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return several and not torch.cuda.is_available()


def parse_overrides(pairs: list[str], flag: str = "--set") -> dict[str, Any]:
    """``["hidden_size=128", "fusion_type=cross_attention"]`` -> typed values (JSON where it parses);
    a pair without ``=`` is a ``ValueError`` naming ``flag``."""
    overrides = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"{flag} expects key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key] = raw
    return overrides


# Keys a preset's ``training`` section may hold beside the `RDMFTrainingArguments` fields: facts about the
# protocol that no run argument carries (read by publishing).
PRESET_PROTOCOL_KEYS = {
    "per_domain": "one model per category (TVSum, YouTube Highlights), as their protocols"
}
COMMAND_LINE_ONLY = ("config_overrides",)  # given as --set KEY=VALUE


def command_line_fields() -> list[dataclasses.Field]:
    """The `RDMFTrainingArguments` fields that are flags of their own (``--name``)."""
    return [f for f in dataclasses.fields(RDMFTrainingArguments) if f.name not in COMMAND_LINE_ONLY]


def build_train_parser():
    """``rdmf-train``'s parser: one flag per `RDMFTrainingArguments` field, typed from its annotation by
    ``transformers.HfArgumentParser`` (``--name`` and ``--name-with-dashes``), plus ``--set KEY=VALUE``.

    A flag not given is None in the namespace, so that `arguments_from_namespace` can put the flags given
    on top of the preset's ``training`` section.
    """
    from transformers import HfArgumentParser  # here, so that a sweep's --report loads no transformers

    hints = typing.get_type_hints(RDMFTrainingArguments)
    view = dataclasses.make_dataclass(
        "TrainingCommandLine",
        [(f.name, _flag_type(hints[f.name]), _unset_default(f)) for f in command_line_fields()],
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
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return usage_error_in_one_line(parser)


def _flag_type(hint):
    """The type HfArgumentParser reads a field's flag with: a boolean, optional or not, is a switch."""
    return bool if hint in (bool, bool | None) else hint


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
    """The preset's ``training`` values that are `RDMFTrainingArguments` fields; any key that is neither such a
    field nor a protocol key (`PRESET_PROTOCOL_KEYS`) is an error naming it."""
    check_training_values(training, source, key_prefix="training.", also_allowed=PRESET_PROTOCOL_KEYS)
    fields = {f.name for f in command_line_fields()}
    return {key: value for key, value in training.items() if key in fields}


def check_training_values(
    values: dict, source: str, key_prefix: str = "", also_allowed: Iterable[str] = ()
) -> None:
    """Each key of ``values`` an `RDMFTrainingArguments` flag field (or in ``also_allowed``) and each value of
    its field's type (`value_fits`); else a ``ValueError`` naming ``source`` and the key.

    ``source`` is where the values came from (``--preset NAME``, ``--train``), ``key_prefix`` how a key is
    written there (``training.`` in a preset).
    """
    fields = {f.name for f in command_line_fields()}
    unknown = sorted(set(values) - fields - set(also_allowed))
    if unknown:
        extra = f" and {sorted(also_allowed)}" if also_allowed else ""
        raise ValueError(
            f"{source}: unknown training key(s) {unknown}; expected RDMFTrainingArguments fields "
            f"({', '.join(sorted(fields))}){extra}"
        )
    hints = typing.get_type_hints(RDMFTrainingArguments)
    for key, value in values.items():
        if key in fields and not value_fits(value, hints[key]):
            expected = hints[key].__name__ if isinstance(hints[key], type) else str(hints[key])
            raise ValueError(
                f"{source}: {key_prefix}{key} is {value!r}; expected {expected.replace('NoneType', 'None')}"
            )


def arguments_from_namespace(namespace: argparse.Namespace) -> RDMFTrainingArguments:
    """The dataclass defaults, then the preset's ``training`` section, then the flags given."""
    given = {f.name: getattr(namespace, f.name, None) for f in command_line_fields()}  # None: not given
    given = {name: value for name, value in given.items() if value is not None}
    name = given.get("preset", RDMFTrainingArguments.__dataclass_fields__["preset"].default)
    try:
        preset = read_preset(name)
    except ValueError as error:
        raise ValueError(f"--preset: {error}") from None
    from ..configuration_rdmf import check_config_keys  # transformers: only for a run, never for --report

    check_config_keys(preset["config"], f"--preset {name}")
    values = {**check_preset_training(preset.get("training", {}), f"--preset {name}"), **given}
    values["config_overrides"] = parse_overrides(getattr(namespace, "set", []))
    return RDMFTrainingArguments(**values)


# Arguments that say how a run was continued or shown, not what it trained: left out of a rebuilt command.
NOT_REPLAYED = ("resume_from_checkpoint", "disable_progress_bar", "overwrite_output_dir")


def command_line_for(values: dict[str, Any]) -> list[str]:
    """The ``rdmf-train`` arguments that give back ``values`` (an `RDMFTrainingArguments` as a dict, as
    ``training_args.json`` holds it) through `build_train_parser` and `arguments_from_namespace`.

    Only the fields that differ from what the dataclass and the preset's ``training`` section give are
    written; a boolean is ``--name`` or ``--name false``. The result is parsed back and compared, so a
    field the command line cannot express (None where the preset sets a value) is a ``ValueError`` naming
    it, never a command that trains something else. Fields in `NOT_REPLAYED` keep their defaults.
    """
    known = {f.name for f in dataclasses.fields(RDMFTrainingArguments)}
    wanted = {key: value for key, value in values.items() if key in known and key not in NOT_REPLAYED}
    argv = [
        "--output_dir",
        str(wanted["output_dir"]),
        "--preset",
        str(wanted.get("preset", "")) or _DEFAULT_PRESET,
    ]
    base = dataclasses.asdict(arguments_from_namespace(build_train_parser().parse_args(argv)))
    for name, value in wanted.items():
        if name in ("output_dir", "preset", "config_overrides") or value == base[name]:
            continue
        if value is None:
            raise ValueError(
                f"{name}=None cannot be given on the command line over the preset's {base[name]!r}"
            )
        argv += _flag_tokens(name, value)
    for key, value in wanted.get("config_overrides", {}).items():
        argv += ["--set", f"{key}={json.dumps(value)}"]
    replayed = dataclasses.asdict(arguments_from_namespace(build_train_parser().parse_args(argv)))
    differing = sorted(name for name, value in wanted.items() if replayed[name] != value)
    if differing:
        raise ValueError(f"the command line cannot give back {differing}: {argv}")
    return argv


_DEFAULT_PRESET = RDMFTrainingArguments.__dataclass_fields__["preset"].default


def _flag_tokens(name: str, value: Any) -> list[str]:
    """``--name VALUE`` in the form the parser reads back (floats by ``repr``, lists as several values)."""
    if isinstance(value, bool):
        return [f"--{name}"] if value else [f"--{name}", "false"]
    if isinstance(value, list):
        return [f"--{name}", *map(str, value)]
    return [f"--{name}", str(value)]
