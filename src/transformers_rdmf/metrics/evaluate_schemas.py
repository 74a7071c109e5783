"""Arrow input schemas shared by the ``evaluate`` modules in ``evaluate_modules/``.

``evaluate.load`` copies each module script alone into its cache, so what they share lives here, in the
installed package, and they import it by absolute name.
"""

from collections.abc import Callable

import datasets

WINDOWS = datasets.Sequence(datasets.Sequence(datasets.Value("float64")))
PER_CLIP_SCORES = datasets.Sequence(datasets.Value("float64"))


def for_both_qid_types(build: Callable[[datasets.Value], datasets.Features]) -> list[datasets.Features]:
    """The schema with integer qids (QVHighlights, Charades-STA, ActivityNet) and with string qids
    (TVSum, YouTube Highlights): ``evaluate`` picks the one the inputs match."""
    return [build(datasets.Value("int64")), build(datasets.Value("string"))]


def highlight_features(qid: datasets.Value) -> datasets.Features:
    """Per-video saliency predictions against per-clip labels (TVSum, YouTube Highlights)."""
    return datasets.Features(
        {
            "predictions": {"qid": qid, "pred_saliency_scores": PER_CLIP_SCORES},
            "references": {
                "qid": qid,
                "domain": datasets.Value("string"),
                "label": datasets.Sequence(datasets.Sequence(datasets.Value("float64"))),
            },
        }
    )
