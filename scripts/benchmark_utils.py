"""Timing and table helpers shared by the benchmark topics (``scripts/benchmark_<topic>.py``)."""

import statistics
import time


def median_seconds(fn, repeats: int = 15, warmup: int = 3) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` calls, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def print_table(title: str, header: tuple[str, ...], rows: list[tuple]) -> None:
    """A right-aligned text table under ``title``."""
    print(title)
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    for line in (header, tuple("-" * w for w in widths), *rows):
        print("  " + " | ".join(str(x).rjust(w) for x, w in zip(line, widths)))
    print()
