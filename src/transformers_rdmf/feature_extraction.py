"""Clip and query features from your own videos, in the layout the data loaders read.

Videos are decoded with the video processor's decoder (the container's timestamps, clips of
``clip_length`` seconds, ``frames_per_clip`` frames each, see :mod:`video_processing_rdmf`), streamed a
batch of clips at a time, and run through one or more backbones: CLIP's vision tower (transformers),
torchvision's video Swin (``swin3d_t``, the VideoSwin family of the paper) or any timm image model. Each
backbone fills its own folder ``out/{name}/{vid}.npz`` (array ``features``, ``(clips, dim)`` float32, one
row per clip, not normalised: the loaders L2-normalise on read), next to an ``rdmf_features.json``
manifest (see :mod:`feature_manifest`). Queries go to ``out/text/qid{qid}.npz`` with
``last_hidden_state`` ``(tokens, dim)`` and ``pooler_output`` ``(dim,)`` from CLIP's text tower.

Runs are resumable: files are written under a temporary name and renamed, and a video is skipped only
when every stream's file loads with the row count its clip plan gives; a truncated or corrupt file is
written again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers.video_processing_utils import BaseVideoProcessor

from .atomic import atomic_write
from .data.annotations import AnnotationError, read_jsonl
from .feature_manifest import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    FeatureManifestError,
    read_manifest,
    require_agreement,
    signature,
    write_json_atomically,
)
from .video_processing_rdmf import (
    ClipSampling,
    RDMFVideoProcessor,
    iter_wanted_frames,
    plan_clips,
    read_frame_timestamps,
)

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv")
KINETICS_MEAN, KINETICS_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


# ---------------------------------------------------------------------------------------------
# Backbones
# ---------------------------------------------------------------------------------------------


@dataclass
class ClipEncoder:
    """A backbone that turns the sampled frames of clips into one feature row per clip.

    Attributes:
        name: the stream's folder name under the output folder (``clip``, ``swin3d_t``, ``timm_resnet50``).
        backbone: what the manifest records as the architecture (``clip``, ``swin3d_t``, ``timm:resnet50``).
        weights: where the weights came from (a checkpoint name or path, ``random``).
        module: frames ``(n, 3, h, w)`` -> ``(n, dim)``; with ``temporal``, clips ``(n, 3, t, h, w)`` -> ``(n, dim)``.
        feature_dim: the width of a clip's features.
        video_processor: resize, crop and normalisation for this backbone.
        temporal: the module takes each clip's frames together (a video model); otherwise each frame
            goes through alone and a clip's feature is the mean of its frames'.
    """

    name: str
    backbone: str
    weights: str
    module: nn.Module
    feature_dim: int
    video_processor: RDMFVideoProcessor
    temporal: bool = False

    @property
    def preprocessing(self) -> dict:
        processor = self.video_processor
        return {
            "shortest_edge": processor.size.shortest_edge,
            "crop_size": [processor.crop_size.height, processor.crop_size.width],
            "image_mean": [round(float(v), 8) for v in processor.image_mean],
            "image_std": [round(float(v), 8) for v in processor.image_std],
        }

    @torch.no_grad()
    def encode(self, frames: torch.Tensor, frames_per_clip: int) -> torch.Tensor:
        """``(clips * frames_per_clip, 3, H, W)`` uint8, clip-major -> ``(clips, feature_dim)`` float32."""
        device = next(self.module.parameters()).device
        pixels = preprocess_frames(self.video_processor, frames, frames_per_clip).to(device)
        if self.temporal:
            features = self.module(pixels.transpose(1, 2))
        else:
            features = self.module(pixels.flatten(0, 1)).unflatten(0, (-1, frames_per_clip)).mean(dim=1)
        return features.float().cpu()


def preprocess_frames(
    video_processor: RDMFVideoProcessor, frames: torch.Tensor, frames_per_clip: int
) -> torch.Tensor:
    """Resize, crop and normalise decoded frames as ``video_processor`` does for whole videos.

    Args:
        frames: ``(clips * frames_per_clip, 3, H, W)`` uint8, clip-major.

    Returns:
        ``(clips, frames_per_clip, 3, h, w)`` float32.
    """
    pixels = BaseVideoProcessor.preprocess(video_processor, [frames], do_sample_frames=False)
    return pixels["pixel_values_videos"][0].unflatten(0, (-1, frames_per_clip))


class _ClipImageEmbeds(nn.Module):
    """CLIP's vision tower and projection: ``(n, 3, h, w)`` -> ``(n, projection_dim)`` image embeddings."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.encoder(pixel_values=pixels).image_embeds


