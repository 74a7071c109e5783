"""One registry of the datasets: every fact about a dataset that data loading, training, evaluation,
publishing and the results scripts need, in one place.

Standard library only (``hub`` and the metrics command line read it without loading torch or ``datasets``).
"""

from dataclasses import dataclass, field

MOMENT_RETRIEVAL = "moment-retrieval"
HIGHLIGHT_DETECTION = "highlight-detection"
TASK_NAMES = {MOMENT_RETRIEVAL: "Moment Retrieval", HIGHLIGHT_DETECTION: "Highlight Detection"}
MOMENT_RETRIEVAL_METRICS = ("R1@0.3", "R1@0.5", "R1@0.7", "R5@0.5", "R5@0.7", "mIoU")


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset's facts.

    Attributes:
        name: the key (``--dataset``, ``training.dataset`` of a preset).
        pretty_name: the name shown on model cards and in ``model-index``.
        has_spans: its labels hold moment spans (moment retrieval); False: per-clip scores only
            (highlight detection), so a model trained on it learns no moments.
        clip_length: seconds per feature row of the features it is usually used with (None: per video).
        headline_metric: the metric that picks the best epoch by default and heads its results.
        evaluator: how its predictions are scored: ``qvhighlights`` (the official QVHighlights dict),
            ``moment_retrieval`` (R1/R5/mIoU), ``moment_retrieval+qvhighlights`` (both), ``tvsum`` or
            ``youtube_highlights`` (see `training.compute_metrics`).
        preset: the named preset for it.
        domains: its categories, where its protocol trains one model per category.
        published: UMT's published per-category figures (video + audio), where the field compares to them.
        split: the split its metrics are usually computed on (None: no model card for it).
        tasks: the tasks its evaluation scores.
        required_metrics: top-level keys every evaluation of it writes; a tuple inside lists alternatives
            (the library's nested results and the training loop's flat ones differ).
        licence: the data's licence, as ``shared/data/README.md`` states it; hub_license: the card's
            default ``license`` (the data's, so the weights inherit its terms); source: where the
            annotations come from.
    """

    name: str
    pretty_name: str
    has_spans: bool
    clip_length: float | None
    headline_metric: str
    evaluator: str
    preset: str
    domains: tuple[str, ...] = ()
    published: dict[str, float] = field(default_factory=dict)
    split: str | None = None
    tasks: tuple[str, ...] = ()
    required_metrics: tuple[str | tuple[str, ...], ...] = ()
    licence: str = ""
    hub_license: str = ""
    source: str = ""

    @property
    def publishable(self) -> bool:
        """Whether a model card can describe a checkpoint trained on it."""
        return self.split is not None


TVSUM_DOMAINS = ("BK", "BT", "DS", "FM", "GA", "MS", "PK", "PR", "VT", "VU")
YOUTUBE_HIGHLIGHTS_DOMAINS = ("dog", "gymnastics", "parkour", "skating", "skiing", "surfing")

_SPECS = (
    DatasetSpec(
        "qvhighlights", "QVHighlights", True, 2.0, "MR-full-mAP", "qvhighlights", "qvhighlights_clip_slowfast",
        split="val", tasks=(MOMENT_RETRIEVAL, HIGHLIGHT_DETECTION),
        required_metrics=(("brief", "MR-full-mAP", "HL-min-VeryGood-mAP"),),
        licence="CC BY-NC-SA 4.0 (non-commercial, share-alike)", hub_license="cc-by-nc-sa-4.0",
        source="annotations from jayleicn/moment_detr",
    ),
    DatasetSpec(
        "charades_sta", "Charades-STA", True, 1.0, "R1@0.5", "moment_retrieval", "charades_sta_clip_slowfast",
        split="test", tasks=(MOMENT_RETRIEVAL,), required_metrics=MOMENT_RETRIEVAL_METRICS,
        licence="Apache-2.0 (the unified annotations)", hub_license="apache-2.0",
        source="annotations from line/lighthouse",
    ),
    DatasetSpec(
        "activitynet_captions", "ActivityNet Captions", True, 2.0, "R1@0.5", "moment_retrieval",
        "activitynet_captions_clip_slowfast",
        split="val_1", tasks=(MOMENT_RETRIEVAL,), required_metrics=MOMENT_RETRIEVAL_METRICS,
        licence="Apache-2.0 (the unified annotations)", hub_license="apache-2.0",
        source="annotations from line/lighthouse",
    ),
    DatasetSpec(
        "tvsum", "TVSum", False, 2.0, "top5_mAP", "tvsum", "tvsum_i3d", domains=TVSUM_DOMAINS,
        published={"VT": 87.54, "VU": 81.51, "GA": 88.22, "MS": 78.81, "PK": 81.42, "PR": 86.96, "FM": 75.96,
                   "BK": 86.89, "BT": 84.42, "DS": 79.63},
        split="val", tasks=(HIGHLIGHT_DETECTION,), required_metrics=("top5_mAP",),
        licence="research use; the videos are YouTube's", hub_license="other",
        source="UMT's feature release, annotations from line/lighthouse",
    ),
    DatasetSpec(
        "youtube_highlights", "YouTube Highlights", False, None, "mAP", "youtube_highlights",
        "youtube_highlights_i3d", domains=YOUTUBE_HIGHLIGHTS_DOMAINS,
        published={"dog": 65.93, "gymnastics": 75.20, "parkour": 81.64, "skating": 71.81, "skiing": 72.27,
                   "surfing": 82.71},
        split="val", tasks=(HIGHLIGHT_DETECTION,), required_metrics=("mAP",), licence="research use",
        hub_license="other", source="UMT's feature release, annotations from line/lighthouse",
    ),
    DatasetSpec(
        "custom", "your own data", True, 2.0, "MR-full-mAP", "moment_retrieval+qvhighlights", "clip_vit_b32"
    ),
)  # fmt: skip
DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}
MOMENT_DATASETS = tuple(name for name, spec in DATASETS.items() if spec.has_spans)
HIGHLIGHT_DATASETS = tuple(name for name, spec in DATASETS.items() if not spec.has_spans)


def dataset_spec(name: str, flag: str = "--dataset") -> DatasetSpec:
    """The spec of ``name``; an unknown name is a ``ValueError`` listing the known ones."""
    if name not in DATASETS:
        raise ValueError(f"{flag} {name!r} is unknown; known: {', '.join(DATASETS)}")
    return DATASETS[name]


__all__ = [
    "DATASETS",
    "HIGHLIGHT_DATASETS",
    "HIGHLIGHT_DETECTION",
    "MOMENT_DATASETS",
    "MOMENT_RETRIEVAL",
    "TASK_NAMES",
    "TVSUM_DOMAINS",
    "YOUTUBE_HIGHLIGHTS_DOMAINS",
    "DatasetSpec",
    "dataset_spec",
]
