"""The ``rdmf`` command line.

``rdmf predict``: a saved model (and processor) on a video file or its features and a query: prints the top
moments and writes a PNG of the saliency over time with the moments shaded. For a highlight-only checkpoint
(``config.trained_heads`` without ``"moments"``) it prints and marks the top clips instead. Videos longer
than a window (``--window-clips``) run in overlapping windows (see :mod:`long_video`).
``rdmf extract-features``: clip features of your videos (and query features) in the loaders' layout.
"""

import argparse
import contextlib
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_write, atomic_write_text
from .feature_manifest import check_feature_folders, read_model_feature_signatures
from .long_video import DEFAULT_WINDOW_CLIPS, embed_video_file, predict_long_video
from .modeling_rdmf import RDMFForMomentRetrieval
from .post_processing import post_process_highlights, post_process_moment_retrieval, top_clips
from .processing_rdmf import RDMFProcessor
from .video_processing_rdmf import plan_clips, read_frame_timestamps

SALIENCY_MEANING = (
    "saliency: per clip, the sigmoid probability (0..1) that the clip matches the query, each clip on its "
    "own (they do not sum to 1); rank clips by it, or keep those above a threshold (docs/inference.md)"
)


def load_clip_features(path: Path, key: str = "features", argument: str = "--features") -> torch.Tensor:
    """One video's clip features (or a query's token features) from a ``.npz`` (array ``key``) or ``.npy``,
    L2-normalised per row.

    Returns:
        ``(rows, dim)`` float32.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{argument}: no file at {path}")
    try:
        data = np.load(path)
    except (ValueError, OSError) as error:
        raise ValueError(f"{argument}: {path} is not a .npz or .npy array file ({error})") from error
    if isinstance(data, np.lib.npyio.NpzFile):
        if key not in data:
            raise ValueError(f"{argument}: {path} has no array {key!r} (it has {sorted(data.files)})")
        data = data[key]
    features = torch.from_numpy(np.asarray(data, dtype=np.float32))
    if features.dim() != 2 or features.shape[0] == 0:
        raise ValueError(
            f"{argument}: {path} must hold a (rows, dim) array, got shape {tuple(features.shape)}"
        )
    return torch.nn.functional.normalize(features, dim=-1)


def load_feature_streams(paths: list[Path]) -> torch.Tensor:
    """Several streams of one video (e.g. I3D rgb and flow), each L2-normalised per clip, concatenated.

    As the data loaders do: streams whose clip counts differ by one are cut to the shorter (and said so);
    more than that is an error.

    Returns:
        ``(clips, sum of widths)`` float32.
    """
    streams = [load_clip_features(path) for path in paths]
    rows = [stream.shape[0] for stream in streams]
    if max(rows) - min(rows) > 1:
        raise ValueError(f"--features: the streams have {rows} clips; they must agree (to within one)")
    if max(rows) != min(rows):
        print(f"note: --features streams have {rows} clips; cut to {min(rows)}", file=sys.stderr)
    return torch.cat([stream[: min(rows)] for stream in streams], dim=-1)


def run_predict(args: argparse.Namespace) -> None:
    """Check every argument, run the model, then (only when all went well) print and write the outputs."""
    model_dir, query = _check_predict_arguments(args)
    model = RDMFForMomentRetrieval.from_pretrained(model_dir).eval()
    processor = (
        RDMFProcessor.from_pretrained(model_dir) if (model_dir / "processor_config.json").is_file() else None
    )
    inputs, duration, clip_length, source = _predict_inputs(args, model, processor, query)
    moments, saliency, windows = _run_model(model, inputs, args, clip_length, duration)
    trained_heads = model.config.trained_heads
    highlight_only = model.config.moment_head_trained is False
    clips = top_clips(saliency, args.top_k) if highlight_only else None
    figure = plot_prediction(saliency, None if highlight_only else moments, duration, query, args.gt, clips)

    print(f"model {model_dir}: {type(model).__name__}, trained heads: {_describe_heads(trained_heads)}")
    print(f"{source}: {len(saliency)} clips of {clip_length:g} s ({duration:.2f} s)")
    if windows is not None:
        print(
            f"long video: {len(windows)} overlapping windows of {args.window_clips} clips, predictions merged"
        )
    print(f'query "{query}"')
    if highlight_only:
        print("highlight-only checkpoint (its moment head was not trained): top clips by saliency (seconds):")
        for clip in clips:
            print(
                f"  {clip['rank']}. {clip['start']:7.2f} - {clip['end']:7.2f}  saliency {clip['saliency']:.4f}"
            )
    else:
        if trained_heads is None:
            print(
                "note: this checkpoint does not record which heads were trained (config.trained_heads); the "
                "moments below mean something only if its moment head was trained"
            )
        print("top moments (seconds):")
        for rank, moment in enumerate(moments, 1):
            print(f"  {rank}. {moment['start']:7.2f} - {moment['end']:7.2f}  score {moment['score']:.4f}")
    print(SALIENCY_MEANING)
    print("saliency per clip: " + " ".join(f"{clip['saliency']:.2f}" for clip in saliency))
    atomic_write(args.output, lambda path: figure.savefig(path, dpi=120, format="png"))
    print(f"wrote {args.output}")
    if args.json:
        result = {"query": query, "duration": duration, "trained_heads": trained_heads}
        result.update({"top_clips": clips} if highlight_only else {"moments": moments})
        result.update({"saliency": saliency, "saliency_meaning": SALIENCY_MEANING})
        atomic_write_text(args.json, json.dumps(result, indent=1))
        print(f"wrote {args.json}")


def _run_model(model, inputs: dict, args, clip_length: float, duration: float):
    """``(moments, saliency, windows)`` of one video: one pass, or windows for a long one (windows None
    otherwise). A highlight-only checkpoint's moments are computed but not shown, so its warning is muted."""
    with warnings.catch_warnings():
        if model.config.moment_head_trained is False:
            warnings.simplefilter("ignore", UserWarning)
        if "long_video_features" in inputs:
            video = inputs.pop("long_video_features")
            result = predict_long_video(
                model,
                video,
                inputs,
                clip_length,
                duration,
                args.window_clips,
                top_k=args.top_k,
                nms_threshold=args.nms,
            )
            return result.moments, result.saliency, result.windows
        with torch.no_grad():
            outputs = model(**inputs)
        moments = post_process_moment_retrieval(outputs, [duration], top_k=args.top_k, nms_threshold=args.nms)
        return moments[0], post_process_highlights(outputs, clip_length)[0], None


