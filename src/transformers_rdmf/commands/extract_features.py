"""``rdmf extract-features``: clip features of your videos (and query features) in the loaders' layout."""

import argparse
import datetime
import os
import sys
from pathlib import Path

import torch

from ..atomic import check_output_paths
from ..errors import require_positive_integer, require_positive_seconds


def add_extract_features_parser(commands) -> None:
    extract = commands.add_parser(
        "extract-features", help="clip features of your videos (and query features) in the loaders' layout"
    )
    extract.add_argument(
        "--videos", required=True, nargs="+", help="a folder of videos, a .txt list of paths, or video files"
    )
    extract.add_argument("--out", required=True, help="the output folder: one sub-folder per backbone")
    extract.add_argument(
        "--backbones",
        nargs="+",
        default=["clip"],
        help="any of: clip, swin3d_t, timm:MODEL_NAME (default: clip)",
    )
    extract.add_argument(
        "--clip-model",
        default="openai/clip-vit-base-patch32",
        help="CLIP checkpoint (hub name or local folder) for the clip backbone and the query text",
    )
    extract.add_argument(
        "--swin-weights", default="KINETICS400_V1", help="Swin3D_T_Weights name or a local state-dict file"
    )
    extract.add_argument(
        "--timm-weights", help="a local weights file for timm:MODEL (default: timm's pretrained weights)"
    )
    extract.add_argument(
        "--random-weights", action="store_true", help="random timm / Swin weights (pipeline checks only)"
    )
    extract.add_argument(
        "--queries", help="a jsonl with qid and query per line: writes OUT/text/qid{qid}.npz"
    )
    extract.add_argument("--clip-length", type=float, default=2.0, help="seconds per clip (default 2)")
    extract.add_argument("--frames-per-clip", type=int, default=1, help="frames sampled per clip (default 1)")
    extract.add_argument("--batch-size", type=int, default=32, help="clips per backbone forward pass")
    extract.add_argument(
        "--device", help="default: the process's device (under accelerate launch, its GPU), else cpu"
    )
    extract.add_argument(
        "--decode-threads", type=int, default=2, help="threads decoding the next videos ahead (default 2)"
    )
    extract.add_argument(
        "--mixed-precision",
        choices=("no", "bf16", "fp16"),
        default=os.environ.get("ACCELERATE_MIXED_PRECISION", "no"),
        help="run the backbones in bf16 or fp16 (default: accelerate launch's --mixed_precision, else no)",
    )
    extract.add_argument(
        "--seed", type=int, default=0, help="seeds random weights (the same in every process)"
    )
    extract.set_defaults(handler=run_extract_features)


def run_extract_features(args: argparse.Namespace) -> int:
    """Extract every video it can; returns 1 (after listing them) when some videos failed, else 0."""
    from accelerate import PartialState

    from ..feature_extraction import build_video_encoder, extract_video_features
    from ..training.arguments import launched_on_cpu

    if args.mixed_precision not in ("no", "bf16", "fp16"):  # the default comes from the environment
        raise ValueError(
            f"--mixed-precision {args.mixed_precision!r} (from ACCELERATE_MIXED_PRECISION): expected no, bf16 or fp16"
        )
    numbers = [("--batch-size", args.batch_size), ("--frames-per-clip", args.frames_per_clip)]
    for flag, value in [*numbers, ("--decode-threads", args.decode_threads)]:
        require_positive_integer(flag, value)
    require_positive_seconds("--clip-length", args.clip_length)
    videos = args.videos[0] if len(args.videos) == 1 else args.videos
    if args.queries is not None and not Path(args.queries).is_file():
        raise FileNotFoundError(f"--queries: no file at {args.queries}")
    timm_weights = False if args.random_weights else (args.timm_weights or True)
    torch.manual_seed(args.seed)
    encoders = [
        build_video_encoder(
            spec,
            clip_weights=args.clip_model,
            swin_weights=None if args.random_weights else args.swin_weights,
            timm_pretrained=timm_weights,
        )
        for spec in args.backbones
    ]
    check_output_paths(
        {},
        {"--videos": args.videos, "--queries": args.queries},
        folders={
            f"--out ({name}/)": Path(args.out) / name for name in _output_folders(encoders, args.queries)
        },
    )
    # processes wait for the slowest shard (and for the queries): far past NCCL's default 10 minutes
    state = PartialState(cpu=launched_on_cpu(), timeout=datetime.timedelta(hours=24))
    device = checked_device(args.device) or state.device
    report = extract_video_features(
        videos, args.out, encoders, args.clip_length, args.frames_per_clip, args.batch_size, device,
        decode_threads=args.decode_threads, mixed_precision=args.mixed_precision, state=state,
    )  # fmt: skip
    if state.is_main_process:
        _print_video_summary(args, encoders, report)
        if args.queries is not None:
            _extract_queries(args, device)
        for vid, reason in report.failed.items():
            print(f"rdmf extract-features: failed: {vid}: {reason}", file=sys.stderr)
    state.wait_for_everyone()
    return 1 if report.failed else 0


def _print_video_summary(args, encoders, report) -> None:
    """What the run did with the videos (every process's), and where the time went."""
    folders = ", ".join(str(Path(args.out) / e.name) for e in encoders)
    print(
        f"videos: {len(report.written)} written ({len(report.redone)} of them redone: incomplete files), "
        f"{len(report.skipped)} already complete, {len(report.failed)} failed; features in {folders}"
    )
    if report.clips:
        print(
            f"{report.clips} clips: decoding {report.decode_seconds:.1f} s (in threads, ahead of the "
            f"backbones), backbones and writing {report.encode_seconds:.1f} s, waiting for frames "
            f"{report.wait_seconds:.1f} s"
        )


def _extract_queries(args, device) -> None:
    from ..feature_extraction import clip_text_encoder, extract_query_features

    text = extract_query_features(
        args.queries, Path(args.out) / "text", clip_text_encoder(args.clip_model), device=device
    )
    print(f"queries: {len(text.written) + len(text.redone)} written, {len(text.skipped)} already complete")


def _output_folders(encoders, queries) -> list[str]:
    """The folders below ``--out`` a run writes: one per video backbone, and ``text`` for the queries."""
    return [encoder.name for encoder in encoders] + (["text"] if queries is not None else [])


def checked_device(name: str | None):
    """``--device`` as a `torch.device` (None when not given), or a one-line error naming the flag."""
    import torch

    if name is None:
        return None
    try:
        return torch.device(name)
    except (RuntimeError, ValueError) as error:
        raise ValueError(
            f"--device: {name!r} is not a torch device, e.g. cpu, cuda, cuda:1 ({error})"
        ) from None
