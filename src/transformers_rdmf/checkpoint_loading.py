"""Loading a saved RDMF checkpoint for the commands, checked before and after: every way a folder can be
damaged is one sentence naming the file, never a traceback or a model that computes made-up numbers.

Before ``from_pretrained``: ``config.json`` parses and its fields validate (`read_checkpoint_config`);
the weights are safetensors (a pickle-only checkpoint is refused, since unpickling can run code); the
safetensors header is whole; every tensor's shape fits the config. After: every weight is finite.
Unknown keys in ``config.json`` (a misspelt ``hiden_size``) are a warning naming them.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import torch
from transformers import PretrainedConfig

from .configuration_rdmf import SAVED_KEYS, RDMFConfig
from .errors import one_line
from .modeling_rdmf import RDMFForMomentRetrieval

WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "training_args.bin")


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be used: the message names the file and what is wrong."""


def rdmf_fields() -> set[str]:
    """The fields RDMFConfig itself defines (not those of every transformers config)."""
    return {f.name for f in dataclasses.fields(RDMFConfig)} - {
        f.name for f in dataclasses.fields(PretrainedConfig)
    }


def read_checkpoint_config(folder: str | Path, flag: str = "--model") -> RDMFConfig:
    """``folder/config.json`` as a validated `RDMFConfig`; warns of unknown keys and of RDMF fields the file
    lacks (their defaults are used)."""
    return _config_and_lacking_fields(folder, flag)[0]


def _config_and_lacking_fields(folder: str | Path, flag: str) -> tuple[RDMFConfig, list[str]]:
    """`read_checkpoint_config`, and the RDMF fields ``config.json`` lacks.

    Raises:
        FileNotFoundError: no ``config.json``. CheckpointError: not JSON, or a field fails validation.
    """
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{flag}: no saved model (config.json) in {folder}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: not valid JSON ({error}); the file is truncated or damaged") from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: expected a JSON object of config fields, got {type(raw).__name__}")
    known = {f.name for f in dataclasses.fields(RDMFConfig)} | SAVED_KEYS
    unknown = sorted(set(raw) - known)
    if unknown:
        warnings.warn(f"{path}: unknown config key(s) {unknown} are ignored (misspelt?)", stacklevel=2)
    try:
        config = RDMFConfig.from_pretrained(folder)
    except Exception as error:  # strict-dataclass validation, ValueError from the config's own checks
        raise CheckpointError(f"{path}: {one_line(error)}") from None
    lacking = sorted(rdmf_fields() - set(raw))
    if lacking:
        warnings.warn(f"{path}: lacks {lacking}; their defaults are used", stacklevel=2)
    return config, lacking


def check_weights_file(folder: str | Path) -> Path:
    """The checkpoint's safetensors file (or index); a folder with only pickle weights is refused.

    Raises:
        CheckpointError: pickle-only. FileNotFoundError: no weights at all.
    """
    folder = Path(folder)
    for name in WEIGHTS:
        if (folder / name).is_file():
            return folder / name
    pickled = [name for name in PICKLE_WEIGHTS if (folder / name).is_file()]
    if pickled:
        raise CheckpointError(
            f"{folder}: holds only {pickled[0]}, a pickle file; this library loads safetensors only, because "
            "unpickling can run code. Convert it on a machine where you trust the file: load it there and "
            "save_pretrained(folder) (which writes model.safetensors)"
        )
    raise FileNotFoundError(f"{folder}: no model.safetensors")


def saved_shapes(weights: Path) -> dict[str, list[int]]:
    """Tensor name -> shape from the safetensors header(s), which also proves each file is whole."""
    from safetensors import SafetensorError, safe_open

    files = [weights]
    if weights.name.endswith(".index.json"):
        try:
            index = json.loads(weights.read_text())
            files = [weights.parent / name for name in sorted(set(index["weight_map"].values()))]
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
            raise CheckpointError(f"{weights}: not a safetensors index ({one_line(error)})") from None
    shapes = {}
    for path in files:
        try:
            with safe_open(str(path), framework="pt") as handle:
                shapes.update({key: list(handle.get_slice(key).get_shape()) for key in handle.keys()})
        except (SafetensorError, OSError) as error:
            raise CheckpointError(f"{path}: not a readable safetensors file ({one_line(error)}); "
                                  "the file is truncated or damaged") from None  # fmt: skip
    return shapes


def check_shapes(weights: Path, config: RDMFConfig, model_class: type, lacking: list[str] = ()) -> None:
    """Every saved tensor the model has must have the model's shape under ``config`` (``lacking``: the
    fields ``config.json`` lacks, named in the message as a likely cause)."""
    with torch.device("meta"):
        expected = {key: list(value.shape) for key, value in model_class(config).state_dict().items()}
    wrong = [
        f"{key} {shape} (config gives {expected[key]})"
        for key, shape in saved_shapes(weights).items()
        if key in expected and expected[key] != shape
    ]
    if wrong:
        hint = f"; config.json lacks {lacking}, so their defaults were used" if lacking else ""
        raise CheckpointError(
            f"{weights}: {len(wrong)} tensor(s) do not fit {weights.parent / 'config.json'}{hint}: "
            f"{', '.join(wrong[:3])}{' ...' if len(wrong) > 3 else ''}"
        )


def check_finite(model: torch.nn.Module, weights: Path) -> None:
    """Refuse weights holding NaN or infinity: every output would be made up."""
    bad = [name for name, value in model.state_dict().items() if value.is_floating_point() and not torch.isfinite(value).all()]  # fmt: skip
    if bad:
        raise CheckpointError(
            f"{weights}: {len(bad)} tensor(s) hold NaN or infinity ({', '.join(bad[:3])}"
            f"{' ...' if len(bad) > 3 else ''}); the file is damaged or the training diverged"
        )


def load_checkpoint_model(
    folder: str | Path,
    flag: str = "--model",
    model_class: type = RDMFForMomentRetrieval,
    config: RDMFConfig | None = None,
    strict: bool = False,
):
    """A checked ``model_class.from_pretrained(folder)`` in eval mode (see the module's docstring).

    Args:
        folder: a folder written by ``save_pretrained``. flag: the argument that named it, for messages.
        config: the config to build the model with (default: the folder's, `read_checkpoint_config`).
        strict: also refuse weights the model lacks or parameters the file lacks (publishing).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{flag}: no folder at {folder}")
    saved, lacking = _config_and_lacking_fields(folder, flag)
    config = saved if config is None else config
    weights = check_weights_file(folder)
    check_shapes(weights, config, model_class, lacking)
    model, info = model_class.from_pretrained(
        folder, config=config, use_safetensors=True, output_loading_info=True
    )
    problems = {key: sorted(map(str, info.get(key) or [])) for key in ("missing_keys", "unexpected_keys")}
    problems = {key: value for key, value in problems.items() if value}
    if strict and problems:
        raise CheckpointError(f"{weights}: the weights do not match {model_class.__name__}: {problems}")
    check_finite(model, weights)
    return model.eval()


__all__ = [
    "CheckpointError",
    "check_finite",
    "check_weights_file",
    "load_checkpoint_model",
    "read_checkpoint_config",
    "saved_shapes",
]
