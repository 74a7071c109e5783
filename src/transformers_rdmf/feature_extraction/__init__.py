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

Modules: `encoders` (the backbones), `frames` (decoding a batch of clips at a time), `files` (feature
files and manifests), `videos` and `queries` (the two drivers).
"""

from ..video_processing_rdmf import iter_clip_frames, preprocess_frames
from .encoders import (
    VIDEO_EXTENSIONS,
    TextEncoder,
    VideoEncoder,
    build_video_encoder,
    clip_image_encoder,
    clip_text_encoder,
    swin3d_encoder,
    timm_encoder,
)
from .files import ExtractionReport, feature_file_is_complete, write_npz_atomically
from .queries import extract_query_features, read_queries
from .videos import extract_video_features, list_videos

__all__ = [
    "VIDEO_EXTENSIONS",
    "VideoEncoder",
    "ExtractionReport",
    "TextEncoder",
    "build_video_encoder",
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
    "write_npz_atomically",
]
