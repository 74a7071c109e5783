"""Extraction benchmark: ``rdmf extract-features`` over a small corpus at 1 and 2 processes (CPU, gloo).

The corpus is ``--videos`` copies of the data folder's ``examples/charades.mp4`` (30.7 s, 15 clips of
2 s); the backbone is timm's ``resnet18`` with random weights at 224 px (the cost of a real image
backbone, no download), one frame per clip. Each row is a fresh ``accelerate launch``; the times come
from the command's own summary line: decoding (summed over the decoding threads of every process),
the backbones and writing, and the time the backbones waited for frames. Throughput is clips over the
command's wall time, process start and model building included.

Usage: ``python scripts/benchmark.py --topics extraction [-- --videos 8]``
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmark_utils import EXAMPLE_VIDEO, default_data_dir, parse_options, print_table, require_file
from transformers_rdmf.errors import OneLineParser, require_positive_integer, run_command

SUMMARY = re.compile(
    r"(\d+) clips: decoding ([\d.]+) s .* backbones and writing ([\d.]+) s, waiting for frames ([\d.]+) s"
)


def run(videos: Path, out: Path, processes: int, threads: int, decode_threads: int) -> tuple[float, re.Match]:
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(processes)]
    launcher += ["--multi_gpu"] if processes > 1 else ["--cpu"]
    launcher += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    argv = ["-m", "transformers_rdmf.cli", "extract-features", "--videos", str(videos), "--out", str(out)]
    argv += ["--backbones", "timm:resnet18", "--random-weights", "--decode-threads", str(decode_threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    result = subprocess.run([*launcher, *argv], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    found = SUMMARY.search(result.stdout)
    if result.returncode != 0 or found is None:
        raise RuntimeError(result.stderr[-2000:])
    return wall, found


def parse_args(argv: list[str], alongside: bool = False) -> argparse.Namespace:
    """The options (see ``benchmark_utils.parse_options``), checked and
    the example video found before any process is launched.

    Raises:
        ValueError: ``--videos`` below 1; ``FileNotFoundError``: no example video in ``--data-dir``.
    """
    parser = OneLineParser(prog="benchmark_extraction.py", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--videos", type=int, default=8)
    args = parse_options(parser, argv, alongside)
    require_positive_integer("--videos", args.videos)
    require_file("--data-dir", args.data_dir, EXAMPLE_VIDEO)
    return args


def benchmark(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="rdmf_bench_extract_"))
    try:
        corpus = work / "videos"
        corpus.mkdir()
        for i in range(args.videos):
            shutil.copy(args.data_dir / EXAMPLE_VIDEO, corpus / f"v{i:03d}.mp4")
        rows, baseline = [], None
        for processes, threads, decode_threads in ((1, 1, 1), (1, 1, 2), (1, 2, 2), (2, 1, 2)):
            wall, found = run(
                corpus,
                work / f"out_{processes}_{threads}_{decode_threads}",
                processes,
                threads,
                decode_threads,
            )
            clips, decode, encode, wait = int(found[1]), float(found[2]), float(found[3]), float(found[4])
            speed = clips / wall
            baseline = baseline or speed
            rows.append((
                f"{processes} process(es) x {threads} thread(s), {decode_threads} decoding thread(s)",
                clips, f"{wall:.1f}", f"{speed:.1f}", f"{speed / baseline:.2f}",
                f"{decode:.1f}", f"{encode:.1f}", f"{wait:.1f}", f"{decode / (decode + encode):.0%}",
            ))  # fmt: skip
        header = (
            "run",
            "clips",
            "wall s",
            "clips/s",
            "x first",
            "decode s",
            "backbone s",
            "wait s",
            "decode share",
        )
        print_table(
            f"rdmf extract-features, {args.videos} videos, timm resnet18 (random weights), CPU", header, rows
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> int:
    return run_command("benchmark_extraction.py", lambda: benchmark(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
