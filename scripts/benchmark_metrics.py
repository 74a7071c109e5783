"""Metrics benchmark: the vectorised QVHighlights evaluation against a plain per-query loop, then the
command lines as whole processes.

Compute: both implementations give the full official dict on the 1,550 validation queries from
already-parsed rows (reading the jsonl files is not timed); the table shows the best of ``--repeats``
runs of each and checks that both give the same dict.

Whole process: ``python -m transformers_rdmf.metrics.qvhighlights`` from start to exit (interpreter,
imports, reading, computing, writing), beside the same command with torch and transformers imported first
(what it cost before the package's imports became lazy) and, with ``--official_eval DIR`` (a folder
holding moment_detr's ``standalone_eval/``; this repository does not ship it), the official script.
Run through ``python scripts/benchmark.py --topics metrics``.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmark_utils import default_data_dir, parse_options, require_file
from transformers_rdmf.errors import OneLineParser, require_positive_integer, run_command
from transformers_rdmf.metrics import evaluate_qvhighlights, read_jsonl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test oracle, beside the tests
from modeling_tests.oracles.qvhighlights_loop import evaluate_qvhighlights_loop  # noqa: E402

GROUND_TRUTH = "qvhighlights/highlight_val_release.jsonl"
CONFORMANCE = "conformance/qvhighlights"


def best_time(function, *args, repeats: int) -> tuple[float, dict]:
    """Best wall time in seconds over ``repeats`` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def parse_args(argv: list[str], alongside: bool = False) -> argparse.Namespace:
    """The options (see ``benchmark_utils.parse_options``), every one
    checked, and the files found, before anything is timed.

    Raises:
        ValueError: a count below 1; ``FileNotFoundError``: a missing file, naming its flag.
    """
    parser = OneLineParser(prog="benchmark_metrics.py", description=__doc__)
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--predictions", default="qddetr_sf+clip_val_preds.jsonl", help="a conformance file")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--process_repeats", type=int, default=3, help="runs of each whole-process command")
    parser.add_argument("--official_eval", type=Path, help="a folder holding moment_detr's standalone_eval/")
    args = parse_options(parser, argv, alongside)
    require_positive_integer("--repeats", args.repeats)
    require_positive_integer("--process_repeats", args.process_repeats)
    require_file("--data", args.data, GROUND_TRUTH)
    conformance = args.data / CONFORMANCE
    if not (conformance / args.predictions).is_file():
        known = ", ".join(sorted(path.name for path in conformance.glob("*.jsonl"))) or "none"
        raise FileNotFoundError(
            f"--predictions {args.predictions!r}: no such file in {conformance}; known: {known}"
        )
    if args.official_eval is not None:
        require_file(
            "--official_eval",
            args.official_eval,
            "standalone_eval/eval.py",
            "a folder holding moment_detr's standalone_eval/",
        )
    return args


def benchmark(args: argparse.Namespace) -> None:
    ground_truth = read_jsonl(args.data / GROUND_TRUTH)
    predictions = read_jsonl(args.data / CONFORMANCE / args.predictions)
    vectorised, ours = best_time(evaluate_qvhighlights, predictions, ground_truth, repeats=args.repeats)
    loop, reference = best_time(
        evaluate_qvhighlights_loop, predictions.rows, ground_truth.rows, repeats=max(1, args.repeats // 2)
    )
    print(f"QVHighlights val, {len(predictions)} queries, {args.predictions}, full official dict")
    print(f"{'implementation':<34} {'time (ms)':>10} {'vs loop':>9}")
    print(f"{'per-query Python loop (baseline)':<34} {1000 * loop:>10.1f} {1.0:>8.1f}x")
    print(f"{'vectorised numpy (ours)':<34} {1000 * vectorised:>10.1f} {loop / vectorised:>8.1f}x")
    print(f"same dict: {'yes' if ours == reference else 'NO'}; MR-full-mAP {ours['brief']['MR-full-mAP']}")
    print()
    whole_process_table(args)


def whole_process_table(args: argparse.Namespace) -> None:
    """Median wall time of each metrics command line, start to exit, on the same files."""
    submission = (args.data / CONFORMANCE / args.predictions).resolve()
    ground_truth = (args.data / GROUND_TRUTH).resolve()
    with tempfile.TemporaryDirectory() as scratch:
        files = ["--submission_path", str(submission), "--gt_path", str(ground_truth), "--not_verbose"]
        ours = [sys.executable, "-m", "transformers_rdmf.metrics.qvhighlights", *files]
        eager = [sys.executable, "-c", EAGER_IMPORTS, *files]
        rows = [("ours, python -m transformers_rdmf.metrics.qvhighlights", ours, None)]
        rows.append(("ours, torch + transformers imported first (before)", eager, None))
        if args.official_eval is not None:
            official = [sys.executable, "-m", "standalone_eval.eval", *files]
            rows.append(("official standalone_eval/eval.py (baseline)", official, args.official_eval))
        times = [
            process_seconds(
                [*command, "--save_path", f"{scratch}/{i}.json", "--overwrite"], cwd, args.process_repeats
            )
            for i, (_, command, cwd) in enumerate(rows)
        ]
    baseline = times[-1] if args.official_eval is not None else None
    print(f"whole process, median of {args.process_repeats} runs, same files")
    print(f"{'command':<58} {'time (s)':>9} {'vs official':>12}")
    for (label, _, _), seconds in zip(rows, times):
        ratio = f"{baseline / seconds:>11.1f}x" if baseline else f"{'(not given)':>12}"
        print(f"{label:<58} {seconds:>9.2f} {ratio}")
    if baseline is None:
        print("official script: pass --official_eval DIR (a folder holding moment_detr's standalone_eval/)")


EAGER_IMPORTS = (
    "import sys, runpy, torch, transformers; sys.argv[0] = 'qvhighlights'; "
    "runpy.run_module('transformers_rdmf.metrics.qvhighlights', run_name='__main__')"
)


def process_seconds(command: list[str], cwd: Path | None, repeats: int) -> float:
    """Median wall seconds of running ``command`` to completion (it must exit 0)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str]) -> int:
    return run_command("benchmark_metrics.py", lambda: benchmark(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
