"""QVHighlights moment retrieval and highlight detection as an ``evaluate`` module (official-exact numbers).

Load it offline with ``evaluate.load(transformers_rdmf.metrics.metric_path("qvhighlights"))``.
"""

import datasets
import evaluate

from transformers_rdmf.metrics.evaluate_schemas import (
    PER_CLIP_SCORES,
    WINDOWS,
    DeclaredFieldsOnly,
    for_both_qid_types,
)
from transformers_rdmf.metrics.qvhighlights import evaluate_qvhighlights

_DESCRIPTION = """The official QVHighlights evaluation (Moment-DETR's standalone eval, with CG-DETR's extra
R1 thresholds and mIoU): moment retrieval R1, mAP and mIoU per ground-truth length range, and
highlight detection mAP and Hit@1 at the Fair / Good / VeryGood saliency levels, in percent."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one dict per query: ``qid``, ``pred_relevant_windows`` (``[start, end, score]``,
        best first) and ``pred_saliency_scores`` (one score per 2 s clip; an empty list for
        moment retrieval only). Every field must be present (Arrow needs the full struct).
    references: one dict per query: ``qid``, ``duration``, ``relevant_windows``,
        ``relevant_clip_ids`` and ``saliency_scores`` (3 annotators' scores per relevant clip).
Returns:
    The official metrics dict: ``brief``, ``HL-min-{Fair,Good,VeryGood}``, ``full``, ``long``,
    ``middle``, ``short``.
"""

_CITATION = """@inproceedings{lei2021qvhighlights,
  title={QVHighlights: Detecting Moments and Highlights in Videos via Natural Language Queries},
  author={Lei, Jie and Berg, Tamara L. and Bansal, Mohit},
  booktitle={NeurIPS},
  year={2021}
}"""


def _features(qid: datasets.Value) -> datasets.Features:
    return datasets.Features(
        {
            "predictions": {
                "qid": qid,
                "pred_relevant_windows": WINDOWS,
                "pred_saliency_scores": PER_CLIP_SCORES,
            },
            "references": {
                "qid": qid,
                "duration": datasets.Value("float64"),
                "relevant_windows": WINDOWS,
                "relevant_clip_ids": datasets.Sequence(datasets.Value("int64")),
                "saliency_scores": datasets.Sequence(datasets.Sequence(datasets.Value("float64"))),
            },
        }
    )


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Qvhighlights(DeclaredFieldsOnly, evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=for_both_qid_types(_features),
        )

    def _compute(self, predictions, references):
        # Arrow gives an absent field back as None; an absent task is left out, as in the official input.
        optional = ("pred_relevant_windows", "pred_saliency_scores")
        predictions = [
            {key: value for key, value in row.items() if key not in optional or value} for row in predictions
        ]
        return evaluate_qvhighlights(predictions, references)
