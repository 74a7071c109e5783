"""Training-state checkpoints written whole or not at all, resume that refuses a partial one, and the
output folder a new run may use.

``accelerator.save_state`` writes into ``checkpoints/.NAME.partial`` (every process its own random state);
only when all processes are done does the main process record the files in ``complete.json`` and rename
the folder to ``checkpoints/NAME``. A crash at any point before leaves no ``checkpoints/NAME`` (or the
previous one), so ``--resume_from_checkpoint`` can only meet a partial folder if something else wrote it;
it is then refused, naming what is missing and the newest complete checkpoint beside it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..atomic import atomic_write_json, check_output_paths
from .arguments import data_paths
from .tracking import snapshot_csv_log

COMPLETE = "complete.json"
# What a run writes into its output folder; --overwrite_output_dir removes exactly these.
RUN_ENTRIES = ("best", "final", "checkpoints", "logs", "eval")
# Set by a test to die inside a checkpoint save (after the state is written, before it is complete).
DIE_IN_SAVE = "RDMF_TEST_DIE_IN_SAVE"


def save_training_state(accelerator, output_dir: str | Path, name: str) -> Path:
    """``accelerator.save_state`` into ``output_dir/checkpoints/name``, atomically (see the module)."""
    folder = Path(output_dir) / "checkpoints"
    partial, final = folder / f".{name}.partial", folder / name
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)  # a crashed save's leftovers
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if os.environ.get(DIE_IN_SAVE) == name:
        os._exit(17)  # the test hook: a kill in the middle of the save
    if accelerator.is_main_process:
        snapshot_csv_log(output_dir, partial)  # a resume from here starts from the log as it is now
        files = sorted(path.name for path in partial.iterdir() if path.is_file())
        atomic_write_json(partial / COMPLETE, {"files": files})
        if final.exists():
            aside = folder / f".{name}.old"
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(final, aside)
            os.replace(partial, final)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(partial, final)
    accelerator.wait_for_everyone()
    return final


def missing_from_checkpoint(folder: Path) -> list[str]:
    """What ``folder`` lacks to be a complete training-state checkpoint (empty when complete)."""
    if not folder.is_dir():
        return ["the folder itself"]
    record = folder / COMPLETE
    if not record.is_file():
        return [COMPLETE]
    try:
        files = json.loads(record.read_text())["files"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return [f"a readable {COMPLETE}"]
    return [name for name in files if not (folder / name).is_file()]


def newest_complete_checkpoint(folder: Path) -> Path | None:
    """The complete ``step_N`` (or ``last``) checkpoint in ``folder`` with the highest step."""

    def step(path: Path) -> int:
        return int(path.name.removeprefix("step_")) if path.name.startswith("step_") else -1

    candidates = [p for p in folder.glob("*") if p.is_dir() and not p.name.startswith(".")]
    complete = [p for p in candidates if not missing_from_checkpoint(p)]
    return max(complete, key=lambda p: (p.name == "last", step(p)), default=None)


def check_resume_checkpoint(path: str | Path) -> None:
    """Refuse a ``--resume_from_checkpoint`` that is not a complete checkpoint, naming what it lacks and the
    newest complete one beside it."""
    folder = Path(path)
    missing = missing_from_checkpoint(folder)
    if not missing:
        return
    newest = newest_complete_checkpoint(folder.parent) if folder.parent.is_dir() else None
    hint = (
        f"; the newest complete checkpoint there is {newest}"
        if newest
        else "; there is no complete one beside it"
    )
    raise ValueError(
        f"--resume_from_checkpoint {folder}: not a complete checkpoint (missing {', '.join(missing)}){hint}"
    )


def check_output_dir(args) -> list[Path]:
    """The run entries already in ``--output_dir`` (`RUN_ENTRIES`) that this run will replace.

    A folder holding a run is refused unless ``--resume_from_checkpoint`` continues it or
    ``--overwrite_output_dir`` asks to replace it whole; the output folder may not be or hold an input.
    """
    output = Path(args.output_dir)
    inputs = data_paths(args)
    if args.model_name_or_path is not None and Path(args.model_name_or_path).exists():
        inputs["--model_name_or_path"] = args.model_name_or_path
    check_output_paths({}, inputs, folders={"--output_dir": output})
    existing = [output / name for name in RUN_ENTRIES if (output / name).exists()]
    if existing and args.resume_from_checkpoint is None and not args.overwrite_output_dir:
        raise ValueError(
            f"--output_dir {output} holds a run ({', '.join(p.name for p in existing)}); give "
            "--overwrite_output_dir to replace it whole, --resume_from_checkpoint to continue it, or another folder"
        )
    return existing if args.overwrite_output_dir and args.resume_from_checkpoint is None else []


def remove_run(entries: list[Path]) -> None:
    """Remove an old run's entries whole (`check_output_dir`'s list), so no file of it mixes with the new."""
    for entry in entries:
        if entry.is_dir():
            shutil.rmtree(entry)
        elif entry.exists():
            entry.unlink()


__all__ = [
    "check_output_dir",
    "check_resume_checkpoint",
    "missing_from_checkpoint",
    "newest_complete_checkpoint",
    "remove_run",
    "save_training_state",
]
