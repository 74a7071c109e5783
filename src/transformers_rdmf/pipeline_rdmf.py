"""``pipeline("video-moment-retrieval")``: a video (or its clip features) and one or more queries -> ranked
moments, per-clip saliency and top clips, JSON-ready.

::

    from transformers import pipeline

    finder = pipeline("video-moment-retrieval", model="runs/qvh/best", trust_remote_code=True)
    result = finder("kitchen.mp4", query="a man opens the fridge")
    result["moments"][0]  # {"start": 12.0, "end": 20.0, "score": 0.83}

A raw video is decoded and embedded by the model's own backbone once, a batch of clips at a time, then
every query runs on those features; a video longer than ``window_clips`` runs in overlapping windows as
``rdmf predict`` does (`long_video.predict_long_video`; a video that fits one window is the single pass).
A video you decoded yourself is ``{"frames": (n, H, W, 3) uint8, "timestamps": (n,) seconds}``; clip features
kept from `VideoMomentRetrievalPipeline.embed_video` are ``{"video_features", "clip_length", "duration"}``
(the queries are then tokenized as usual). A feature checkpoint takes ``{"video_features": (clips, dim), "text_features": (tokens, dim) or a list of them, one
per query}``. Saved checkpoints carry the pipeline (``config.custom_pipelines`` and this file),
so it loads with ``trust_remote_code=True`` where this package is not installed.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from transformers import AutoModel, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .long_video import DEFAULT_WINDOW_CLIPS, embed_video_file, predict_long_video
from .post_processing import top_clips
from .video_processing_rdmf import read_frame_timestamps

TASK = "video-moment-retrieval"
UNTRAINED_MOMENT_HEAD = "this checkpoint's moment head was not trained"


class VideoMomentRetrievalPipeline(Pipeline):
    """Moments of a video that match a sentence (see the module's docstring).

    Call with ``inputs`` (a video path, or a dict of features) and ``query`` (a string, or a list of
    strings: one result per query); options ``top_k`` (moments and top clips, default 5),
    ``nms_threshold`` (default 0.7), ``window_clips`` (default 75), ``clip_length`` and ``duration`` (for
    features, in seconds).

    Returns, per query: ``{"query", "moments": [{"start", "end", "score"}] (None for a checkpoint whose
    moment head was not trained), "saliency": [{"start", "end", "saliency"}], "top_clips": [...],
    "trained_heads"}``.
    """

    _load_processor = None  # a raw-video checkpoint has one; a feature checkpoint has none
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, model, *args, **kwargs):
        super().__init__(_moment_model(model), *args, **kwargs)

    def _sanitize_parameters(
        self, query=None, top_k=None, nms_threshold=None, window_clips=None, clip_length=None, duration=None
    ):
        preprocess = {"query": query, "clip_length": clip_length, "duration": duration}
        forward = {"window_clips": window_clips or DEFAULT_WINDOW_CLIPS, "top_k": top_k or 5}
        forward["nms_threshold"] = 0.7 if nms_threshold is None else nms_threshold
        return preprocess, forward, {}

    def preprocess(self, inputs, query=None, clip_length=None, duration=None) -> dict:
        """Clip features once for the video, and each query's model inputs."""
        if isinstance(inputs, dict):
            query = inputs.get("query", query)
        queries = [query] if isinstance(query, str) else list(query or [])
        if not queries or not all(isinstance(q, str) and q.strip() for q in queries):
            raise ValueError(f"query: give a non-empty string or a list of them, got {query!r}")
        if isinstance(inputs, dict) and "frames" not in inputs:
            features, clip_length, duration = self._given_features(inputs, clip_length, duration)
        else:
            features, clip_length, duration = self.embed_video(inputs)
        if isinstance(inputs, dict) and "text_features" in inputs:
            query_inputs = self._given_text_features(inputs, len(queries))
        else:
            query_inputs = [self._tokenize(q) for q in queries]
        return {"features": features, "queries": queries, "query_inputs": query_inputs,
                "clip_length": clip_length, "duration": duration}  # fmt: skip

    def _forward(self, model_inputs: dict, window_clips: int, top_k: int, nms_threshold: float) -> dict:
        results = []
        with warnings.catch_warnings():
            if self.model.config.moment_head_trained is False:  # its moments are not returned
                warnings.filterwarnings("ignore", message=UNTRAINED_MOMENT_HEAD)
            for query_inputs in model_inputs["query_inputs"]:
                prediction = predict_long_video(
                    self.model, model_inputs["features"], query_inputs, model_inputs["clip_length"],
                    model_inputs["duration"], window_clips, top_k=top_k, nms_threshold=nms_threshold,
                )  # fmt: skip
                results.append(prediction)
        return {**model_inputs, "predictions": results, "top_k": top_k}

    def postprocess(self, model_outputs: dict):
        heads = self.model.config.trained_heads
        moments_trained = self.model.config.moment_head_trained is not False
        results = [
            {
                "query": query,
                "moments": prediction.moments if moments_trained else None,
                "saliency": prediction.saliency,
                "top_clips": top_clips(prediction.saliency, model_outputs["top_k"]),
                "trained_heads": heads,
            }
            for query, prediction in zip(model_outputs["queries"], model_outputs["predictions"])
        ]
        return results[0] if len(results) == 1 else results

    def embed_video(self, video) -> tuple[torch.Tensor, float, float]:
        """``(features (clips, dim), clip_length, duration)`` of a video file (decoded a batch of clips at a
        time) or of a decoded video (``{"frames", "timestamps"}``, see `sample_decoded_clips`).

        Keep them to ask more queries later without decoding again: ``pipe({"video_features": features,
        "clip_length": clip_length, "duration": duration}, query=...)`` gives the same results."""
        if self.processor is None or self.model.config.video_backbone is None:
            raise ValueError(
                "inputs: this checkpoint reads clip features, not videos; pass "
                '{"video_features": (clips, dim) array, "text_features": (tokens, dim) array}'
            )
        video_processor = self.processor.video_processor
        if isinstance(video, dict):  # already in memory: its pixels at once
            pixels = video_processor(video)
            device = next(self.model.parameters()).device
            features, _ = self.model.rdmf.embed_video(
                pixels["pixel_values"].to(device), pixels["pixel_mask"].to(device), None
            )
            return features[0].cpu(), video_processor.clip_length, float(pixels["durations"][0])
        duration = read_frame_timestamps(str(video), video_processor.clip_length).duration
        return (
            embed_video_file(self.model, video_processor, str(video)),
            video_processor.clip_length,
            duration,
        )

    def _tokenize(self, query: str) -> dict:
        if self.processor is None or self.model.config.text_backbone is None:
            raise ValueError(
                'query: this checkpoint has no text backbone; pass "text_features" with the inputs'
            )
        return self.processor.tokenize(query)

    def _given_features(self, inputs: dict, clip_length, duration) -> tuple[torch.Tensor, float, float]:
        features = _as_rows(
            inputs.get("video_features"), "video_features", self.model.config.video_feature_dim
        )
        clip_length = inputs.get("clip_length", clip_length) or 2.0
        duration = inputs.get("duration", duration)
        return (
            features,
            float(clip_length),
            float(duration if duration is not None else len(features) * clip_length),
        )

    def _given_text_features(self, inputs: dict, count: int) -> list[dict]:
        given = inputs.get("text_features")
        if given is None:
            raise ValueError(
                'inputs: "text_features" missing: one (tokens, dim) array, or a list, one per query'
            )
        arrays = list(given) if isinstance(given, (list, tuple)) else [given] * count
        if len(arrays) != count:
            raise ValueError(f"text_features: {len(arrays)} arrays for {count} queries")
        dim = self.model.config.text_feature_dim
        return [{"text_features": _as_rows(a, "text_features", dim).unsqueeze(0)} for a in arrays]


def _as_rows(array, name: str, dim: int) -> torch.Tensor:
    """A ``(rows, dim)`` float32 tensor from an array or tensor, checked."""
    if array is None:
        raise ValueError(f'inputs: "{name}" missing: a (rows, {dim}) array')
    tensor = torch.as_tensor(np.asarray(array, dtype=np.float32))
    if tensor.ndim != 2 or tensor.shape[0] == 0 or tensor.shape[1] != dim:
        raise ValueError(f"{name}: expected a (rows, {dim}) array, got shape {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name}: holds NaN or infinity")
    return tensor


def _moment_model(model):
    """The moment-retrieval head: ``pipeline`` loads checkpoints through ``AutoModel``, which gives the base
    `RDMFModel` (the transformers convention); a checkpoint of the head is loaded again as the head, from
    the class its ``auto_map`` names."""
    auto_map = getattr(model.config, "auto_map", None) or {}
    architectures = getattr(model.config, "architectures", None) or []
    if hasattr(model, "decoder") or "RDMFForMomentRetrieval" not in architectures:
        return model
    source = model.config._name_or_path
    if type(model).__module__.startswith("transformers_rdmf"):
        from .modeling_rdmf import RDMFForMomentRetrieval as head
    else:
        from transformers.dynamic_module_utils import get_class_from_dynamic_module

        head = get_class_from_dynamic_module(auto_map["AutoModelForMomentRetrieval"], source)
    return head.from_pretrained(source).to(model.device).eval()


PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=VideoMomentRetrievalPipeline, pt_model=AutoModel, type="multimodal")  # fmt: skip

__all__ = ["TASK", "VideoMomentRetrievalPipeline"]
