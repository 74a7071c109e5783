"""Writing files and folders atomically: a reader (or a crash) never sees half of one.

Everything the library writes for keeps goes through here: the CLI's PNG and JSON, feature files and
their manifests, checkpoint folders (``best/``, ``final/``) and the folders ``scripts/publish.py`` fills.
A file is written to a hidden temporary name beside it and renamed into place; a folder is filled as a
hidden sibling and swapped in, the old one kept until the new one is in place.
"""

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call ``write(temporary)`` on a temporary file beside ``path`` (same suffix), then rename it to ``path``.

    A failure in ``write`` leaves ``path`` as it was (absent, or the previous file) and no temporary behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(descriptor)
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | Path, value: Any, indent: int = 1) -> None:
    atomic_write_text(path, json.dumps(value, indent=indent) + "\n")


def atomic_folder(path: str | Path, fill: Callable[[Path], None]) -> None:
    """Call ``fill(staging)`` on a new hidden folder beside ``path``, then put it in place of ``path``.

    An existing ``path`` is renamed aside first and removed only once the new folder is in place, so a
    failure in ``fill`` leaves the old folder untouched, and a crash between the two renames leaves it
    under its hidden name (``.NAME.old-*``) rather than losing it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.new-"))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; a checkpoint or repository folder is not
        fill(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old-"))
        os.replace(path, old)  # replaces the empty placeholder folder
    os.replace(staging, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


__all__ = ["atomic_folder", "atomic_write", "atomic_write_json", "atomic_write_text"]
