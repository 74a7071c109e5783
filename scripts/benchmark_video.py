"""Video benchmarks (CPU): decoding + clip sampling + a small backbone on the example video.

    python scripts/benchmark.py --topics video
    python scripts/benchmark_video.py --video path/to/video.mp4 --repeats 5

The example is ``../shared/data/examples/charades.mp4`` (30.7 s, 480x270, 15 clips of 2 s). Backbones are
random (no download): the time per frame does not depend on the weights. Every row is the median of
``--repeats`` runs after a warm-up.
"""

import argparse
import sys
from pathlib import Path

import av
import numpy as np
import timm
import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from benchmark_utils import EXAMPLE_VIDEO, default_data_dir, median_seconds, parse_options, print_table
from transformers_rdmf import RDMFVideoProcessor
from transformers_rdmf.errors import OneLineParser, require_positive_integer, run_command
from transformers_rdmf.video_processing_rdmf import decode_video_clips


def decode_every_frame(path: Path) -> np.ndarray:
    """The naive baseline: every frame to RGB, then one per 2 s clip picked from memory."""
    with av.open(str(path)) as container:
        container.streams.video[0].thread_type = "AUTO"
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    return np.stack(frames)


def backbones() -> dict[str, torch.nn.Module]:
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(projection_dim=512)).eval()  # ViT-B/32
    return {
        "timm resnet18": timm.create_model("resnet18", pretrained=False, num_classes=0).eval(),
        "CLIP ViT-B/32 vision": lambda x: clip(pixel_values=x).image_embeds,
    }


def parse_args(argv: list[str], alongside: bool = False) -> argparse.Namespace:
    """The options (see ``benchmark_utils.parse_options``), checked
    before anything is decoded. A ``--video`` given that is not a file is refused; the example video, when
    absent (no shared data), makes the topic skip.

    Raises:
        ValueError: a count below 1; ``FileNotFoundError``: a ``--video`` that is not a file.
    """
    parser = OneLineParser(
        prog="benchmark_video.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--video",
        type=Path,
        default=None,
        help=f"a video file (default: {EXAMPLE_VIDEO} in the shared data folder)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames-per-clip", type=int, default=1)
    args = parse_options(parser, argv, alongside)
    require_positive_integer("--repeats", args.repeats)
    require_positive_integer("--frames-per-clip", args.frames_per_clip)
    if args.video is not None and not args.video.is_file():
        raise FileNotFoundError(f"--video {args.video}: no such file; expected a video file")
    args.video = args.video or default_data_dir() / EXAMPLE_VIDEO
    return args


def benchmark(args: argparse.Namespace) -> None:
    if not args.video.is_file():
        print(f"skipped: no video at {args.video}")
        return

    processor = RDMFVideoProcessor(frames_per_clip=args.frames_per_clip)
    frames, sampling = decode_video_clips(args.video, processor.clip_length, args.frames_per_clip)
    clips = sampling.num_clips
    print(
        f"{args.video.name}: {sampling.duration:.1f} s, {clips} clips of {processor.clip_length:g} s, "
        f"{args.frames_per_clip} frame(s) per clip, {torch.get_num_threads()} threads\n"
    )

    naive = median_seconds(lambda: decode_every_frame(args.video), args.repeats, warmup=1)
    decode = median_seconds(
        lambda: decode_video_clips(args.video, processor.clip_length, args.frames_per_clip),
        args.repeats,
        warmup=1,
    )
    whole = median_seconds(lambda: processor(str(args.video)), args.repeats, warmup=1)
    print_table(
        "Decoding and clip sampling (ms)",
        ("step", "ms", "clips/s", "vs every frame to RGB"),
        [
            ("every frame to RGB (baseline)", f"{naive * 1e3:.0f}", f"{clips / naive:.0f}", "1.0x"),
            (
                "timestamps + sampled frames only",
                f"{decode * 1e3:.0f}",
                f"{clips / decode:.0f}",
                f"{naive / decode:.1f}x",
            ),
            ("+ resize, crop, normalise (processor)", f"{whole * 1e3:.0f}", f"{clips / whole:.0f}", "-"),
        ],
    )

    pixels = processor(str(args.video))["pixel_values"][0].flatten(0, 1)  # (clips * frames, 3, 224, 224)
    rows = []
    for name, backbone in backbones().items():
        with torch.no_grad():
            model = median_seconds(lambda b=backbone: b(pixels), args.repeats, warmup=1)
        total = whole + model
        rows.append(
            (
                name,
                f"{whole * 1e3:.0f}",
                f"{model * 1e3:.0f}",
                f"{clips / total:.1f}",
                f"{whole / total:.0%}",
                f"{model / total:.0%}",
            )
        )
    print_table(
        "Decoding + sampling + backbone, whole video (ms)",
        ("backbone", "decode+process", "backbone", "clips/s", "share decoding", "share model"),
        rows,
    )


def main(argv: list[str]) -> int:
    return run_command("benchmark_video.py", lambda: benchmark(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
