"""Official-exact evaluation metrics, vectorised with numpy.

Plain functions (no ``evaluate`` needed) and, for each, an ``evaluate`` module loadable offline::

    import evaluate
    from transformers_rdmf.metrics import metric_path

    qvhighlights = evaluate.load(metric_path("qvhighlights"))

Numpy only. Names load on first use, so that ``python -m transformers_rdmf.metrics.qvhighlights`` (the
command line) runs its module once, without importing the package's other metrics first.
"""

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

# name -> the submodule that defines it
_LAZY_NAMES = {
    "MetricInputError": "inputs",
    "Records": "inputs",
    "read_jsonl": "inputs",
    "evaluate_moment_retrieval": "moment_retrieval",
    "evaluate_qvhighlights": "qvhighlights",
    "evaluate_tvsum": "highlight_detection",
    "evaluate_youtube_highlights": "highlight_detection",
}

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


def __getattr__(name: str):
    module_name = _LAZY_NAMES.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_NAMES))


if TYPE_CHECKING:  # for type checkers and IDEs; never run
    from .highlight_detection import evaluate_tvsum, evaluate_youtube_highlights
    from .inputs import MetricInputError, Records, read_jsonl
    from .moment_retrieval import evaluate_moment_retrieval
    from .qvhighlights import evaluate_qvhighlights
