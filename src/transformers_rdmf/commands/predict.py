"""``rdmf predict``: a saved model on a video file (or its features) and a query: the top moments (or,
for a highlight-only checkpoint, the top clips), the saliency per clip, a plot and optionally JSON."""

import argparse
import contextlib
import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..atomic import (
    atomic_savefig,
    atomic_write_json,
    check_figure_path,
    check_not_replacing,
    check_output_paths,
)
from ..checkpoint_loading import load_checkpoint_model
from ..data.features import FeatureError, check_feature_values, l2_normalize, read_array
from ..errors import require_positive_integer, require_positive_seconds
from ..feature_manifest import check_feature_folders, read_model_feature_signatures
from ..long_video import embed_video_file, predict_long_video
from ..metrics.inputs import WINDOW_END_TOLERANCE
from ..post_processing import post_process_highlights, post_process_moment_retrieval, top_clips
from ..processing_rdmf import RDMFProcessor
from ..video_processing_rdmf import plan_clips, read_frame_timestamps
from .plotting import plot_prediction

DEFAULT_TOP_K = 5
SALIENCY_MEANING = (
    "saliency: per clip, the sigmoid probability (0..1) that the clip matches the query, each clip on its "
    "own (they do not sum to 1); rank clips by it, or keep those above a threshold (docs/inference.md)"
)


def load_feature_rows(path: Path, key: str = "features", argument: str = "--features") -> torch.Tensor:
    """One video's clip features (or a query's token features) from a ``.npz`` (array ``key``) or ``.npy``,
    L2-normalised per row, as the data loaders read them (`data.features.read_array`, `l2_normalize`).

    Returns:
        ``(rows, dim)`` float32.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{argument}: no file at {path}")
    try:
        data = np.asarray(read_array(path, key), dtype=np.float32)
    except FeatureError as error:
        raise ValueError(f"{argument}: {error}") from None
    except (ValueError, OSError) as error:
        raise ValueError(f"{argument}: {path} is not a .npz or .npy array file ({error})") from None
    if data.ndim != 2 or data.shape[0] == 0:
        raise ValueError(f"{argument}: {path} must hold a (rows, dim) array, got shape {data.shape}")
    try:
        check_feature_values(data, path)
    except FeatureError as error:
        raise ValueError(f"{argument}: {error}") from None
    return torch.from_numpy(l2_normalize(data))


def load_feature_streams(paths: list[Path]) -> torch.Tensor:
    """Several streams of one video (e.g. I3D rgb and flow), each L2-normalised per clip, concatenated.

    As the data loaders do: streams whose clip counts differ by one are cut to the shorter (and said so);
    more than that is an error.

    Returns:
        ``(clips, sum of widths)`` float32.
    """
    streams = [load_feature_rows(path) for path in paths]
    rows = [stream.shape[0] for stream in streams]
    if max(rows) - min(rows) > 1:
        raise ValueError(f"--features: the streams have {rows} clips; they must agree (to within one)")
    if max(rows) != min(rows):
        print(f"note: --features streams have {rows} clips; cut to {min(rows)}", file=sys.stderr)
    return torch.cat([stream[: min(rows)] for stream in streams], dim=-1)


def run_predict(args: argparse.Namespace) -> None:
    """Check every argument, run the model, then (only when all went well) print and write the outputs."""
    model_dir, query = _check_predict_arguments(args)
    model = load_checkpoint_model(model_dir, "--model")
    processor = (
        RDMFProcessor.from_pretrained(model_dir) if (model_dir / "processor_config.json").is_file() else None
    )
    inputs = _predict_inputs(args, model, processor, query)
    args.top_k = _check_top_k(args.top_k, model.config, one_pass=inputs.long_video is None)
    duration, clip_length, source = inputs.duration, inputs.clip_length, inputs.source
    moments, saliency, windows = _run_model(model, inputs, args)
    _check_finite_outputs(moments, saliency, model_dir)
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
    atomic_savefig(figure, args.output, dpi=120)
    print(f"wrote {args.output}")
    if args.json:
        result = {"query": query, "duration": duration, "trained_heads": trained_heads}
        result.update({"top_clips": clips} if highlight_only else {"moments": moments})
        result.update({"saliency": saliency, "saliency_meaning": SALIENCY_MEANING})
        atomic_write_json(args.json, result)
        print(f"wrote {args.json}")


def _run_model(model, inputs: "PredictInputs", args):
    """``(moments, saliency, windows)`` of one video: one pass, or windows for a long one (windows None
    otherwise). A highlight-only checkpoint's moments are computed but not shown, so its warning is muted."""
    with warnings.catch_warnings():
        if model.config.moment_head_trained is False:  # only this warning: the others still show
            warnings.filterwarnings("ignore", message="this checkpoint's moment head was not trained")
        if inputs.long_video is not None:
            result = predict_long_video(
                model,
                inputs.long_video,
                inputs.model_inputs,
                inputs.clip_length,
                inputs.duration,
                args.window_clips,
                top_k=args.top_k,
                nms_threshold=args.nms,
            )
            return result.moments, result.saliency, result.windows
        with torch.no_grad():
            outputs = model(**inputs.model_inputs)
        moments = post_process_moment_retrieval(
            outputs, [inputs.duration], top_k=args.top_k, nms_threshold=args.nms
        )
        return moments[0], post_process_highlights(outputs, inputs.clip_length)[0], None