def _processor(shortest_edge: int, crop: int, mean, std, resample=None) -> RDMFVideoProcessor:
    extra = {"resample": resample} if resample is not None else {}
    return RDMFVideoProcessor(
        size={"shortest_edge": int(shortest_edge)},
        crop_size={"height": int(crop), "width": int(crop)},
        image_mean=list(mean),
        image_std=list(std),
        **extra,
    )


def clip_image_encoder(
    weights: str | None = "openai/clip-vit-base-patch32", config=None, name: str = "clip"
) -> ClipEncoder:
    """CLIP's vision tower + projection (the frames' image embeddings, ``projection_dim`` wide).

    Args:
        weights: a CLIP checkpoint (hub name or local folder) for ``from_pretrained``.
        config: instead, a `CLIPConfig` (or its dict) for a randomly initialised model (tests).
    """
    from transformers import CLIPConfig, CLIPVisionConfig, CLIPVisionModelWithProjection

    if config is not None:
        clip = config if isinstance(config, CLIPConfig) else CLIPConfig(**config)
        vision: CLIPVisionConfig = clip.vision_config
        vision.projection_dim = clip.projection_dim
        encoder, weights = CLIPVisionModelWithProjection(vision), "random"
    elif weights is not None:
        clip = CLIPConfig.from_pretrained(weights)
        vision = clip.vision_config
        vision.projection_dim = clip.projection_dim  # a CLIPModel checkpoint keeps it on the outer config
        encoder = CLIPVisionModelWithProjection.from_pretrained(weights, config=vision)
    else:
        raise ValueError("clip_image_encoder: give weights (a CLIP checkpoint) or a config")
    size = encoder.config.image_size
    processor = _processor(size, size, RDMFVideoProcessor.image_mean, RDMFVideoProcessor.image_std)
    dim = encoder.config.projection_dim
    return ClipEncoder(name, "clip", str(weights), _ClipImageEmbeds(encoder).eval(), dim, processor)


def swin3d_encoder(
    weights: str | None = "KINETICS400_V1",
    name: str = "swin3d_t",
    image_size: int = 224,
    shortest_edge: int = 256,
    **model_kwargs,
) -> ClipEncoder:
    """torchvision's Video Swin-T (Kinetics-400): a clip's frames together, pooled to 768 features.

    Args:
        weights: a ``Swin3D_T_Weights`` name (``KINETICS400_V1``, fetched by torchvision), a local
            state-dict file, or None for random weights.
        image_size, shortest_edge: the centre crop after resizing the shortest edge (torchvision's
            Kinetics transforms: 224 after 256).
        **model_kwargs: instead, the arguments of ``SwinTransformer3d`` for a smaller random model (tests).
    """
    from torchvision.models.video import Swin3D_T_Weights, swin3d_t
    from torchvision.models.video.swin_transformer import SwinTransformer3d

    if model_kwargs:
        model, weights = SwinTransformer3d(**{"num_classes": 1, **model_kwargs}), "random"
    elif weights is None or Path(str(weights)).is_file():
        model = swin3d_t(weights=None)
        if weights is not None:
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        weights = weights or "random"
    else:
        model = swin3d_t(weights=Swin3D_T_Weights[weights])
    dim = model.head.in_features
    model.head = nn.Identity()
    processor = _processor(shortest_edge, image_size, KINETICS_MEAN, KINETICS_STD)
    return ClipEncoder(name, "swin3d_t", str(weights), model.eval(), dim, processor, temporal=True)


