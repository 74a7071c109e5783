"""Official-exact evaluation metrics, vectorised with numpy.

Plain functions (no ``evaluate`` needed) and, for each, an ``evaluate`` module loadable offline::

    import evaluate
    from transformers_rdmf.metrics import metric_path

    qvhighlights = evaluate.load(metric_path("qvhighlights"))
"""

from pathlib import Path

from transformers_rdmf.metrics.highlight_detection import evaluate_tvsum, evaluate_youtube_highlights
from transformers_rdmf.metrics.inputs import MetricInputError, Records, read_jsonl
from transformers_rdmf.metrics.moment_retrieval import evaluate_moment_retrieval
from transformers_rdmf.metrics.qvhighlights import evaluate_qvhighlights

__all__ = [
    "EVALUATE_MODULES",
    "MetricInputError",
    "Records",
    "evaluate_moment_retrieval",
    "evaluate_qvhighlights",
    "evaluate_tvsum",
    "evaluate_youtube_highlights",
    "metric_path",
    "read_jsonl",
]

EVALUATE_MODULES = ("qvhighlights", "moment_retrieval", "tvsum", "youtube_highlights")


def metric_path(name: str) -> str:
    """Folder of the ``evaluate`` module ``name`` inside the installed package, for ``evaluate.load``."""
    if name not in EVALUATE_MODULES:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(EVALUATE_MODULES)}")
    return str(Path(__file__).resolve().parent / "evaluate_modules" / name)
