"""Data benchmark: one epoch of QVHighlights train (7,218 queries) through the DataLoader, from ``.npz``
folders and from the same features as a parquet feature set (`data.FeatureSet`).

Synthetic features in the Moment-DETR layout (``clip/{vid}.npz`` 512-d + ``slowfast/{vid}.npz`` 2304-d,
float16, one row per 2 s clip, up to 75 clips; ``text/qid{qid}.npz`` tokens 512-d) are written to a
temporary folder, converted to a feature set (``rdmf convert-features``' code, float16) and deleted
afterwards. Rows: examples/s against a baseline (a plain loop that only loads the same files), and
resident memory (main process + workers) at 1/4, 1/2, 3/4 and the end of the epoch, for the whole set and
for one a quarter of its size, to show memory does not grow with the dataset. The feature set is
memory-mapped: its pages count in RSS as file-backed pages the kernel can drop (``main_file``); the
rest (``main_rss - main_file``, ``workers_rss - workers_file``) is the processes' own memory.

Usage: ``python scripts/benchmark.py --topics data [-- --data-dir DIR --workers 2 --batch-size 32]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmark_utils import child_pids, default_data_dir, parse_options, proc_field_bytes, require_file
from transformers_rdmf.atomic import check_can_write_in
from transformers_rdmf.data import (
    FeatureSet,
    MomentFeatureDataset,
    TextFeatureReader,
    build_dataloader,
    load_annotations,
    source_streams,
    standard_video_reader,
    write_feature_set,
)
from transformers_rdmf.errors import OneLineParser, require_positive_integer, run_command

STREAMS = {"clip": 512, "slowfast": 2304}
TRAIN = "qvhighlights/highlight_train_release.jsonl"


def write_synthetic_features(folder: Path, annotations, seed: int = 0) -> int:
    """Write the standard layout for every video and query; returns the bytes written."""
    rng = np.random.default_rng(seed)
    for name in (*STREAMS, "text"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    clips_per_video = dict(zip(annotations["vid"], annotations["num_clips"]))
    for vid, num_clips in clips_per_video.items():
        for name, dim in STREAMS.items():
            features = rng.standard_normal((num_clips, dim), dtype=np.float32).astype(np.float16)
            np.savez(folder / name / f"{vid}.npz", features=features)
    for qid, query in zip(annotations["qid"], annotations["query"]):
        tokens = rng.standard_normal((len(query.split()) + 2, 512), dtype=np.float32).astype(np.float16)
        np.savez(folder / "text" / f"qid{qid}.npz", last_hidden_state=tokens, pooler_output=tokens[0])
    return sum(path.stat().st_size for path in folder.rglob("*.npz"))


def memory_now() -> dict[str, int]:
    """Bytes: main and workers' resident memory now, their peaks, and the proportional total (PSS).

    RSS counts the pages the forked workers share with the main process once per process; PSS splits
    shared pages between them, so ``pss_total`` is what the job costs the machine.
    """
    main, workers = os.getpid(), child_pids()
    return {
        "main_rss": proc_field_bytes(main, "VmRSS"),
        "main_peak": proc_field_bytes(main, "VmHWM"),
        "main_file": proc_field_bytes(main, "RssFile"),
        "workers_rss": sum(proc_field_bytes(pid, "VmRSS") for pid in workers),
        "workers_file": sum(proc_field_bytes(pid, "RssFile") for pid in workers),
        "worker_peak": max((proc_field_bytes(pid, "VmHWM") for pid in workers), default=0),
        "pss_total": sum(proc_field_bytes(pid, "Pss", "smaps_rollup") for pid in (main, *workers)),
    }


def baseline_examples_per_second(dataset, folder: Path, limit: int) -> float:
    """A plain loop loading the same files (no normalisation, batching or workers)."""
    start = time.perf_counter()
    for vid, qid in zip(dataset.annotations["vid"][:limit], dataset.annotations["qid"][:limit]):
        for name in STREAMS:
            np.load(folder / name / f"{vid}.npz")["features"].astype(np.float32)
        np.load(folder / "text" / f"qid{qid}.npz")["last_hidden_state"].astype(np.float32)
    return limit / (time.perf_counter() - start)


def run_epoch(dataset, workers: int, batch_size: int) -> tuple[float, list[tuple[str, dict[str, int]]]]:
    """Examples/s over one epoch and memory at each quarter of it."""
    loader = build_dataloader(dataset, batch_size=batch_size, seed=0, num_workers=workers)
    checkpoints = {round(len(loader) * quarter / 4): f"{quarter}/4" for quarter in (1, 2, 3, 4)}
    samples, seen = [], 0
    start = time.perf_counter()
    for step, batch in enumerate(loader, start=1):
        seen += len(batch["meta"])
        if step in checkpoints:
            samples.append((checkpoints[step], memory_now()))
    elapsed = time.perf_counter() - start
    del loader
    return seen / elapsed, samples


def convert_to_feature_set(folder: Path) -> FeatureSet:
    """The folder's streams as a float16 feature set in ``folder/set`` (its Arrow cache in ``folder/cache``)."""
    start = time.perf_counter()
    streams = source_streams(
        "moment_detr", video_dirs=[folder / n for n in STREAMS], text_dir=folder / "text", clip_length=2.0
    )
    write_feature_set(streams, folder / "set", layout="moment_detr", progress=False)
    size = sum(path.stat().st_size for path in (folder / "set").rglob("*.parquet"))
    converted = time.perf_counter() - start
    feature_set = FeatureSet(folder / "set", cache_dir=str(folder / "cache"))
    for name in (*STREAMS, "text"):
        feature_set.rows(name)  # load_dataset's one-time copy into its Arrow cache
    print(
        f"feature set: {size / 2**30:.2f} GiB of parquet written in {converted:.0f} s; opened (Arrow cache "
        f"built) in {time.perf_counter() - start - converted:.0f} s"
    )
    return feature_set


