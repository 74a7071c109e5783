"""Benchmarks: one table per topic, each row a measurement with its ratio to a baseline measured in the same run.

Usage::

    python scripts/benchmark.py                    # every topic
    python scripts/benchmark.py --topics metrics   # a subset (comma separated)

Each topic lives in ``scripts/benchmark_<topic>.py`` and exposes ``parse_args(argv)``, which reads and checks
its options, and ``benchmark(args)``, which prints its tables. Options after ``--`` are passed to every topic;
each uses those it knows, and one that no selected topic knows is refused.
Every selected topic checks its options before any topic measures anything: a bad one is refused in one line
(``benchmark_<topic>.py: error: ...``), exit status 2.
"""

import argparse
import importlib
import sys
from pathlib import Path

from transformers_rdmf.errors import OneLineParser, run_command

TOPICS = ("model", "metrics", "data", "extraction", "video", "scale")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, extra = argv[:split], argv[split + 1 :]
    parser = OneLineParser(
        prog="benchmark.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--topics", default=",".join(TOPICS), help=f"comma-separated subset of {TOPICS}")
    args = parser.parse_args(argv)
    topics = [topic.strip() for topic in args.topics.split(",")]
    for topic in topics:
        if topic not in TOPICS:
            parser.error(f"unknown topic {topic!r}; known: {', '.join(TOPICS)}")
    scripts = str(Path(__file__).resolve().parent)
    if scripts not in sys.path:  # the topics import each other, as when run from scripts/
        sys.path.insert(0, scripts)
    modules = [(topic, importlib.import_module(f"benchmark_{topic}")) for topic in topics]
    parsed = []
    for topic, module in modules:  # every topic's options, before the first measurement
        status = run_command(
            f"benchmark_{topic}.py",
            lambda module=module: parsed.append(module.parse_args(extra, alongside=True)),
        )
        if status:
            return status
    unknown = set.intersection(*(set(args.unknown_options) for args in parsed))
    if unknown:
        parser.error(
            f"after --: {', '.join(sorted(unknown))} is an option of no selected topic ({', '.join(topics)})"
        )
    import torch

    from benchmark_utils import describe_machine

    print(f"machine: {describe_machine(torch.get_num_threads())}\n")
    for (topic, module), topic_args in zip(modules, parsed):
        print(f"=== {topic} ===")
        status = run_command(f"benchmark_{topic}.py", lambda module=module, a=topic_args: module.benchmark(a))
        if status:
            return status
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
