"""Benchmarks: one table per topic, each row a measurement with its ratio to a baseline measured in the same run.

Usage::

    python scripts/benchmark.py                    # every topic
    python scripts/benchmark.py --topics metrics   # a subset (comma separated)

Each topic lives in ``scripts/benchmark_<topic>.py`` and exposes ``main(argv: list[str]) -> None``,
which prints its tables. Options after ``--`` are passed to every topic.
"""

import argparse
import importlib
import sys
from pathlib import Path

TOPICS = ("model", "metrics", "data", "extraction", "video", "scale")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, extra = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--topics", default=",".join(TOPICS), help=f"comma-separated subset of {TOPICS}")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import torch

    from benchmark_utils import describe_machine

    print(f"machine: {describe_machine(torch.get_num_threads())}\n")
    for topic in args.topics.split(","):
        topic = topic.strip()
        if topic not in TOPICS:
            parser.error(f"unknown topic {topic!r}; known: {', '.join(TOPICS)}")
        print(f"=== {topic} ===")
        importlib.import_module(f"benchmark_{topic}").main(extra)
        print()


if __name__ == "__main__":
    main()