def parse_args(argv: list[str], alongside: bool = False) -> argparse.Namespace:
    """The options (see ``benchmark_utils.parse_options``), every one
    checked, the annotations found and ``--tmp-dir`` probed, before any feature is written.

    ``--workers 0`` is meaningful (the DataLoader loads in the main process); ``--batch-size`` must be >= 1
    and ``--limit`` >= 4 (the quarter-size rows need one query; an empty DataLoader fails to shuffle).

    Raises:
        ValueError: a bad count; ``FileNotFoundError`` / ``PermissionError``: a path, naming its flag.
    """
    parser = OneLineParser(prog="benchmark_data.py", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (0: the main process)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where to write the synthetic features")
    parser.add_argument("--limit", type=int, help="only the first N queries (a quick check of the script)")
    args = parse_options(parser, argv, alongside)
    if args.workers < 0:
        raise ValueError(f"--workers: expected a number of workers >= 0, got {args.workers}")
    require_positive_integer("--batch-size", args.batch_size)
    if args.limit is not None and args.limit < 4:  # the quarter-size rows need one query at least
        raise ValueError(
            f"--limit: expected at least 4 queries (a quarter of them is run too), got {args.limit}"
        )
    require_file("--data-dir", args.data_dir, TRAIN)
    if args.tmp_dir is not None:
        check_can_write_in("--tmp-dir", args.tmp_dir)
    return args


def benchmark(args: argparse.Namespace) -> None:
    annotations = load_annotations(args.data_dir / TRAIN, "qvhighlights")
    if args.limit:
        annotations = annotations.select(range(min(args.limit, len(annotations))))
    folder = Path(tempfile.mkdtemp(prefix="rdmf_bench_data_", dir=args.tmp_dir))
    try:
        start = time.perf_counter()
        written = write_synthetic_features(folder, annotations)
        print(
            f"QVHighlights train: {len(annotations)} queries, {len(set(annotations['vid']))} videos, "
            f"mean {np.mean(annotations['num_clips']):.1f} clips (max {max(annotations['num_clips'])}) x 2816 dims; "
            f"wrote {written / 2**30:.2f} GiB float16 in {time.perf_counter() - start:.0f} s to {folder}"
        )
        video = standard_video_reader([folder / "clip", folder / "slowfast"], dims=list(STREAMS.values()))
        text = TextFeatureReader(folder / "text", dim=512)
        feature_set = convert_to_feature_set(folder)
        set_video, set_text = feature_set.video_reader(["clip", "slowfast"]), feature_set.text_reader(512)
        quarter_rows = annotations.select(range(len(annotations) // 4))
        datasets = {
            "npz quarter": MomentFeatureDataset(quarter_rows, video, text),
            "npz full": MomentFeatureDataset(annotations, video, text),
            "parquet quarter": MomentFeatureDataset(quarter_rows, set_video, set_text),
            "parquet full": MomentFeatureDataset(annotations, set_video, set_text),
        }

        limit = min(2000, len(annotations))
        baseline = baseline_examples_per_second(datasets["npz full"], folder, limit=limit)
        print(f"\n{'measurement':<64}{'examples/s':>12}{'x baseline':>12}")
        print(
            f"{'baseline: plain loop loading the npz files (' + str(limit) + ')':<64}{baseline:12.0f}{1.0:12.2f}"
        )
        epochs = {}
        for name, dataset in datasets.items():
            speed, samples = run_epoch(dataset, args.workers, args.batch_size)
            epochs[name] = samples
            label = (
                f"{name}: DataLoader, {args.workers} workers, batch {args.batch_size}, {len(dataset)} queries"
            )
            print(f"{label:<64}{speed:12.0f}{speed / baseline:12.2f}")

        columns = ("main_rss", "main_file", "workers_rss", "workers_file", "pss_total", "worker_peak")
        print(f"\n{'memory (MiB)':<46}" + "".join(f"{column:>12}" for column in columns))
        for name, samples in epochs.items():
            for when, memory in samples:
                label = f"{name}, after {when} of the epoch"
                print(f"{label:<46}" + "".join(f"{memory[column] / 2**20:12.0f}" for column in columns))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        print(f"deleted {folder}")


def main(argv: list[str]) -> int:
    return run_command("benchmark_data.py", lambda: benchmark(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
