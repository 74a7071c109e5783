"""YouTube Highlights mAP (the UMT protocol) as an ``evaluate`` module.

Load it offline with ``evaluate.load(transformers_rdmf.metrics.metric_path("youtube_highlights"))``.
"""

import evaluate

from transformers_rdmf.metrics.evaluate_schemas import (
    DeclaredFieldsOnly,
    for_both_qid_types,
    highlight_features,
)
from transformers_rdmf.metrics.highlight_detection import evaluate_youtube_highlights

_DESCRIPTION = """YouTube Highlights mAP: per video, the clips ranked by predicted saliency are scored by
trapezoid-rule AP against the highlight labels (> 0), averaged over the domain's videos, then over
the domains. In percent, per domain and the mean."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one dict per video: ``qid`` and ``pred_saliency_scores`` (one per clip).
    references: one dict per video: ``qid``, ``domain`` and ``label`` (per clip a one-number list,
        > 0 for a highlight), as in ``youtube_highlight_val_release.jsonl``.
Returns:
    ``{"mAP": float, "per_domain": {domain: float}}``.
"""

_CITATION = """@inproceedings{sun2014ranking,
  title={Ranking Domain-specific Highlights by Analyzing Edited Videos},
  author={Sun, Min and Farhadi, Ali and Seitz, Steve},
  booktitle={ECCV},
  year={2014}
}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class YoutubeHighlights(DeclaredFieldsOnly, evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=for_both_qid_types(highlight_features),
        )

    def _compute(self, predictions, references):
        return evaluate_youtube_highlights(predictions, references)