def timm_encoder(model_name: str, pretrained: bool | str = True, name: str | None = None) -> ClipEncoder:
    """Any timm image model by name: pooled features without classifier (``num_features`` wide).

    Args:
        pretrained: True for timm's pretrained weights, a local weights file, or False for random weights.
    """
    import timm

    overlay = {"file": str(pretrained)} if isinstance(pretrained, (str, os.PathLike)) else {}
    model = timm.create_model(
        model_name, pretrained=bool(pretrained), num_classes=0, pretrained_cfg_overlay=overlay or None
    )
    data = timm.data.resolve_data_config(model=model)
    crop = data["input_size"][-1]
    processor = _processor(round(crop / data.get("crop_pct", 1.0)), crop, data["mean"], data["std"])
    if isinstance(pretrained, (str, os.PathLike)):
        weights = str(pretrained)
    else:
        weights = (
            f"timm:{model_name}.{model.pretrained_cfg.get('tag') or 'default'}" if pretrained else "random"
        )
    folder = name or f"timm_{model_name.replace('/', '_')}"
    return ClipEncoder(folder, f"timm:{model_name}", weights, model.eval(), model.num_features, processor)


@dataclass
class TextEncoder:
    """CLIP's text tower and tokenizer: a query -> its token states and pooled (end-of-text) state."""

    backbone: str
    weights: str
    model: nn.Module
    tokenizer: object
    feature_dim: int

    @torch.no_grad()
    def encode(self, queries: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query ``(last_hidden_state (tokens, dim), pooler_output (dim,))``, padding removed."""
        tokens = self.tokenizer(
            list(queries), padding=True, truncation=True, return_tensors="pt", return_token_type_ids=False
        )
        device = next(self.model.parameters()).device
        outputs = self.model(**{k: v.to(device) for k, v in tokens.items()})
        lengths = tokens["attention_mask"].sum(dim=1).tolist()
        states, pooled = outputs.last_hidden_state.float().cpu(), outputs.pooler_output.float().cpu()
        return [(states[i, :n].numpy(), pooled[i].numpy()) for i, n in enumerate(lengths)]


def clip_text_encoder(
    weights: str | None = "openai/clip-vit-base-patch32", config=None, tokenizer=None
) -> TextEncoder:
    """CLIP's text tower (Moment-DETR's query features: ``text_config.hidden_size`` wide).

    Args:
        weights: a CLIP checkpoint (hub name or local folder) holding the model and its tokenizer.
        config, tokenizer: instead, a `CLIPConfig` (or dict) for a random tower and a tokenizer (tests).
    """
    from transformers import AutoTokenizer, CLIPConfig, CLIPTextModel

    if config is not None:
        clip = config if isinstance(config, CLIPConfig) else CLIPConfig(**config)
        model, weights = CLIPTextModel(clip.text_config), "random"
    elif weights is not None:
        model = CLIPTextModel.from_pretrained(weights)
    else:
        raise ValueError("clip_text_encoder: give weights (a CLIP checkpoint) or a config and a tokenizer")
    if tokenizer is None:
        if weights == "random":
            raise ValueError("clip_text_encoder: a random text tower needs a tokenizer")
        tokenizer = AutoTokenizer.from_pretrained(weights)
    return TextEncoder("clip_text", str(weights), model.eval(), tokenizer, model.config.hidden_size)


def build_clip_encoder(
    spec: str, *, clip_weights: str, swin_weights: str | None, timm_pretrained
) -> ClipEncoder:
    """``clip``, ``swin3d_t`` or ``timm:MODEL`` -> its encoder (the command line's ``--backbones``)."""
    if spec == "clip":
        return clip_image_encoder(clip_weights)
    if spec == "swin3d_t":
        return swin3d_encoder(swin_weights)
    if spec.startswith("timm:") and len(spec) > 5:
        return timm_encoder(spec[5:], pretrained=timm_pretrained)
    raise ValueError(f"--backbones: unknown backbone {spec!r}; expected clip, swin3d_t or timm:MODEL_NAME")


# ---------------------------------------------------------------------------------------------
# Decoding a batch of clips at a time
# ---------------------------------------------------------------------------------------------


def iter_clip_frames(
    path: str | os.PathLike, pts: np.ndarray, sampling: ClipSampling, clips_per_batch: int
) -> Iterator[torch.Tensor]:
    """Decode ``path`` once, yielding the sampled frames of ``clips_per_batch`` clips at a time.

    Only the frames still needed by a clip not yet yielded are kept, so memory is one batch of clips
    whatever the video's length.

    Args:
        pts: ``(frames,)`` the stream's presentation timestamps (`read_frame_timestamps`).
        sampling: the clip plan (`plan_clips`) over those frames.

    Yields:
        ``(clips_in_batch * frames_per_clip, 3, height, width)`` uint8, clip-major, in clip order.
    """
    wanted = pts[sampling.frame_indices]  # (clips, frames_per_clip)
    wanted_set = set(wanted.reshape(-1).tolist())
    kept: dict[int, np.ndarray] = {}
    next_clip, batch = 0, []
    for frame_pts, image in iter_wanted_frames(path, wanted_set):
        kept[frame_pts] = image
        while next_clip < len(wanted) and all(int(p) in kept for p in wanted[next_clip]):
            batch.extend(kept[int(p)] for p in wanted[next_clip])
            next_clip += 1
            if next_clip < len(wanted):
                oldest_needed = int(wanted[next_clip:].min())
                kept = {p: f for p, f in kept.items() if p >= oldest_needed}
            if len(batch) == clips_per_batch * wanted.shape[1]:
                yield torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2)
                batch = []
        if next_clip == len(wanted):
            break
    if next_clip < len(wanted):
        missing = sorted(int(p) for p in wanted[next_clip:].reshape(-1) if int(p) not in kept)
        raise ValueError(f"videos: {path}: the decoder returned no frame at pts {missing[:5]}")
    if batch:
        yield torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2)


