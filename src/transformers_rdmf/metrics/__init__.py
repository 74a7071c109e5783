"""Official-exact evaluation metrics, vectorised with numpy."""

from transformers_rdmf.metrics.inputs import MetricInputError, Records, read_jsonl
from transformers_rdmf.metrics.qvhighlights import evaluate_qvhighlights

__all__ = ["MetricInputError", "Records", "evaluate_qvhighlights", "read_jsonl"]
