"""RDMF processor: a video file and a query -> model inputs; model outputs -> moments and saliency."""

from transformers import AutoProcessor, BatchFeature
from transformers.processing_utils import ProcessingKwargs, ProcessorMixin

from .configuration_rdmf import RDMFConfig
from .post_processing import post_process_highlights, post_process_moment_retrieval
from .video_processing_rdmf import RDMFVideoProcessor, RDMFVideoProcessorKwargs


class RDMFProcessorKwargs(ProcessingKwargs, total=False):
    """transformers' ``ProcessingKwargs``: ``text_kwargs`` reach the tokenizer (``max_length``, ``padding``),
    ``videos_kwargs`` the video processor (``clip_length``, ``frames_per_clip``, ``size``, ...); a flat
    keyword goes to whichever accepts it."""

    videos_kwargs: RDMFVideoProcessorKwargs
    _defaults = {"text_kwargs": {"padding": True, "truncation": True}}


class RDMFProcessor(ProcessorMixin):
    r"""An :class:`RDMFVideoProcessor` and a tokenizer (CLIP's for the default backbone) in one object.

    ``processor(videos="clip.mp4", text="a man opens the door")`` gives ``pixel_values``, ``pixel_mask``,
    ``input_ids``, ``attention_mask`` (for :class:`RDMFForMomentRetrieval`), ``durations`` (seconds) and
    ``clip_sampling`` (where each clip lies and which frames represent it).

    Args:
        video_processor (`RDMFVideoProcessor`): decodes and samples clips.
        tokenizer (`PreTrainedTokenizerBase`): tokenizes the query.
    """

    _auto_class = (
        "AutoProcessor"  # save_pretrained writes its auto_map and copies this file (trust_remote_code)
    )
    valid_processor_kwargs = RDMFProcessorKwargs

    def __init__(self, video_processor: RDMFVideoProcessor | None = None, tokenizer=None, **kwargs):
        super().__init__(video_processor, tokenizer, **kwargs)

    def __call__(self, videos=None, text=None, **kwargs) -> BatchFeature:
        """Process a batch of videos and their queries (one query per video).

        Args:
            videos: a video file path or a list of paths (see :meth:`RDMFVideoProcessor.preprocess`).
            text: a query or a list of queries.
            **kwargs: `RDMFProcessorKwargs`: ``text_kwargs={...}`` for the tokenizer, ``videos_kwargs={...}``
                for the video processor, or flat keywords routed to the one that takes them.
        """
        if videos is None and text is None:
            raise ValueError("videos, text: pass at least one of them.")
        merged = self._merge_kwargs(
            RDMFProcessorKwargs, tokenizer_init_kwargs=self.tokenizer.init_kwargs, **kwargs
        )
        data = {}
        if videos is not None:
            data.update(self.video_processor(videos, **merged["videos_kwargs"]))
        if text is not None:
            data.update(self.tokenize(text, **merged["text_kwargs"]))
        return BatchFeature(data=data)

    def tokenize(self, text, **text_kwargs) -> dict:
        """``input_ids`` and ``attention_mask`` ``(batch, tokens)``, padded and truncated to the tokenizer's limit
        (``text_kwargs`` such as ``max_length`` go to the tokenizer)."""
        queries = [text] if isinstance(text, str) else list(text)
        if not queries or not all(isinstance(q, str) and q.strip() for q in queries):
            raise ValueError(f"text: every query must be a non-empty string, got {text!r}.")
        options = {"padding": True, "truncation": True, **text_kwargs}
        options.update(return_tensors="pt", return_token_type_ids=False)
        tokens = self.tokenizer(queries, **options)
        return {"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]}

    def post_process_moment_retrieval(self, outputs, durations, top_k: int | None = 10, nms_threshold=None):
        """Ranked moments in seconds per video: see :func:`post_processing.post_process_moment_retrieval`."""
        return post_process_moment_retrieval(outputs, durations, top_k=top_k, nms_threshold=nms_threshold)

    def post_process_highlights(self, outputs, clip_length: float | None = None):
        """Per-clip saliency probabilities with clip times (``clip_length`` defaults to the video processor's)."""
        clip_length = self.video_processor.clip_length if clip_length is None else clip_length
        return post_process_highlights(outputs, clip_length)


AutoProcessor.register(RDMFConfig, RDMFProcessor, exist_ok=True)

__all__ = ["RDMFProcessor", "RDMFProcessorKwargs"]
