"""Evaluation: predictions in the QVHighlights submission format, the dataset's official metrics, and
``rdmf-evaluate``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from ..atomic import atomic_write_json, atomic_write_text, check_not_replacing, check_output_paths
from ..checkpoint_loading import load_checkpoint_model
from ..dataset_specs import HIGHLIGHT_DATASETS, dataset_spec
from ..errors import run_command, wants_debug
from ..feature_manifest import read_model_feature_signatures
from ..post_processing import post_process_moment_retrieval
from ..presets import read_preset
from .arguments import (
    RDMFTrainingArguments,
    arguments_from_namespace,
    build_train_parser,
    check_before_training,
    data_paths,
)
from .data import build_dataset, build_loader
from .tracking import transformers_progress_bars_off


def predictions_for_batch(outputs, meta: list[dict], args: RDMFTrainingArguments) -> list[dict]:
    """One QVHighlights-submission row per example: windows ``[start, end, score]`` and per-clip saliency.

    A highlight-only dataset (TVSum, YouTube Highlights) has no spans to score windows against, and a run
    on it never trains the moment head: its rows carry the saliency alone, with no ``pred_relevant_windows``.
    """
    saliency = outputs.saliency_logits.detach().float().sigmoid().cpu()
    if args.dataset in HIGHLIGHT_DATASETS:
        moments = [None] * len(meta)
    else:
        durations = [m["span_duration"] for m in meta]
        moments = post_process_moment_retrieval(outputs, durations, args.top_k_windows, args.nms_threshold)
    rows = []
    for item, windows, clip_saliency in zip(meta, moments, saliency):
        row = {"qid": item["qid"], "query": item["query"], "vid": item["vid"]}
        if windows is not None:
            row["pred_relevant_windows"] = [
                [round(w["start"], 4), round(w["end"], 4), round(w["score"], 6)] for w in windows
            ]
        row["pred_saliency_scores"] = [round(float(s), 6) for s in clip_saliency[: item["num_clips"]]]
        rows.append(row)
    return rows


def highlight_references(meta: list[dict]) -> list[dict]:
    """Ground truth of highlight-only datasets from what the loader read (per-clip annotator scores)."""
    return [
        {"qid": m["qid"], "domain": m["domain"], "label": m["saliency_scores"].tolist()}
        for m in meta
        if m["saliency_scores"] is not None
    ]


@torch.no_grad()
def run_evaluation(
    model, loader, accelerator: Accelerator, args: RDMFTrainingArguments
) -> tuple[list[dict], list[dict]]:
    """Predictions (and highlight references) for every example of ``loader``, gathered exactly once."""
    model.eval()
    predictions, references = [], []
    for batch in tqdm(
        loader, desc="eval", disable=args.disable_progress_bar or not accelerator.is_local_main_process
    ):
        meta = batch.pop("meta")
        batch.pop("labels")
        outputs = model(**batch)
        rows = predictions_for_batch(outputs, meta, args)
        predictions.extend(accelerator.gather_for_metrics(rows, use_gather_object=True))
        if args.dataset in HIGHLIGHT_DATASETS:
            references.extend(
                accelerator.gather_for_metrics(highlight_references(meta), use_gather_object=True)
            )
    model.train()
    return predictions, references


def compute_metrics(
    dataset: str, predictions: list[dict], references: list[dict], annotations_path: str | None
) -> dict:
    """The dataset's official metrics, flattened to ``{name: value}`` (percent)."""
    return metrics_and_per_video_scores(dataset, predictions, references, annotations_path)[0]


def metrics_and_per_video_scores(
    dataset: str, predictions: list[dict], references: list[dict], annotations_path: str | None
) -> tuple[dict, dict[str, dict[str, float]] | None]:
    """`compute_metrics`' metrics and, for the highlight datasets, ``{domain: {qid: percent}}``: each
    eval video's own score (TVSum top-5 AP, YouTube Highlights AP), on exactly the videos the run
    evaluated, the numbers paired tests compare, both from one evaluation; None for moment datasets."""
    evaluator = dataset_spec(dataset).evaluator
    if evaluator in ("tvsum", "youtube_highlights"):
        return highlight_metrics_and_per_video_scores(dataset, predictions, references)
    return moment_metrics(evaluator, predictions, reference_rows_for(predictions, annotations_path)), None


def moment_metrics(evaluator: str, predictions: list[dict], ground_truth: list[dict]) -> dict:
    """A moment dataset's official metrics (``evaluator``: its `DatasetSpec.evaluator`), flattened."""
    from ..metrics import evaluate_moment_retrieval, evaluate_qvhighlights

    if evaluator == "qvhighlights":
        return dict(evaluate_qvhighlights(predictions, ground_truth)["brief"])
    if evaluator == "moment_retrieval+qvhighlights":  # QVHighlights' official MR part and R1/R5/mIoU
        windows_only = [{k: v for k, v in p.items() if k != "pred_saliency_scores"} for p in predictions]
        brief = evaluate_qvhighlights(windows_only, ground_truth)["brief"]
        return {**brief, **evaluate_moment_retrieval(predictions, ground_truth)}
    return evaluate_moment_retrieval(predictions, ground_truth)


