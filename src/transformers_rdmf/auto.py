"""Auto-class registration.

transformers has no Auto class for moment retrieval, so this package provides one,
``AutoModelForMomentRetrieval``, and registers RDMF with ``AutoConfig`` and ``AutoModel`` (the base
`RDMFModel`, as transformers' own models), and the ``video-moment-retrieval`` pipeline.
"""

from collections import OrderedDict

from transformers import AutoConfig, AutoModel
from transformers.models.auto.auto_factory import _BaseAutoModelClass, _LazyAutoMapping

from . import pipeline_rdmf  # noqa: F401  (registers the video-moment-retrieval pipeline)
from .configuration_rdmf import RDMFConfig
from .modeling_rdmf import RDMFForMomentRetrieval, RDMFModel


class AutoModelForMomentRetrieval(_BaseAutoModelClass):
    """``AutoModelForMomentRetrieval.from_pretrained(path)`` builds the moment-retrieval model of a checkpoint."""

    _model_mapping = _LazyAutoMapping(OrderedDict(), OrderedDict())


AutoConfig.register(RDMFConfig.model_type, RDMFConfig, exist_ok=True)
AutoModel.register(RDMFConfig, RDMFModel, exist_ok=True)
AutoModelForMomentRetrieval.register(RDMFConfig, RDMFForMomentRetrieval, exist_ok=True)
