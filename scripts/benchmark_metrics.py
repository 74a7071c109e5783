"""Metrics benchmark: the vectorised QVHighlights evaluation against a plain per-query loop.

Both compute the full official dict on the 1,550 validation queries from already-parsed rows
(reading the jsonl files is not timed); the table shows the best of ``--repeats`` runs of each
and checks that both give the same dict. Run through ``python scripts/benchmark.py --topics metrics``.
"""

import argparse
import os
import time
from pathlib import Path

from transformers_rdmf.metrics import evaluate_qvhighlights, read_jsonl
from transformers_rdmf.metrics.qvhighlights_loop import evaluate_qvhighlights_loop

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def best_time(function, *args, repeats: int) -> tuple[float, dict]:
    """Best wall time in seconds over ``repeats`` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("RDMF_DATA_DIR", DEFAULT_DATA)))
    parser.add_argument("--predictions", default="qddetr_sf+clip_val_preds.jsonl", help="a conformance file")
    parser.add_argument("--repeats", type=int, default=5)
    args, _ = parser.parse_known_args(argv)
    ground_truth = read_jsonl(args.data / "qvhighlights" / "highlight_val_release.jsonl")
    predictions = read_jsonl(args.data / "conformance" / "qvhighlights" / args.predictions)
    vectorised, ours = best_time(evaluate_qvhighlights, predictions, ground_truth, repeats=args.repeats)
    loop, reference = best_time(
        evaluate_qvhighlights_loop, predictions.rows, ground_truth.rows, repeats=max(1, args.repeats // 2)
    )
    print(f"QVHighlights val, {len(predictions)} queries, {args.predictions}, full official dict")
    print(f"{'implementation':<34} {'time (ms)':>10} {'vs loop':>9}")
    print(f"{'per-query Python loop (baseline)':<34} {1000 * loop:>10.1f} {1.0:>8.1f}x")
    print(f"{'vectorised numpy (ours)':<34} {1000 * vectorised:>10.1f} {loop / vectorised:>8.1f}x")
    print(f"same dict: {'yes' if ours == reference else 'NO'}; MR-full-mAP {ours['brief']['MR-full-mAP']}")