def metric_names(dataset: str, domains: Iterable[str] = ()) -> list[str]:
    """The names `compute_metrics` returns for a run on ``dataset``, known before its first evaluation
    (what ``--early_stopping_metric`` is checked against).

    A highlight dataset: the headline, and the headline per domain of the eval videos (``domains``). A
    moment dataset: the keys its evaluator returns, read by running it on one made-up query (a 10 s video,
    one window, five clips of saliency), so the names have one home, the evaluator.
    """
    spec = dataset_spec(dataset)
    if not spec.has_spans:
        return [spec.headline_metric, *(f"{spec.headline_metric}/{d}" for d in sorted(set(domains)))]
    prediction = {
        "qid": 0,
        "pred_relevant_windows": [[0.0, 4.0, 1.0]],
        "pred_saliency_scores": [1.0, 0.5, 0, 0, 0],
    }
    reference = {
        "qid": 0,
        "duration": 10,
        "relevant_windows": [[0, 4]],
        "relevant_clip_ids": [0, 1],
        "saliency_scores": [[4, 4, 4], [2, 2, 2]],
    }
    return sorted(moment_metrics(spec.evaluator, [prediction], [reference]))


def check_early_stopping_metric(args: RDMFTrainingArguments, eval_set) -> None:
    """Refuse, before training, an ``--early_stopping_metric`` the evaluation will not report."""
    if args.early_stopping_metric is None or eval_set is None:
        return
    spans = dataset_spec(args.dataset).has_spans
    names = metric_names(args.dataset, () if spans else eval_set.annotations["domain"])
    if args.early_stopping_metric in names:
        return
    from_preset = read_preset(args.preset).get("training", {}).get("early_stopping_metric")
    source = f" (from --preset {args.preset})" if from_preset == args.early_stopping_metric else ""
    raise ValueError(
        f"--early_stopping_metric {args.early_stopping_metric!r}{source}: expected one of the metrics "
        f"{args.dataset} reports, {', '.join(names)}"
    )


def highlight_metrics_and_per_video_scores(
    dataset: str, predictions: list[dict], references: list[dict]
) -> tuple[dict, dict[str, dict[str, float]]]:
    """TVSum / YouTube Highlights: the headline and per-domain metrics, and each video's score."""
    from ..metrics import evaluate_tvsum, evaluate_youtube_highlights

    spec = dataset_spec(dataset)
    evaluate = evaluate_tvsum if spec.evaluator == "tvsum" else evaluate_youtube_highlights
    scores = evaluate(predictions, references, per_video=True)
    headline = spec.headline_metric
    metrics = {headline: scores[headline], **{f"{headline}/{d}": v for d, v in scores["per_domain"].items()}}
    by_domain: dict[str, dict[str, float]] = {}
    for reference in references:
        qid = str(reference["qid"])
        by_domain.setdefault(reference["domain"], {})[qid] = scores["per_video"][qid]
    return metrics, by_domain


def reference_rows_for(predictions: list[dict], annotations_path: str) -> list[dict]:
    """The annotation rows of the predicted queries; prediction qids are set to the file's qid type."""
    by_qid = {}
    with open(annotations_path) as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                by_qid[str(row["qid"])] = row
    rows = []
    for prediction in predictions:
        row = by_qid[str(prediction["qid"])]
        prediction["qid"] = row["qid"]
        rows.append(row)
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    """One strict JSON object a line, written whole or not at all (`atomic.atomic_write_text`)."""
    atomic_write_text(path, "".join(json.dumps(row, allow_nan=False) + "\n" for row in rows))


def evaluate_checkpoint(checkpoint: str, args: RDMFTrainingArguments) -> dict:
    """Predictions file + official metrics of a saved checkpoint on ``args``' eval split."""
    with transformers_progress_bars_off(args.disable_progress_bar):
        return score_checkpoint(checkpoint, args)


def score_checkpoint(checkpoint: str, args: RDMFTrainingArguments) -> dict:
    """`evaluate_checkpoint`'s body (transformers' own progress bars already set)."""
    check_before_training(args)
    output = Path(args.output_dir)
    outputs = {
        "--output_dir (preds.jsonl)": output / "preds.jsonl",
        "--output_dir (metrics.json)": output / "metrics.json",
    }
    check_output_paths(outputs, {"--checkpoint": checkpoint, **data_paths(args)})
    check_not_replacing(outputs, args.overwrite_output_dir, "--overwrite_output_dir")
    accelerator = Accelerator()
    model = load_checkpoint_model(checkpoint, "--checkpoint")
    eval_set = build_dataset(args, "eval", model.config, read_model_feature_signatures(checkpoint))
    if eval_set is None:
        raise ValueError(
            "nothing to evaluate: give --eval_annotations (or --data_root for YouTube Highlights)"
        )
    model, loader = accelerator.prepare(model, build_loader(eval_set, args, shuffle=False))
    predictions, references = run_evaluation(model, loader, accelerator, args)
    metrics = {}
    if accelerator.is_main_process:
        metrics = compute_metrics(args.dataset, predictions, references, args.eval_annotations)
        write_jsonl(Path(args.output_dir) / "preds.jsonl", predictions)
        atomic_write_json(Path(args.output_dir) / "metrics.json", metrics, indent=2)
    return metrics


def evaluate_main(argv: list[str] | None = None) -> int:
    parser = build_train_parser()
    parser.prog = "rdmf-evaluate"
    parser.description = "Evaluate a checkpoint: predictions file + official metrics in --output_dir."
    parser.add_argument("--checkpoint", required=True, help="a folder written by save_pretrained")

    def work() -> None:
        namespace = parser.parse_args(argv)
        metrics = evaluate_checkpoint(namespace.checkpoint, arguments_from_namespace(namespace))
        print(json.dumps(metrics, indent=2, allow_nan=False))

    return run_command("rdmf-evaluate", work, debug=wants_debug(argv))
