"""The CSV tracker (``logs/metrics.csv``), each evaluation's per-video scores file
(``eval/epoch_NNN_per_video.json``) and the progress state saved with every checkpoint.

Every training-state checkpoint keeps a copy of the log as it stood when the checkpoint was written
(`snapshot_csv_log`); a run resumed from that checkpoint starts from the copy, so the rows the interrupted
run logged after it are not there twice.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from accelerate.tracking import GeneralTracker
from transformers.utils import logging as transformers_logging

from ..atomic import atomic_write_text

LOG_FILE = "metrics.csv"
LOG_HEADER = "step,name,value\n"


def csv_log_path(output_dir: str | Path) -> Path:
    """Where a run's CSV log lives."""
    return Path(output_dir) / "logs" / LOG_FILE


EVAL_DIR = "eval"
PER_VIDEO_SUFFIX = "per_video.json"


def epoch_eval_path(output_dir: str | Path, epoch: int, suffix: str) -> Path:
    """``<output_dir>/eval/epoch_NNN_<suffix>``: one file an epoch's evaluation writes (``preds.jsonl``,
    ``metrics.json``, ``per_video.json``)."""
    return Path(output_dir) / EVAL_DIR / f"epoch_{epoch:03d}_{suffix}"


def per_video_scores_path(output_dir: str | Path, epoch: int) -> Path:
    """Where a run writes each eval video's score at an epoch's evaluation: ``{domain: {qid: score}}``."""
    return epoch_eval_path(output_dir, epoch, PER_VIDEO_SUFFIX)


def last_per_video_scores(output_dir: str | Path) -> dict[str, dict[str, float]]:
    """``{domain: {qid: score}}`` of the run's last evaluation (the latest epoch by number, not by name),
    each eval video's top-5 AP or AP on exactly the videos it evaluated, the numbers paired tests
    compare; empty when the run wrote none."""
    files = (Path(output_dir) / EVAL_DIR).glob(f"epoch_*_{PER_VIDEO_SUFFIX}")
    last = max(files, key=lambda path: int(path.name.split("_")[1]), default=None)
    return {} if last is None else json.loads(last.read_text())


def snapshot_csv_log(output_dir: str | Path, checkpoint: str | Path) -> None:
    """Copy the run's log (if it keeps one) into a checkpoint folder being written."""
    log = csv_log_path(output_dir)
    if log.is_file():
        shutil.copyfile(log, Path(checkpoint) / LOG_FILE)


class CSVTracker(GeneralTracker):
    """Accelerate tracker writing ``step,name,value`` rows to ``<output_dir>/logs/metrics.csv``."""

    name = "csv"
    requires_logging_directory = True
    main_process_only = True

    def __init__(self, logging_dir: str, resume_from: str | Path | None = None):
        """``resume_from``: the checkpoint a resumed run starts from (its log copy replaces the log)."""
        super().__init__()
        self.path = Path(logging_dir) / LOG_FILE
        self.resume_from = None if resume_from is None else Path(resume_from)

    def start(self):
        """Called by ``init_trackers`` on the main process only: no other process can truncate the log."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.resume_from is None:
            self.path.write_text(LOG_HEADER)
        elif (self.resume_from / LOG_FILE).is_file():  # the log as it stood at the checkpoint
            atomic_write_text(self.path, (self.resume_from / LOG_FILE).read_text())
        elif not self.path.exists():  # a checkpoint from before the copies: keep what the log holds
            self.path.write_text(LOG_HEADER)

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
    with open(csv_log_path(output_dir)) as handle:
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


@contextlib.contextmanager
def transformers_progress_bars_off(off: bool):
    """With ``off`` (``--disable_progress_bar``), transformers' own bars (``Loading weights``, ``Writing
    model shards``) are off for the block as ours are, and as they were after it; else nothing changes."""
    was_on = transformers_logging.is_progress_bar_enabled()
    if off and was_on:
        transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if off and was_on:
            transformers_logging.enable_progress_bar()