def _describe_heads(trained_heads: list[str] | None) -> str:
    return "not recorded" if trained_heads is None else ", ".join(trained_heads) or "none"


def _check_predict_arguments(args: argparse.Namespace) -> tuple[Path, str]:
    model_dir = Path(args.model)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"--model: no saved model (config.json) in {model_dir}")
    if (args.video is None) == (args.features is None):
        raise ValueError("--video, --features: give exactly one of them")
    paths = [("video", args.video), ("text_features", args.text_features)]
    paths += [("features", path) for path in args.features or []]
    for name, value in paths:
        if value is not None and not Path(value).is_file():
            raise FileNotFoundError(f"--{name.replace('_', '-')}: no file at {value}")
    query = (args.query or "").strip()
    if not query:
        raise ValueError("--query: the query is empty")
    if args.video is not None:
        with _as_video_argument():
            read_frame_timestamps(args.video)  # fails fast, before the model loads
    if args.gt is not None and not 0 <= args.gt[0] < args.gt[1]:
        raise ValueError(f"--gt: expected START END with 0 <= START < END seconds, got {args.gt}")
    if args.top_k < 1:
        raise ValueError(f"--top-k: expected a positive integer, got {args.top_k}")
    if args.window_clips < 1:
        raise ValueError(f"--window-clips: expected a positive integer, got {args.window_clips}")
    return model_dir, query


