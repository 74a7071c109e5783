"""The CSV tracker (``logs/metrics.csv``) and the progress state saved with every checkpoint."""

from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from accelerate.tracking import GeneralTracker


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
