"""transformers_rdmf: RDMF (Reaction-Diffusion Multimodal Fusion) on Hugging Face transformers."""

from .auto import AutoModelForMomentRetrieval
from .configuration_rdmf import RDMFConfig, list_presets
from .modeling_rdmf import (
    RDMFForMomentRetrieval,
    RDMFModel,
    RDMFModelOutput,
    RDMFMomentRetrievalOutput,
    RDMFPreTrainedModel,
)
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
    "list_presets",
]