def _check_finite_outputs(moments: list[dict], saliency: list[dict], model_dir: Path) -> None:
    """Stop rather than print or write a NaN (finite weights and inputs can still overflow)."""
    values = [clip["saliency"] for clip in saliency]
    values += [moment[key] for moment in moments for key in ("start", "end", "score")]
    if not all(math.isfinite(value) for value in values):
        raise ValueError(
            f"--model {model_dir}: the model's outputs hold NaN or infinity on these inputs; nothing is written"
        )


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
            with warnings.catch_warnings():  # a short video is reported once, when it is decoded
                warnings.simplefilter("ignore")
                read_frame_timestamps(args.video)  # fails fast, before the model loads
    if args.gt is not None and not (0 <= args.gt[0] < args.gt[1] and math.isfinite(args.gt[1])):
        raise ValueError(f"--gt: expected START END with 0 <= START < END seconds, got {args.gt}")
    if args.top_k is not None:
        require_positive_integer("--top-k", args.top_k)
    require_positive_integer("--window-clips", args.window_clips)
    if not 0 <= args.nms <= 1:
        raise ValueError(f"--nms: expected an IoU threshold in [0, 1] (1 keeps every moment), got {args.nms}")
    for flag, value in (("--clip-length", args.clip_length), ("--duration", args.duration)):
        if value is not None:
            require_positive_seconds(flag, value)
    if args.video is not None and (args.clip_length is not None or args.duration is not None):
        raise ValueError(
            "--clip-length, --duration: they describe --features; a --video's come from the file"
        )
    check_output_paths(
        {"--output": args.output, "--json": args.json},
        {
            "--model": model_dir,
            "--video": args.video,
            "--features": args.features,
            "--text-features": args.text_features,
        },
    )
    check_figure_path("--output", args.output)
    check_not_replacing({"--output": args.output, "--json": args.json}, args.overwrite)
    return model_dir, query


def _check_top_k(top_k: int | None, config, one_pass: bool) -> int:
    """``--top-k``, or its default (5, or fewer when the model proposes fewer). A moment checkpoint proposes
    ``config.num_moment_queries`` moments per pass; asking for more is an error."""
    if top_k is None:
        return min(DEFAULT_TOP_K, config.num_moment_queries)
    if one_pass and config.moment_head_trained is not False and top_k > config.num_moment_queries:
        raise ValueError(
            f"--top-k {top_k}: the model proposes {config.num_moment_queries} moments per pass "
            f"(config.num_moment_queries); ask for at most that many"
        )
    return top_k


@dataclass
class PredictInputs:
    """What ``rdmf predict`` runs the model on.

    Attributes:
        model_inputs: the forward's keyword arguments: the query's, and the video's for one pass.
        long_video: ``(clips, dim)`` clip features of a video longer than a window (run in windows, see
            :mod:`long_video`); None when the video fits one pass.
        duration, clip_length: seconds. source: the video or feature files, for the printout.
    """

    model_inputs: dict
    long_video: torch.Tensor | None
    duration: float
    clip_length: float
    source: str


def _predict_inputs(args, model, processor, query: str) -> PredictInputs:
    config = model.config
    long_video = None
    if args.video is not None:
        if processor is None or config.video_backbone is None:
            raise ValueError(
                f"--video: the model in {args.model} has no video backbone and processor; use --features"
            )
        video_processor = processor.video_processor
        clip_length, source = video_processor.clip_length, f"video {args.video}"
        with _as_video_argument():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                stamps = read_frame_timestamps(args.video)
            sampling = plan_clips(stamps.times, stamps.duration, clip_length, video_processor.frames_per_clip)
            if sampling.num_clips > args.window_clips:
                inputs, duration = {}, stamps.duration
                long_video = embed_video_file(model, video_processor, args.video)
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
        clip_length = next(
            value
            for value in (
                args.clip_length,
                manifest_clip_length,
                processor.video_processor.clip_length if processor else 2.0,
            )
            if value is not None
        )
        if features.shape[0] > args.window_clips:
            inputs, long_video = {}, features
        else:
            inputs = {"video_features": features.unsqueeze(0)}
        duration, source = (
            args.duration if args.duration is not None else features.shape[0] * clip_length,
            f"features {' + '.join(args.features)}",
        )
    _check_duration_against_clips(args, duration, features_rows=None if args.video else features.shape[0],
                                  clip_length=clip_length)  # fmt: skip
    inputs.update(_query_inputs(args, config, processor, query))
    return PredictInputs(inputs, long_video, duration, clip_length, source)


def _check_duration_against_clips(
    args, duration: float, features_rows: int | None, clip_length: float
) -> None:
    """``--duration`` must cover all but the last (possibly partial) feature row; ``--gt`` must end in the video
    (as an annotation's window, within `WINDOW_END_TOLERANCE`)."""
    if (
        features_rows is not None
        and args.duration is not None
        and duration <= (features_rows - 1) * clip_length
    ):
        raise ValueError(
            f"--duration {duration:g}: the {features_rows} feature rows of {clip_length:g} s span more than "
            f"{(features_rows - 1) * clip_length:g} s; give the video's duration, or leave --duration out"
        )
    if args.gt is not None and args.gt[1] > duration + WINDOW_END_TOLERANCE:
        raise ValueError(f"--gt: the window {args.gt} ends past the video's {duration:g} s")


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
        text = load_feature_rows(
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
