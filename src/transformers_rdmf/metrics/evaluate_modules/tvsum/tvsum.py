"""TVSum top-5 mAP (the UMT protocol) as an ``evaluate`` module.

Load it offline with ``evaluate.load(transformers_rdmf.metrics.metric_path("tvsum"))``.
"""

import evaluate

from transformers_rdmf.metrics.evaluate_schemas import (
    DeclaredFieldsOnly,
    for_both_qid_types,
    highlight_features,
)
from transformers_rdmf.metrics.highlight_detection import evaluate_tvsum

_DESCRIPTION = """TVSum top-5 mAP: per annotator a clip is positive above that annotator's median; the top 5
clips by predicted saliency are scored by trapezoid-rule AP, averaged over the 20 annotators, the
category's videos, then the categories. In percent, per category and the mean."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one dict per video: ``qid`` and ``pred_saliency_scores`` (one per clip).
    references: one dict per video: ``qid``, ``domain`` and ``label`` (per clip, the 20
        annotators' scores), as in ``tvsum_val_release.jsonl``.
Returns:
    ``{"top5_mAP": float, "per_domain": {category: float}}``.
"""

_CITATION = """@inproceedings{liu2022umt,
  title={UMT: Unified Multi-modal Transformers for Joint Video Moment Retrieval and Highlight Detection},
  author={Liu, Ye and Li, Siyuan and Wu, Yang and Chen, Chang Wen and Shan, Ying and Qie, Xiaohu},
  booktitle={CVPR},
  year={2022}
}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Tvsum(DeclaredFieldsOnly, evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=for_both_qid_types(highlight_features),
        )

    def _compute(self, predictions, references):
        return evaluate_tvsum(predictions, references)
