"""``rdmf convert-features``: a feature folder (any layout the loaders read) as a parquet feature set with a
dataset card (see :mod:`data.feature_sets`), optionally uploaded to the Hub."""

import argparse
from pathlib import Path

from ..atomic import check_output_paths


def add_convert_features_parser(commands) -> None:
    convert = commands.add_parser(
        "convert-features",
        help="a feature folder as a parquet feature set (a datasets dataset with a card), optionally on the Hub",
    )
    convert.add_argument("--layout", required=True, choices=("moment_detr", "tvsum", "youtube_highlights"))
    convert.add_argument("--out", required=True, help="the feature set's folder (must not exist yet)")
    convert.add_argument(
        "--video-dirs", nargs="+", default=[], help="moment_detr: one folder per video stream"
    )
    convert.add_argument("--text-dir", help="moment_detr: the query features folder (qid{qid}.npz)")
    convert.add_argument(
        "--root", help="tvsum / youtube_highlights: the dataset folder (video_features/ ...)"
    )
    convert.add_argument("--clip-length", type=float, help="seconds per feature row, when no manifest says")
    convert.add_argument("--dtype", choices=("float16", "float32"), default="float16", help="default float16")
    convert.add_argument("--shard-rows", type=int, default=500, help="rows per parquet shard (default 500)")
    convert.add_argument("--push-to-hub", metavar="REPO", help="then upload the set to this Hub dataset")
    convert.add_argument("--private", action="store_true", help="with --push-to-hub: a private repository")
    convert.set_defaults(handler=run_convert_features)


def run_convert_features(args: argparse.Namespace) -> int:
    from ..data.feature_set_writer import push_feature_set, source_streams, write_feature_set

    out = Path(args.out)
    if out.exists():
        raise ValueError(f"--out: {out} exists; give a new folder (nothing is overwritten)")
    inputs = {"--video-dirs": args.video_dirs, "--text-dir": args.text_dir, "--root": args.root}
    check_output_paths({}, inputs, folders={"--out": out})
    streams = source_streams(
        args.layout,
        root=args.root,
        video_dirs=args.video_dirs,
        text_dir=args.text_dir,
        clip_length=args.clip_length,
    )
    manifest = write_feature_set(
        streams, out, layout=args.layout, dtype=args.dtype, shard_rows=args.shard_rows
    )
    for name, stream in manifest["streams"].items():
        print(
            f"{name}: {stream['rows']} rows of width {stream['feature_dim']} ({stream['kind']}, by {stream['key']}), "
            f"largest {args.dtype} rounding {stream['max_rounding_error']:.2g}"
        )
    print(f"feature set written to {out} (card: {out / 'README.md'})")
    if args.push_to_hub:
        print(f"uploaded: {push_feature_set(out, args.push_to_hub, private=args.private)}")
    return 0