# ---------------------------------------------------------------------------------------------
# Writing and checking feature files
# ---------------------------------------------------------------------------------------------


def write_npz_atomically(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez`` through `atomic.atomic_write`: an interrupted run leaves no partial file."""
    atomic_write(path, lambda temporary: np.savez(temporary, **arrays))


def feature_file_is_complete(path: Path, key: str, rows: int | None, dim: int) -> bool:
    """Whether ``path`` loads whole with ``key`` of shape ``(rows, dim)`` (any row count when None), all finite."""
    if not path.is_file():
        return False
    try:
        with np.load(path) as archive:
            array = archive[key]
    except Exception:  # a truncated or corrupt archive fails in many ways (zipfile, zlib, numpy)
        return False
    return (
        array.ndim == 2
        and (rows is None or array.shape[0] == rows)
        and array.shape[1] == dim
        and bool(np.isfinite(array).all())
    )


@dataclass
class ExtractionReport:
    """What a run did: ids written, skipped (already complete) and redone (found incomplete, written again)."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    redone: list[str] = field(default_factory=list)


def _open_stream_manifest(folder: Path, expected: dict) -> dict:
    """The folder's manifest, created when absent; an existing one must have the same signature."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(folder)
    if manifest is None:
        manifest = {**expected, "videos" if expected["kind"] == "video" else "queries": {}}
        write_json_atomically(folder / MANIFEST_NAME, manifest)
        return manifest
    require_agreement(
        manifest,
        signature(expected),
        f"existing features in {folder} ({MANIFEST_NAME})",
        "this run (write to another --out folder, or delete the old features)",
    )
    return manifest


def _video_manifest(encoder: ClipEncoder, clip_length: float, frames_per_clip: int) -> dict:
    return {
        "format": MANIFEST_FORMAT,
        "kind": "video",
        "stream": encoder.name,
        "layout": "{vid}.npz with 'features' (clips, feature_dim) float32, one row per clip",
        "backbone": encoder.backbone,
        "weights": encoder.weights,
        "feature_dim": int(encoder.feature_dim),
        "clip_length": float(clip_length),
        "frames_per_clip": int(frames_per_clip),
        "sampled_fps": frames_per_clip / clip_length,
        "preprocessing": encoder.preprocessing,
    }


# ---------------------------------------------------------------------------------------------
# Videos
# ---------------------------------------------------------------------------------------------


def list_videos(videos: str | os.PathLike | Iterable[str | os.PathLike]) -> list[tuple[str, Path]]:
    """``(vid, path)`` pairs: a folder (its video files, sorted), a ``.txt`` list (one path a line), or paths.

    The video id is the file name without extension; two videos with the same id are an error.
    """
    if isinstance(videos, (str, os.PathLike)):
        source = Path(videos)
        if source.is_dir():
            paths = sorted(p for p in source.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
            if not paths:
                raise ValueError(f"--videos: no video files ({', '.join(VIDEO_EXTENSIONS)}) in {source}")
        elif source.suffix == ".txt" and source.is_file():
            lines = [line.strip() for line in source.read_text().splitlines()]
            paths = [
                Path(line) if Path(line).is_absolute() else source.parent / line for line in lines if line
            ]
        else:
            paths = [source]
    else:
        paths = [Path(p) for p in videos]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"--videos: no file at {path}")
    pairs, seen = [], {}
    for path in paths:
        if path.stem in seen:
            raise ValueError(f"--videos: {seen[path.stem]} and {path} have the same video id {path.stem!r}")
        seen[path.stem] = path
        pairs.append((path.stem, path))
    return pairs


def extract_video_features(
    videos,
    out_dir: str | os.PathLike,
    encoders: Sequence[ClipEncoder],
    clip_length: float = 2.0,
    frames_per_clip: int = 1,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> ExtractionReport:
    """Write ``out_dir/{encoder.name}/{vid}.npz`` (``features`` ``(clips, dim)``) for every video and encoder.

    Args:
        videos: a folder, a ``.txt`` list of paths, or a list of paths (see `list_videos`).
        encoders: the backbones (`clip_image_encoder`, `swin3d_encoder`, `timm_encoder`), one folder each.
        clip_length, frames_per_clip: the clip plan (as `RDMFVideoProcessor`).
        batch_size: clips decoded and run through the backbones at a time.

    Returns:
        An `ExtractionReport`. A video whose every file is complete is skipped; a stream file that is
        missing rows or unreadable is written again.

    Raises:
        FeatureManifestError: the output folder holds features made with other settings.
        ValueError, FileNotFoundError: an unreadable video or bad arguments, naming them.
    """
    if not encoders:
        raise ValueError("encoders: give at least one backbone")
    if len({e.name for e in encoders}) != len(encoders):
        raise ValueError(f"encoders: stream names must differ, got {[e.name for e in encoders]}")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    pairs = list_videos(videos)
    out_dir = Path(out_dir)
    folders = [out_dir / encoder.name for encoder in encoders]
    manifests = [
        _open_stream_manifest(folder, _video_manifest(encoder, clip_length, frames_per_clip))
        for folder, encoder in zip(folders, encoders)
    ]
    for encoder in encoders:
        encoder.module.to(device)
    report = ExtractionReport()
    bar = tqdm(pairs, desc="extract", unit="video", disable=not progress)
    for vid, path in bar:
        bar.set_postfix_str(vid)
        stamps = read_frame_timestamps(path)
        sampling = plan_clips(stamps.times, stamps.duration, clip_length, frames_per_clip)
        todo = [
            index
            for index, (folder, encoder) in enumerate(zip(folders, encoders))
            if not feature_file_is_complete(
                folder / f"{vid}.npz", "features", sampling.num_clips, encoder.feature_dim
            )
        ]
        if not todo:
            report.skipped.append(vid)
            continue
        if any((folders[i] / f"{vid}.npz").exists() for i in todo):
            logger.warning("%s: incomplete feature file(s) found, extracting again", vid)
            report.redone.append(vid)
        features = _encode_video(path, stamps.pts, sampling, [encoders[i] for i in todo], batch_size)
        for index, array in zip(todo, features):
            write_npz_atomically(folders[index] / f"{vid}.npz", features=array)
            manifests[index]["videos"][vid] = {"clips": sampling.num_clips, "duration": sampling.duration}
            write_json_atomically(folders[index] / MANIFEST_NAME, manifests[index])
        report.written.append(vid)
    return report


def _encode_video(path, pts, sampling: ClipSampling, encoders: list[ClipEncoder], batch_size: int):
    """Per encoder, ``(clips, feature_dim)`` float32 for the whole video, computed a batch of clips at a time."""
    frames_per_clip = sampling.frame_indices.shape[1]
    parts: list[list[torch.Tensor]] = [[] for _ in encoders]
    for frames in iter_clip_frames(path, pts, sampling, batch_size):
        for part, encoder in zip(parts, encoders):
            part.append(encoder.encode(frames, frames_per_clip))
    return [torch.cat(part).numpy().astype(np.float32) for part in parts]


# ---------------------------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------------------------


def read_queries(path: str | os.PathLike) -> list[tuple[str, str]]:
    """``(qid, query)`` pairs of a jsonl (the annotation format: one object a line with ``qid`` and ``query``)."""
    pairs, seen = [], set()
    for where, record in read_jsonl(path):
        for name, kinds in (("qid", (int, str)), ("query", (str,))):
            if name not in record:
                raise where.error(name, "missing field")
            if not isinstance(record[name], kinds) or isinstance(record[name], bool):
                raise where.error(
                    name, f"expected {' or '.join(k.__name__ for k in kinds)}, got {record[name]!r}"
                )
        qid, query = str(record["qid"]), record["query"].strip()
        if not query:
            raise where.error("query", "the query is empty")
        if qid in seen:
            raise AnnotationError(where.path, where.line, "qid", f"duplicate qid {qid!r}")
        seen.add(qid)
        pairs.append((qid, query))
    return pairs


def extract_query_features(
    queries: str | os.PathLike,
    out_dir: str | os.PathLike,
    encoder: TextEncoder,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> ExtractionReport:
    """Write ``out_dir/qid{qid}.npz`` with ``last_hidden_state`` ``(tokens, dim)`` and ``pooler_output`` ``(dim,)``.

    Args:
        queries: a jsonl with ``qid`` and ``query`` per line (an annotation file works as is).
        encoder: `clip_text_encoder`.
    """
    pairs = read_queries(queries)
    out_dir = Path(out_dir)
    expected = {
        "format": MANIFEST_FORMAT,
        "kind": "text",
        "layout": "qid{qid}.npz with 'last_hidden_state' (tokens, feature_dim) and 'pooler_output' (feature_dim,)",
        "backbone": encoder.backbone,
        "weights": encoder.weights,
        "feature_dim": int(encoder.feature_dim),
    }
    manifest = _open_stream_manifest(out_dir, expected)
    encoder.model.to(device)
    report = ExtractionReport()
    todo = []
    for qid, query in pairs:
        path = out_dir / f"qid{qid}.npz"
        if feature_file_is_complete(path, "last_hidden_state", None, encoder.feature_dim):
            report.skipped.append(qid)
        else:
            (report.redone if path.exists() else report.written).append(qid)
            todo.append((qid, query))
    for start in tqdm(range(0, len(todo), batch_size), desc="queries", disable=not progress):
        chunk = todo[start : start + batch_size]
        for (qid, _), (tokens, pooled) in zip(chunk, encoder.encode([q for _, q in chunk])):
            write_npz_atomically(out_dir / f"qid{qid}.npz", last_hidden_state=tokens, pooler_output=pooled)
            manifest["queries"][qid] = int(tokens.shape[0])
        write_json_atomically(out_dir / MANIFEST_NAME, manifest)
    return report


__all__ = [
    "ClipEncoder",
    "ExtractionReport",
    "FeatureManifestError",
    "TextEncoder",
    "build_clip_encoder",
    "clip_image_encoder",
    "clip_text_encoder",
    "extract_query_features",
    "extract_video_features",
    "feature_file_is_complete",
    "iter_clip_frames",
    "list_videos",
    "preprocess_frames",
    "read_queries",
    "swin3d_encoder",
    "timm_encoder",
]
