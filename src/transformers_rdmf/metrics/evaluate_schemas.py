"""Arrow input schemas shared by the ``evaluate`` modules in ``evaluate_modules/``.

``evaluate.load`` copies each module script alone into its cache, so what they share lives here, in the
installed package, and they import it by absolute name.
"""

from collections.abc import Callable, Mapping

import datasets

from transformers_rdmf.metrics.inputs import MetricInputError

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


class DeclaredFieldsOnly:
    """Mixin for an ``evaluate.Metric``: each prediction and reference row keeps only its schema's fields.

    Rows as the datasets release them carry more (QVHighlights' ``query`` and ``vid``), which Arrow would
    otherwise fail on with a bare ``KeyError``; a row missing a field is a `MetricInputError` naming the
    row, its qid and the field.
    """

    def compute(self, *, predictions=None, references=None, **kwargs):
        """``evaluate.Metric.compute`` on the rows' declared fields."""
        return super().compute(
            predictions=self._declared(predictions, "predictions"),
            references=self._declared(references, "references"),
            **kwargs,
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """``evaluate.Metric.add_batch`` on the rows' declared fields."""
        return super().add_batch(
            predictions=self._declared(predictions, "predictions"),
            references=self._declared(references, "references"),
            **kwargs,
        )

    def add(self, *, prediction=None, reference=None, **kwargs):
        """``evaluate.Metric.add`` on the row's declared fields."""
        [prediction] = self._declared(None if prediction is None else [prediction], "predictions") or [None]
        [reference] = self._declared(None if reference is None else [reference], "references") or [None]
        return super().add(prediction=prediction, reference=reference, **kwargs)

    def _declared(self, rows, column: str):
        if rows is None:
            return None
        fields = list(self._info().features[0][column])
        kept = []
        for index, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise MetricInputError(
                    f"{column}[{index}]: expected a dict with {fields}, got {type(row).__name__}"
                )
            missing = [name for name in fields if name not in row]
            if missing:
                raise MetricInputError(
                    f"{column}[{index}] (qid {row.get('qid')!r}): missing {missing}; each row needs {fields}"
                )
            kept.append({name: row[name] for name in fields})
        return kept
