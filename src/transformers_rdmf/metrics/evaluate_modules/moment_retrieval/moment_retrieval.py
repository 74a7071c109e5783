"""Charades-STA / ActivityNet Captions moment retrieval (R1, R5, mIoU) as an ``evaluate`` module.

Load it offline with ``evaluate.load(transformers_rdmf.metrics.metric_path("moment_retrieval"))``.
"""

import datasets
import evaluate

from transformers_rdmf.metrics.evaluate_schemas import WINDOWS, DeclaredFieldsOnly, for_both_qid_types
from transformers_rdmf.metrics.moment_retrieval import evaluate_moment_retrieval

_DESCRIPTION = """R1@{0.3,0.5,0.7} (first predicted window), R5@{0.5,0.7} (any of the first five) and mIoU
(mean IoU of the first window), in percent, as reported on Charades-STA and ActivityNet Captions."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one dict per query: ``qid`` and ``pred_relevant_windows`` (``[start, end]`` or
        ``[start, end, score]``, best first).
    references: one dict per query: ``qid``, ``duration`` and ``relevant_windows``.
Returns:
    ``{"R1@0.3", "R1@0.5", "R1@0.7", "R5@0.5", "R5@0.7", "mIoU"}``.
"""


def _features(qid: datasets.Value) -> datasets.Features:
    return datasets.Features(
        {
            "predictions": {"qid": qid, "pred_relevant_windows": WINDOWS},
            "references": {
                "qid": qid,
                "duration": datasets.Value("float64"),
                "relevant_windows": WINDOWS,
            },
        }
    )


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MomentRetrieval(DeclaredFieldsOnly, evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=for_both_qid_types(_features),
        )

    def _compute(self, predictions, references):
        return evaluate_moment_retrieval(predictions, references)
