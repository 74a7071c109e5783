"""Timing, memory, table and argument-check helpers shared by the benchmark topics (``benchmark_<topic>.py``)."""

import argparse
import os
import platform
import re
import statistics
import time
from pathlib import Path

EXAMPLE_VIDEO = "examples/charades.mp4"  # in the shared data folder
SHARED_DATA = "the shared data folder (../shared/data beside the checkout, or $RDMF_DATA_DIR)"


def default_data_dir() -> Path:
    """``$RDMF_DATA_DIR`` when set, else ``../shared/data`` beside the checkout."""
    env = os.environ.get("RDMF_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def parse_options(parser: argparse.ArgumentParser, argv: list[str], alongside: bool) -> argparse.Namespace:
    """``parser``'s options in ``argv``, never by an abbreviation (``--video`` is not ``--videos``).

    Run alone, a topic refuses an option it does not know. Run by ``benchmark.py`` (``alongside``), every
    selected topic reads the same options after ``--``: each keeps the option names it does not know in
    ``args.unknown_options``, and ``benchmark.py`` refuses those that no selected topic knows.
    """
    parser.allow_abbrev = False
    if not alongside:
        args = parser.parse_args(argv)
        args.unknown_options = []
        return args
    args, rest = parser.parse_known_args(argv)
    args.unknown_options = [token.split("=")[0] for token in rest if token.startswith("--")]
    return args


def require_file(flag: str, folder: Path, relative: str, meaning: str = SHARED_DATA) -> Path:
    """``folder / relative``; before any measurement, a ``FileNotFoundError`` naming ``flag`` and ``folder``
    when it is not a file there."""
    path = folder / relative
    if not path.is_file():
        raise FileNotFoundError(f"{flag} {folder}: no {relative} there; expected {meaning}")
    return path


def timed(fn) -> float:
    """Wall-clock seconds of one call of ``fn()``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_seconds(fn, repeats: int = 15, warmup: int = 3) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` calls, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    return statistics.median(timed(fn) for _ in range(repeats))


def print_table(title: str, header: tuple[str, ...], rows: list[tuple]) -> None:
    """A text table under ``title``: the first column left-aligned, the others right-aligned."""
    print(title)
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    for line in (header, tuple("-" * w for w in widths), *rows):
        cells = [str(x).ljust(w) if i == 0 else str(x).rjust(w) for i, (x, w) in enumerate(zip(line, widths))]
        print("  " + " | ".join(cells))
    print()


def describe_machine(threads: int) -> str:
    """Host, CPU model, cores, memory, torch version, threads and the load averages, on one line."""
    import torch

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    model = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    cpu = model.group(1) if model else (platform.processor() or platform.machine())
    return (
        f"{platform.node()} | {cpu} | {os.cpu_count()} cores | {memory:.0f} GiB | torch {torch.__version__} | "
        f"threads {threads} | load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


def proc_field_bytes(pid: int, field: str, name: str = "status") -> int:
    """A ``kB`` field of ``/proc/<pid>/status`` (VmRSS, VmHWM) or ``smaps_rollup`` (Pss), in bytes; 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def reset_peak_memory() -> None:
    """Reset this process's ``VmHWM`` (its resident-memory high-water mark) to its current RSS."""
    Path("/proc/self/clear_refs").write_text("5")


def child_pids() -> list[int]:
    """The process ids whose parent is this process (a DataLoader's workers, say)."""
    parent, children = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                children.append(int(entry.name))
    return children
