"""transformers_rdmf: RDMF (Reaction-Diffusion Multimodal Fusion) on Hugging Face transformers.

Top-level names load on first use, as transformers' own ``__init__`` defers its imports: ``import
transformers_rdmf`` (and ``transformers_rdmf.metrics``, the metrics CLI, the ``evaluate`` modules) costs
neither torch nor transformers. Touching a model, config or processor name imports them and registers RDMF
with ``AutoConfig``, ``AutoModel`` and ``AutoModelForMomentRetrieval``.
"""

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# name -> the submodule that defines it
_LAZY_NAMES = {
    "AutoModelForMomentRetrieval": "auto",
    "RDMFConfig": "configuration_rdmf",
    "RDMFForMomentRetrieval": "modeling_rdmf",
    "RDMFModel": "modeling_rdmf",
    "RDMFModelOutput": "modeling_rdmf",
    "RDMFMomentRetrievalOutput": "modeling_rdmf",
    "RDMFPreTrainedModel": "modeling_rdmf",
    "RDMFProcessor": "processing_rdmf",
    "RDMFVideoProcessor": "video_processing_rdmf",
    "VideoMomentRetrievalPipeline": "pipeline_rdmf",
    "post_process_highlights": "post_processing",
    "post_process_moment_retrieval": "post_processing",
    "evaluate_moment_retrieval": "metrics",
    "evaluate_qvhighlights": "metrics",
    "evaluate_tvsum": "metrics",
    "evaluate_youtube_highlights": "metrics",
    "metric_path": "metrics",
    "list_presets": "presets",
}
# Submodules that need torch and transformers: touching one registers the Auto classes first.
_MODEL_MODULES = {
    "auto",
    "configuration_rdmf",
    "modeling_rdmf",
    "pipeline_rdmf",
    "processing_rdmf",
    "video_processing_rdmf",
}

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
    "VideoMomentRetrievalPipeline",
    "evaluate_moment_retrieval",
    "evaluate_qvhighlights",
    "evaluate_tvsum",
    "evaluate_youtube_highlights",
    "list_presets",
    "metric_path",
    "post_process_highlights",
    "post_process_moment_retrieval",
]  # the keys of _LAZY_NAMES (a test checks)


def __getattr__(name: str):
    module_name = _LAZY_NAMES.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if module_name in _MODEL_MODULES:
        importlib.import_module(".auto", __name__)
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_NAMES))


if TYPE_CHECKING:  # for type checkers and IDEs; never run
    from .auto import AutoModelForMomentRetrieval
    from .configuration_rdmf import RDMFConfig
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
    from .pipeline_rdmf import VideoMomentRetrievalPipeline
    from .post_processing import post_process_highlights, post_process_moment_retrieval
    from .presets import list_presets
    from .processing_rdmf import RDMFProcessor
    from .video_processing_rdmf import RDMFVideoProcessor
