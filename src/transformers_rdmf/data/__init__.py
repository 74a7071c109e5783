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
    windows_to_spans,
)
from .collator import MomentRetrievalCollator, random_temporal_crop
from .dataset import LengthReport, MomentFeatureDataset
from .feature_set_writer import push_feature_set, source_streams, write_feature_set
from .feature_sets import FeatureSet, FeatureSetStream, FeatureSetTextReader, read_feature_set_manifest
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
from .youtube_highlights import load_youtube_highlights

__all__ = [
    "ANNOTATION_FEATURES",
    "DEFAULT_CLIP_LENGTHS",
    "TVSUM_DOMAINS",
    "YOUTUBE_HIGHLIGHTS_DOMAINS",
    "AnnotationError",
    "DomainQueryEncoder",
    "FeatureError",
    "FeatureSet",
    "FeatureSetStream",
    "FeatureSetTextReader",
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
    "push_feature_set",
    "read_feature_set_manifest",
    "random_temporal_crop",
    "source_streams",
    "standard_video_reader",
    "tvsum_text_reader",
    "tvsum_video_reader",
    "windows_to_spans",
    "write_feature_set",
    "youtube_highlights_video_reader",
]
