"""Dataset loaders, feature readers and the collator for moment retrieval and highlight detection."""

from .annotations import (
    ANNOTATION_FEATURES,
    DEFAULT_CLIP_LENGTHS,
    TVSUM_DOMAINS,
    YOUTUBE_HIGHLIGHTS_DOMAINS,
    AnnotationError,
    clips_inside_windows,
    fraction_above_own_median,
    load_annotations,
    load_youtube_highlights,
    windows_to_spans,
)
from .collator import MomentRetrievalCollator, random_temporal_crop
from .dataset import LengthReport, MomentFeatureDataset
from .features import (
    DomainQueryEncoder,
    FeatureError,
    FeatureStream,
    TextFeatureReader,
    TextFeatures,
    VideoFeatureReader,
    standard_video_reader,
    tvsum_text_reader,
    tvsum_video_reader,
    youtube_highlights_video_reader,
)
from .loader import build_dataloader

__all__ = [
    "ANNOTATION_FEATURES",
    "DEFAULT_CLIP_LENGTHS",
    "TVSUM_DOMAINS",
    "YOUTUBE_HIGHLIGHTS_DOMAINS",
    "AnnotationError",
    "DomainQueryEncoder",
    "FeatureError",
    "FeatureStream",
    "LengthReport",
    "MomentFeatureDataset",
    "MomentRetrievalCollator",
    "TextFeatureReader",
    "TextFeatures",
    "VideoFeatureReader",
    "build_dataloader",
    "clips_inside_windows",
    "fraction_above_own_median",
    "load_annotations",
    "load_youtube_highlights",
    "random_temporal_crop",
    "standard_video_reader",
    "tvsum_text_reader",
    "tvsum_video_reader",
    "windows_to_spans",
    "youtube_highlights_video_reader",
]
