"""Named presets: the one place that finds and reads them.

A preset is a JSON file ``{"description", "config": {...}, "features": {...}, "training": {...}}``. The
named ones live in the repository's top-level ``hub_configs/`` folder, which every install carries as the
subpackage ``transformers_rdmf.hub_configs`` (``setup.cfg`` maps the folder there), so an editable install,
``pip install .`` and a wheel all find them the same way; nothing is read from the source tree. Users may
also pass the path of any preset JSON (a checkpoint's ``preset.json``, for one).

Standard library only: this module is imported by ``configuration_rdmf.py``, which ``save_pretrained``
copies into checkpoints for ``trust_remote_code``; there, without the package, no named preset exists.
"""

import importlib.resources
import json
import types
import typing
from pathlib import Path
from typing import Any

PRESETS_PACKAGE = "transformers_rdmf.hub_configs"


def presets_folder():
    """The installed presets folder (an ``importlib.resources`` traversable), or None without the package."""
    try:
        return importlib.resources.files(PRESETS_PACKAGE)
    except ModuleNotFoundError:
        return None


def list_presets() -> list[str]:
    """Names of the named presets, sorted."""
    folder = presets_folder()
    if folder is None:
        return []
    return sorted(
        entry.name.removesuffix(".json") for entry in folder.iterdir() if entry.name.endswith(".json")
    )


def preset_source(name_or_path: str | Path) -> tuple[str, str]:
    """Where a preset comes from and its JSON text: ``(description of the source, text)``.

    Raises:
        ValueError: no preset of that name and no such JSON file; the message lists the known names.
    """
    text = str(name_or_path)
    if text.endswith(".json"):
        path = Path(text)
        if not path.is_file():
            raise ValueError(f"preset file not found: {path}")
        return str(path), path.read_text()
    folder = presets_folder()
    entry = folder / f"{text}.json" if folder is not None else None
    if entry is None or not entry.is_file():
        known = ", ".join(list_presets()) or "(none installed)"
        raise ValueError(
            f"unknown preset {text!r} (neither an installed preset nor a .json path); known presets: {known}"
        )
    return f"preset {text!r}", entry.read_text()


def read_preset(name_or_path: str | Path) -> dict:
    """The preset as a dict, by name or path (see `preset_source`).

    Raises:
        ValueError: unknown name, missing file, or text that is not a JSON object with a ``config`` object.
    """
    source, text = preset_source(name_or_path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{source}: not valid JSON ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        raise ValueError(f'{source}: expected a JSON object with a "config" object')
    return data


def preset_name(name_or_path: str | Path, data: dict) -> str:
    """The name of the preset ``data`` read from ``name_or_path``: its ``name`` field, else the file stem
    (``custom`` for a checkpoint's ``preset.json``)."""
    if data.get("name"):
        return str(data["name"])
    stem = Path(str(name_or_path)).name.removesuffix(".json")
    return "custom" if stem == "preset" else stem


def value_fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value has the type a field is annotated with (``int``, ``float | None``, ``list[str]``, ...);
    an integer fits a float, a boolean fits only a boolean."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        origin = typing.get_origin(option)
        if option is type(None) and value is None:
            return True
        if origin is list and isinstance(value, list):
            (item,) = typing.get_args(option)
            return all(value_fits(entry, item) for entry in value)
        if option is bool and isinstance(value, bool):
            return True
        if isinstance(value, bool):
            continue
        if (
            option is float
            and isinstance(value, (int, float))
            or option in (int, str)
            and isinstance(value, option)
        ):
            return True
    return False


__all__ = ["PRESETS_PACKAGE", "list_presets", "preset_name", "preset_source", "read_preset", "value_fits"]
