"""transformers_rdmf: RDMF (Reaction-Diffusion Multimodal Fusion) on Hugging Face transformers."""

from .auto import AutoModelForMomentRetrieval
from .configuration_rdmf import RDMFConfig, list_presets
from .metrics import (
    evaluate_moment_retrieval,
    evaluate_qvhighlights,
    evaluate_tvsum,
    evaluate_youtube_highlights,
    metric_path,
)
from .modeling_rdmf import (
    RDMFForMomentRetrieval,
    RDMFModel,
    RDMFModelOutput,
    RDMFMomentRetrievalOutput,
    RDMFPreTrainedModel,
)
from .post_processing import post_process_highlights, post_process_moment_retrieval
from .processing_rdmf import RDMFProcessor
from .video_processing_rdmf import RDMFVideoProcessor

__version__ = "0.1.0"

__all__ = [
    "AutoModelForMomentRetrieval",
    "RDMFConfig",
    "RDMFForMomentRetrieval",
    "RDMFModel",
    "RDMFModelOutput",
    "RDMFMomentRetrievalOutput",
    "RDMFPreTrainedModel",
    "RDMFProcessor",
    "RDMFVideoProcessor",
    "evaluate_moment_retrieval",
    "evaluate_qvhighlights",
    "evaluate_tvsum",
    "evaluate_youtube_highlights",
    "list_presets",
    "metric_path",
    "post_process_highlights",
    "post_process_moment_retrieval",
]
# Dataset loaders (importing `datasets` takes a while): `transformers_rdmf.data`.