def _predict_inputs(args, model, processor, query: str):
    """Model inputs, the duration and clip length in seconds, and a description of the video source."""
    config = model.config
    if args.video is not None:
        if processor is None or config.video_backbone is None:
            raise ValueError(
                f"--video: the model in {args.model} has no video backbone and processor; use --features"
            )
        video_processor = processor.video_processor
        clip_length, source = video_processor.clip_length, "video"
        with _as_video_argument():
            stamps = read_frame_timestamps(args.video)
            sampling = plan_clips(stamps.times, stamps.duration, clip_length, video_processor.frames_per_clip)
            if sampling.num_clips > args.window_clips:
                inputs = {"long_video_features": embed_video_file(model, video_processor, args.video)}
                duration = stamps.duration
            else:
                video = video_processor(args.video)
                inputs = {"pixel_values": video["pixel_values"], "pixel_mask": video["pixel_mask"]}
                duration = float(video["durations"][0])
    else:
        features = load_feature_streams([Path(p) for p in args.features])
        if features.shape[1] != config.video_feature_dim:
            raise ValueError(
                f"--features: {' '.join(args.features)} has width {features.shape[1]}, "
                f"the model expects {config.video_feature_dim}"
            )
        manifest_clip_length = _check_feature_manifests(args, config)
        clip_length = (
            args.clip_length
            or manifest_clip_length
            or (processor.video_processor.clip_length if processor else 2.0)
        )
        key = "long_video_features" if features.shape[0] > args.window_clips else "video_features"
        inputs = {key: features if key == "long_video_features" else features.unsqueeze(0)}
        duration, source = args.duration or features.shape[0] * clip_length, "features"
    inputs.update(_query_inputs(args, config, processor, query))
    return inputs, duration, clip_length, f"{source} {args.video or ' + '.join(args.features)}"


def _check_feature_manifests(args, config) -> float | None:
    """Refuse ``--features``/``--text-features`` whose manifests (``rdmf_features.json`` beside them)
    disagree with the model; returns the features' clip length when a manifest records it."""
    text_dir = Path(args.text_features).parent if args.text_features else None
    return check_feature_folders(
        sorted({Path(path).parent for path in args.features}),
        text_dir,
        text_feature_dim=config.text_feature_dim,
        clip_length=args.clip_length,
        trained_on=read_model_feature_signatures(args.model),
        expected_by=f"the model in {args.model}" + (" (--clip-length)" if args.clip_length else ""),
    )


@contextlib.contextmanager
def _as_video_argument():
    """Report the video processor's errors (about ``videos``) as errors about ``--video``."""
    try:
        yield
    except (ValueError, FileNotFoundError) as error:
        raise ValueError(f"--video: {str(error).removeprefix('videos: ')}") from error


def _query_inputs(args, config, processor, query: str) -> dict:
    if args.text_features is not None:
        text = load_clip_features(
            Path(args.text_features), key="last_hidden_state", argument="--text-features"
        )
        if text.shape[1] != config.text_feature_dim:
            raise ValueError(
                f"--text-features: {args.text_features} has width {text.shape[1]}, the model expects "
                f"{config.text_feature_dim}"
            )
        return {"text_features": text.unsqueeze(0)}
    if processor is None or config.text_backbone is None:
        raise ValueError(f"--query: the model in {args.model} has no text backbone; give --text-features")
    return processor.tokenize(query)


