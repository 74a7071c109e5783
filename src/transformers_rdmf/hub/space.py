"""A folder that runs as a Gradio Space unchanged: ``rdmf app`` on a published checkpoint.

`write_space` writes ``README.md`` (the Space's header: ``sdk: gradio``, ``app_file: app.py``),
``app.py`` (three lines over `transformers_rdmf.app.build_app`), ``requirements.txt`` (this package's own
requirements and gradio's, pinned to the versions it is tested with), the checkpoint in ``checkpoint/``
and this library's source in ``transformers_rdmf/`` (it is not on PyPI, so the Space carries it; the
script's folder comes first on ``sys.path``, so the Space imports that copy).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import shutil
from pathlib import Path

from ..atomic import atomic_folder, check_output_paths
from .checkpoint import PublishError

GRADIO_REQUIREMENTS = ("gradio==6.31.*", "gradio-client==2.7.*")
APP_PY = '''"""The Space's app: the transformers_rdmf web page on the checkpoint in ./checkpoint (docs/app.md)."""

from pathlib import Path

from transformers_rdmf.app import build_app

demo = build_app(Path(__file__).resolve().parent / "checkpoint")

if __name__ == "__main__":
    demo.launch()
'''
HEADER = """---
title: {title}
emoji: 🎬
colorFrom: indigo
colorTo: pink
sdk: gradio
sdk_version: {gradio}
app_file: app.py
pinned: false
license: {license}
---

# {title}

Language-guided video moment retrieval with RDMF: upload a video (or its clip features), write one
query per line, and click a moment to play it. The page is `rdmf app` from `transformers_rdmf`, on the
checkpoint in `checkpoint/`.
"""


def write_space(
    checkpoint_dir: str | Path, space_dir: str | Path, *, title: str = "RDMF moment retrieval",
    license: str = "apache-2.0", overwrite: bool = False,
) -> Path:  # fmt: skip
    """Write the Space folder (see the module) for the checkpoint in ``checkpoint_dir``; returns it.

    Raises:
        PublishError: a ``space_dir`` that is or holds the checkpoint, or is not empty without ``overwrite``.
    """
    checkpoint_dir, space_dir = Path(checkpoint_dir), Path(space_dir)
    if not (checkpoint_dir / "config.json").is_file():
        raise PublishError(f"--space: no checkpoint (config.json) in {checkpoint_dir}")
    check_space_dir(space_dir, {"checkpoint": checkpoint_dir}, overwrite=overwrite)

    def fill(folder: Path) -> None:
        gradio = importlib.metadata.version("gradio") if _installed("gradio") else "6.31.0"
        (folder / "README.md").write_text(HEADER.format(title=title, gradio=gradio, license=license))
        (folder / "app.py").write_text(APP_PY)
        (folder / "requirements.txt").write_text(
            "\n".join([*package_requirements(), *GRADIO_REQUIREMENTS]) + "\n"
        )
        shutil.copytree(checkpoint_dir, folder / "checkpoint", ignore=shutil.ignore_patterns("__pycache__"))
        copy_library(folder / "transformers_rdmf")

    atomic_folder(space_dir, fill)
    return space_dir


def check_space_dir(space_dir: str | Path, inputs: dict, *, overwrite: bool = False) -> None:
    """Refuse a ``--space`` folder that is a file, is, holds or lies inside one of ``inputs`` (flag to
    path), or is not empty without ``overwrite``: callable before anything else is written.

    Raises:
        PublishError: naming ``--space`` and the path.
    """
    space_dir = Path(space_dir)
    if space_dir.exists() and not space_dir.is_dir():
        raise PublishError(f"--space: {space_dir} is a file; give a folder to write the Space into")
    try:
        check_output_paths({}, inputs, folders={"--space": space_dir})
    except ValueError as error:
        raise PublishError(str(error)) from None
    if space_dir.is_dir() and any(space_dir.iterdir()) and not overwrite:
        raise PublishError(f"--space: {space_dir} is not empty (pass --overwrite to replace it)")


def package_requirements() -> list[str]:
    """This package's install requirements (its metadata), without the optional extras."""
    requirements = importlib.metadata.requires("transformers_rdmf") or []
    return [r for r in requirements if "extra ==" not in r]


def copy_library(target: Path) -> None:
    """This library's source, with the presets where the installed package has them (``hub_configs``)."""
    package = Path(importlib.import_module("transformers_rdmf").__file__).parent
    presets = Path(importlib.import_module("transformers_rdmf.hub_configs").__file__).parent
    shutil.copytree(package, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if not (target / "hub_configs").is_dir():  # an editable install maps them from the repository's top
        shutil.copytree(presets, target / "hub_configs", ignore=shutil.ignore_patterns("__pycache__"))


def _installed(name: str) -> bool:
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


__all__ = ["write_space"]
