"""Writing files and folders atomically: a reader (or a crash) never sees half of one.

Everything the library writes for keeps goes through here: the CLI's plots and JSON, feature files and
their manifests, checkpoint folders (``best/``, ``final/``) and the folders ``scripts/publish.py`` fills.
A file is written to a hidden temporary name beside it and renamed into place; a folder is filled as a
hidden sibling and swapped in, the old one kept until the new one is in place. Files and folders get the
modes the user's umask gives a new file (``mkstemp`` alone would make them private), and JSON is strict:
NaN or infinity is an error, never a bare ``NaN`` token that strict readers reject.
"""

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
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
        os.chmod(temporary, 0o666 & ~current_umask())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | Path, value: Any, indent: int = 1) -> None:
    """``value`` as strict JSON: a NaN or infinity anywhere raises ``ValueError`` before anything is written."""
    atomic_write_text(path, json.dumps(value, indent=indent, allow_nan=False) + "\n")


def figure_format(path: str | Path) -> str:
    """The image format a figure path names by its suffix (``plot.pdf``: ``"pdf"``); PNG without one."""
    return Path(path).suffix[1:].lower() or "png"


def writable_figure_formats() -> list[str]:
    """The formats matplotlib writes here: its list, less ``pgf`` where its TeX program is missing."""
    import matplotlib
    from matplotlib.backend_bases import FigureCanvasBase

    formats = set(FigureCanvasBase.get_supported_filetypes())
    if shutil.which(matplotlib.rcParams["pgf.texsystem"]) is None:
        formats.discard("pgf")
    return sorted(formats)


def check_figure_path(flag: str, path: str | Path | None) -> None:
    """Before any work: refuse a figure path whose suffix names no format matplotlib writes (``.txt``),
    which would otherwise fail only after the work, or be written as another format than it says.

    Raises:
        ValueError: naming ``flag``, the path and the formats matplotlib writes.
    """
    if path is None:
        return
    formats = writable_figure_formats()
    if figure_format(path) not in formats:
        raise ValueError(
            f"{flag} {path}: the suffix names the image format; expected one of "
            f"{', '.join('.' + name for name in formats)} (no suffix: PNG)"
        )


def atomic_savefig(figure: Any, path: str | Path, dpi: int) -> None:
    """A matplotlib ``figure`` written atomically to ``path``, in the format its suffix names (PNG without
    one: the temporary file's random name must not be read as a format; see `check_figure_path`)."""
    atomic_write(path, lambda temporary: figure.savefig(temporary, dpi=dpi, format=figure_format(path)))


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
        staging.chmod(0o777 & ~current_umask())  # mkdtemp makes it private; a checkpoint folder is not
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


def check_output_paths(
    files: Mapping[str, str | Path | None],
    inputs: Mapping[str, str | Path | Iterable[str | Path] | None],
    folders: Mapping[str, str | Path | None] | None = None,
) -> None:
    """Before anything is written: refuse an output that is, or lies inside, an input, an output file
    that is a folder, and two outputs at one path. Every argument maps a flag (``--json``) to its path(s).

    An output *folder* may not hold an input either (filling it would replace the input). Paths are compared
    resolved, so ``./a/../gt.jsonl`` is ``gt.jsonl``.

    Raises:
        ValueError: naming both flags and the path.
    """
    folders = folders or {}
    named_inputs = [
        (flag, Path(p).resolve())
        for flag, value in inputs.items()
        if value is not None
        for p in ([value] if isinstance(value, (str, Path)) else value)
    ]
    outputs = [(flag, Path(value).resolve(), kind) for kind, given in (("file", files), ("folder", folders))
               for flag, value in given.items() if value is not None]  # fmt: skip
    for flag, path, kind in outputs:
        if kind == "file" and path.is_dir():
            raise ValueError(f"{flag}: {path} is a folder; give the path of a file to write")
        if kind == "file" and path.exists() and not path.is_file():  # /dev/null: a rename would replace it
            raise ValueError(f"{flag}: {path} is not a regular file; give the path of a file to write")
        for input_flag, source in named_inputs:
            if path == source or source in path.parents or (kind == "folder" and path in source.parents):
                raise ValueError(
                    f"{flag} {path} would overwrite {input_flag} {source}; write the output elsewhere"
                )
    for index, (flag, path, _) in enumerate(outputs):
        for other, other_path, _ in outputs[index + 1 :]:
            if path == other_path:
                raise ValueError(f"{flag} and {other} are both {path}; give each output its own path")


def check_can_write_in(flag: str, folder: str | Path) -> None:
    """Before any work: make ``folder`` (with its parents) and write and remove a file in it, so that an
    output that cannot be written stops at once; a ``PermissionError`` naming ``flag`` otherwise."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write_test_{os.getpid()}"  # one per process: several may check at once
        probe.write_text("ok")
        probe.unlink(missing_ok=True)
    except OSError as error:
        raise PermissionError(f"{flag}: cannot write to {folder} ({error})") from None


def check_not_replacing(
    files: Mapping[str, str | Path | None], overwrite: bool, flag: str = "--overwrite"
) -> None:
    """Before anything is written: refuse an output file that exists, unless ``overwrite`` (the user's
    ``flag``) asks to replace it. ``files`` maps a flag (``--json``) to its path.

    Raises:
        ValueError: naming the flag, the path and ``flag``.
    """
    if overwrite:
        return
    for name, value in files.items():
        if value is not None and Path(value).exists():
            raise ValueError(f"{name}: {value} exists; pass {flag} to replace it, or write elsewhere")


__all__ = [
    "atomic_folder",
    "atomic_savefig",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "check_can_write_in",
    "check_figure_path",
    "check_not_replacing",
    "check_output_paths",
    "current_umask",
    "figure_format",
]