def plot_prediction(
    saliency: list[dict], moments: list[dict] | None, duration: float, query: str, gt=None, clips=None
):
    """Saliency over time (one step per clip), with predicted moments shaded (darker = better) or, for a
    highlight-only checkpoint, its top ``clips`` shaded (darker = higher rank) and dotted; ground truth
    hatched."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 3.2))
    for shade in _shaded_spans(moments or [], clips or []):
        axis.axvspan(
            shade["start"], shade["end"], color="tab:orange", alpha=shade["alpha"], lw=0, label=shade["label"]
        )
    if gt is not None:
        axis.axvspan(
            gt[0], gt[1], facecolor="none", edgecolor="tab:green", hatch="//", lw=1.5, label="ground truth"
        )
    edges = [clip["start"] for clip in saliency] + [saliency[-1]["end"]]
    values = [clip["saliency"] for clip in saliency]
    axis.stairs(values, edges, baseline=None, color="tab:blue", lw=2, label="saliency")
    if clips:
        centres = [(clip["start"] + clip["end"]) / 2 for clip in clips]
        axis.plot(
            centres, [clip["saliency"] for clip in clips], "o", color="tab:red", ms=4, label="their scores"
        )
    axis.set_xlim(0, max(duration, edges[-1]))
    axis.set_ylim(0, 1.05)
    axis.set_xlabel("time (s)")
    axis.set_ylabel("saliency")
    axis.set_title(f'"{query}"', fontsize=10)
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=4, fontsize=8, frameon=False)
    figure.tight_layout()
    return figure


def _shaded_spans(moments: list[dict], clips: list[dict]) -> list[dict]:
    """Spans to shade: moments by score relative to the best, or top clips by rank."""
    best = max((m["score"] for m in moments), default=1.0) or 1.0
    shades = [
        {**m, "alpha": 0.1 + 0.3 * m["score"] / best, "label": "predicted moments" if i == 0 else None}
        for i, m in enumerate(moments)
    ]
    shades += [
        {
            **c,
            "alpha": 0.2 + 0.4 * (len(clips) - i) / len(clips),
            "label": f"top {len(clips)} clips" if i == 0 else None,
        }
        for i, c in enumerate(clips)
    ]
    return shades


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rdmf", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser(
        "predict", help="a saved model on a video file (or its features) and a query"
    )
    predict.add_argument("--model", required=True, help="a folder with a saved model (and its processor)")
    predict.add_argument("--video", help="a video file (needs a model with backbones and a processor)")
    predict.add_argument(
        "--features",
        nargs="+",
        help="pre-extracted clip features instead (.npz 'features' array or .npy); several files are "
        "streams, each L2-normalised per clip, then concatenated (e.g. I3D rgb and flow)",
    )
    predict.add_argument("--query", required=True, help="the sentence to ground")
    predict.add_argument(
        "--text-features",
        help="the query's token features (.npz 'last_hidden_state'), for models without a text tower",
    )
    predict.add_argument("--clip-length", type=float, help="seconds per feature row with --features")
    predict.add_argument(
        "--duration", type=float, help="the video's duration with --features (default: clips x length)"
    )
    predict.add_argument(
        "--gt", type=float, nargs=2, metavar=("START", "END"), help="a ground-truth moment to draw"
    )
    predict.add_argument("--top-k", type=int, default=5)
    predict.add_argument("--nms", type=float, default=0.7, help="NMS IoU threshold")
    predict.add_argument("--output", default="rdmf_prediction.png", help="the PNG to write")
    predict.add_argument("--json", help="also write the moments and saliency as JSON here")
    predict.add_argument(
        "--window-clips",
        type=int,
        default=DEFAULT_WINDOW_CLIPS,
        help="longer videos run in overlapping windows of this many clips (docs/inference.md)",
    )
    predict.set_defaults(handler=run_predict)
    add_extract_features_parser(commands)
    return parser


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
    extract.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    extract.set_defaults(handler=run_extract_features)


def run_extract_features(args: argparse.Namespace) -> None:
    from .feature_extraction import (
        build_clip_encoder,
        clip_text_encoder,
        extract_query_features,
        extract_video_features,
    )

    videos = args.videos[0] if len(args.videos) == 1 else args.videos
    if args.queries is not None and not Path(args.queries).is_file():
        raise FileNotFoundError(f"--queries: no file at {args.queries}")
    timm_weights = False if args.random_weights else (args.timm_weights or True)
    encoders = [
        build_clip_encoder(
            spec,
            clip_weights=args.clip_model,
            swin_weights=None if args.random_weights else args.swin_weights,
            timm_pretrained=timm_weights,
        )
        for spec in args.backbones
    ]
    report = extract_video_features(
        videos, args.out, encoders, args.clip_length, args.frames_per_clip, args.batch_size, args.device
    )
    folders = ", ".join(str(Path(args.out) / e.name) for e in encoders)
    print(
        f"videos: {len(report.written)} written ({len(report.redone)} of them redone: incomplete files), "
        f"{len(report.skipped)} already complete; features in {folders}"
    )
    if args.queries is not None:
        text = extract_query_features(
            args.queries, Path(args.out) / "text", clip_text_encoder(args.clip_model), device=args.device
        )
        print(
            f"queries: {len(text.written) + len(text.redone)} written, {len(text.skipped)} already complete"
        )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"rdmf {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
