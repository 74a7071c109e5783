"""scripts/publish.py and transformers_rdmf.hub: the repository folder, its model card, push, bad input."""

import dataclasses
import importlib.util
import json
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from huggingface_hub import HfApi, ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results
from safetensors.torch import load_file, save_file

from transformers_rdmf import AutoModelForMomentRetrieval, RDMFForMomentRetrieval
from transformers_rdmf.hub import DATASETS, PublishError, publish_checkpoint
from transformers_rdmf.metrics import evaluate_moment_retrieval, evaluate_tvsum, evaluate_youtube_highlights
from transformers_rdmf.training import (
    RDMFTrainingArguments,
    arguments_from_namespace,
    build_train_parser,
    compute_metrics,
)

from .test_hub_integration import batch_inputs, outputs_without_the_package
from .test_modeling import assert_outputs_close, assert_same_parameters, tiny_batch, tiny_config

REPO_ROOT = Path(__file__).resolve().parents[1]
OUTPUT_KEYS = ("pred_spans", "logits", "pred_ious", "scores", "saliency_logits")
TRAINING_COMMAND = "python scripts/train.py --preset qvhighlights_clip_slowfast --seed 0"


def leaves(metrics: dict, prefix: str = "") -> dict:
    """Every value of a nested dict by its '/'-joined path (written apart from the library's flattening)."""
    found = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            found.update(leaves(value, f"{prefix}{key}/"))
        else:
            found[f"{prefix}{key}"] = value
    return found


def _highlight_metrics(path: Path, evaluate) -> dict:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rng = np.random.default_rng(0)
    predictions = [
        {"qid": r["qid"], "pred_saliency_scores": rng.random(len(r["label"])).tolist()} for r in rows
    ]
    return evaluate(predictions, rows)


def _moment_metrics(path: Path) -> dict:
    rows = [json.loads(line) for line in path.read_text().splitlines()[:100]]
    predictions = [
        {
            "qid": r["qid"],
            "pred_relevant_windows": [[w[0] + 0.5, w[1] + 0.5, 0.9] for w in r["relevant_windows"]],
        }
        for r in rows
    ]
    return evaluate_moment_retrieval(predictions, rows)


@pytest.fixture(scope="module")
def metrics_files(shared_data, tmp_path_factory) -> dict[str, Path]:
    """A real metrics JSON of every dataset's evaluation (QVHighlights: QD-DETR's official numbers)."""
    folder = tmp_path_factory.mktemp("metrics")
    metrics = {
        "qvhighlights": json.loads(
            (shared_data / "conformance/qvhighlights/qddetr_sf+clip_val_preds_metrics.json").read_text()
        ),
        "charades_sta": _moment_metrics(shared_data / "charades_sta/charades_test_release.jsonl"),
        "activitynet_captions": _moment_metrics(
            shared_data / "activitynet_captions/activitynet_val_release.jsonl"
        ),
        "tvsum": _highlight_metrics(shared_data / "tvsum/tvsum_val_release.jsonl", evaluate_tvsum),
        "youtube_highlights": _highlight_metrics(
            shared_data / "youtube_highlights/youtube_highlight_val_release.jsonl",
            evaluate_youtube_highlights,
        ),
    }
    paths = {}
    for dataset, values in metrics.items():
        paths[dataset] = folder / f"{dataset}.json"
        paths[dataset].write_text(json.dumps(values))
    return paths


@pytest.fixture
def trained_model() -> RDMFForMomentRetrieval:
    model = RDMFForMomentRetrieval(tiny_config()).eval()
    with torch.no_grad():
        model.rdmf.fusion.raw_kill_rate.add_(0.5)  # a trained value, not the config's
    return model


@pytest.fixture
def checkpoint(tmp_path, trained_model) -> Path:
    """What training leaves: save_pretrained's files, training arguments and a processor file."""
    folder = tmp_path / "checkpoint"
    trained_model.save_pretrained(folder)
    (folder / "training_args.json").write_text(json.dumps({"command": TRAINING_COMMAND.split(), "seed": 0}))
    (folder / "preprocessor_config.json").write_text(json.dumps({"clip_length": 2.0}))
    return folder


def tiny_preset(tmp_path: Path, dataset: str = "qvhighlights", **config) -> Path:
    path = tmp_path / "tiny_preset.json"
    preset = {
        "description": "tiny test preset",
        "config": {"video_feature_dim": 24, "text_feature_dim": 12, **config},
        "features": {
            "layout": "moment_detr",
            "clip_length": 2.0,
            "video_streams": {"a": 24},
            "text_stream": {"t": 12},
        },
        "training": {"dataset": dataset, "learning_rate": 0.0001},
    }
    path.write_text(json.dumps(preset))
    return path


def load_card_metrics(readme: Path) -> tuple[ModelCard, str, list]:
    card = ModelCard.load(readme)
    metadata = yaml.safe_load(readme.read_text().split("---")[1])
    name, results = model_index_to_eval_results(metadata["model-index"])
    return card, name, results


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_card_model_index_holds_every_metric_of_the_evaluation(dataset, checkpoint, metrics_files, tmp_path):
    out = publish_checkpoint(
        checkpoint,
        metrics_files[dataset],
        tmp_path / "repo",
        dataset=dataset,
        repo_id=f"someone/rdmf-{dataset}",
    )
    expected = leaves(json.loads(metrics_files[dataset].read_text()))
    card, name, results = load_card_metrics(out / "README.md")
    assert name == f"rdmf-{dataset}"
    # exact: the card's YAML holds the very numbers of the metrics file, written and read back
    assert {r.metric_type: r.metric_value for r in results} == expected
    assert len(results) == len(expected)
    assert len(card.data.eval_results) == len(expected)
    info = DATASETS[dataset]
    for result in results:
        assert (result.dataset_name, result.dataset_type, result.dataset_split) == (
            info.pretty_name,
            dataset,
            info.split,
        )
        highlight = "HL-" in result.metric_type or dataset in ("tvsum", "youtube_highlights")
        assert result.task_type == ("highlight-detection" if highlight else "moment-retrieval")
    assert json.loads((out / "eval_results.json").read_text()) == json.loads(
        metrics_files[dataset].read_text()
    )
    text = card.text
    for heading in ("## Results", "## How to use", "## Intended use", "## Limitations", "## Training"):
        assert heading in text
    assert TRAINING_COMMAND in text
    assert info.licence in text
    assert card.data.license == info.hub_license
    assert 'from_pretrained("someone/rdmf-' in text


def test_card_documents_the_preset_and_its_features(checkpoint, metrics_files, tmp_path):
    out = publish_checkpoint(
        checkpoint,
        metrics_files["qvhighlights"],
        tmp_path / "repo",
        preset=tiny_preset(tmp_path),
        split="test",
    )
    card, _, results = load_card_metrics(out / "README.md")
    assert {r.dataset_split for r in results} == {"test"}
    assert "tiny test preset" in card.text and "a (24)" in card.text and "2.0 s clips" in card.text
    assert json.loads((out / "preset.json").read_text())["config"]["video_feature_dim"] == 24


def test_published_folder_loads_without_the_package_and_gives_the_same_outputs(
    checkpoint, trained_model, metrics_files, tmp_path
):
    out = publish_checkpoint(
        checkpoint, metrics_files["qvhighlights"], tmp_path / "repo", dataset="qvhighlights"
    )
    assert (out / "model.safetensors").is_file() and not (out / "pytorch_model.bin").exists()
    assert {"modeling_rdmf.py", "configuration_rdmf.py", "reaction_diffusion.py"} <= {
        p.name for p in out.glob("*.py")
    }
    inputs = batch_inputs()
    remote = outputs_without_the_package(out, inputs, tmp_path)
    with torch.no_grad():
        local = trained_model(**inputs)
    # another process and instance: its kernels may round differently (see test_modeling)
    assert_outputs_close(remote, local, OUTPUT_KEYS)


def test_package_loads_the_published_folder(checkpoint, trained_model, metrics_files, tmp_path):
    out = publish_checkpoint(checkpoint, metrics_files["tvsum"], tmp_path / "repo", dataset="tvsum")
    loaded = AutoModelForMomentRetrieval.from_pretrained(out).eval()
    assert type(loaded) is RDMFForMomentRetrieval
    assert_same_parameters(trained_model, loaded)  # read back from the published file: bit for bit
    with torch.no_grad():
        expected, got = trained_model(*tiny_batch()), loaded(*tiny_batch())
    # another instance: its kernels may round differently (see test_modeling)
    assert_outputs_close(got, expected, OUTPUT_KEYS)
    assert json.loads((out / "preprocessor_config.json").read_text()) == {"clip_length": 2.0}
    assert json.loads((out / "training_args.json").read_text())["seed"] == 0


def load_publish_script():
    spec = importlib.util.spec_from_file_location("publish_script", REPO_ROOT / "scripts" / "publish.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_push_creates_the_repository_and_uploads_the_folder(checkpoint, metrics_files, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, **kwargs: calls.append(("create_repo", kwargs)))
    monkeypatch.setattr(
        HfApi, "upload_folder", lambda self, **kwargs: calls.append(("upload_folder", kwargs))
    )
    out = tmp_path / "repo"
    argv = [str(checkpoint), str(metrics_files["charades_sta"]), str(out), "--dataset", "charades_sta"]
    assert (
        load_publish_script().main([*argv, "--push", "--repo_id", "someone/rdmf-charades", "--private"]) == 0
    )
    assert calls == [
        (
            "create_repo",
            {"repo_id": "someone/rdmf-charades", "repo_type": "model", "private": True, "exist_ok": True},
        ),
        (
            "upload_folder",
            {
                "repo_id": "someone/rdmf-charades",
                "folder_path": str(out),
                "repo_type": "model",
                "commit_message": "Upload RDMF checkpoint",
            },
        ),
    ]
    assert (out / "README.md").is_file()


def test_push_without_repo_id_stops_before_writing(checkpoint, metrics_files, tmp_path, capsys):
    out = tmp_path / "repo"
    with pytest.raises(SystemExit) as exit_info:
        load_publish_script().main([str(checkpoint), str(metrics_files["tvsum"]), str(out), "--push"])
    assert exit_info.value.code == 2
    assert "--push needs --repo_id" in capsys.readouterr().err
    assert not out.exists()


def _write_metrics(tmp_path: Path, metrics: dict) -> Path:
    path = tmp_path / "bad_metrics.json"
    path.write_text(json.dumps(metrics))
    return path


def _without_weights(checkpoint: Path) -> Path:
    (checkpoint / "model.safetensors").unlink()
    return checkpoint


def _with_an_unexpected_weight(checkpoint: Path) -> Path:
    weights = load_file(checkpoint / "model.safetensors")
    weights["rdmf.extra.weight"] = torch.zeros(3)
    save_file(weights, checkpoint / "model.safetensors", metadata={"format": "pt"})
    return checkpoint


BAD_INPUTS = {
    "missing metric": (
        lambda ckpt, tmp: dict(metrics=_write_metrics(tmp, {"R1@0.5": 50.0}), dataset="charades_sta"),
        r"missing 'R1@0.3', 'R1@0.7', 'R5@0.5', 'R5@0.7', 'mIoU'",
    ),
    "null metric": (
        lambda ckpt, tmp: dict(metrics=_write_metrics(tmp, {"mAP": 70.0, "per_domain": {"dog": None}})),
        r"'per_domain/dog' has no value \(null\)",
    ),
    "non-numeric metric": (
        lambda ckpt, tmp: dict(metrics=_write_metrics(tmp, {"mAP": "70.1", "per_domain": {"dog": 1.0}})),
        r"'mAP' is '70.1' \(str\); every metric must be a number",
    ),
    "non-finite metric": (
        lambda ckpt, tmp: dict(
            metrics=_write_metrics(tmp, {"mAP": float("nan"), "per_domain": {"dog": 1.0}})
        ),
        r"'mAP' is nan; every metric must be finite",
    ),
    "no weights": (
        lambda ckpt, tmp: dict(checkpoint=_without_weights(ckpt)),
        r"no weights \(model.safetensors or .*\); is this a checkpoint folder\?",
    ),
    "weights that do not match": (
        lambda ckpt, tmp: dict(checkpoint=_with_an_unexpected_weight(ckpt)),
        r"weights do not match RDMFForMomentRetrieval: \{'unexpected_keys': \['rdmf.extra.weight'\]\}",
    ),
    "unknown dataset": (
        lambda ckpt, tmp: dict(dataset=None, preset=tiny_preset(tmp, dataset="custom")),
        r"unknown dataset 'custom': a model card needs one of qvhighlights, charades_sta",
    ),
    "QVHighlights metrics without MR or HL results": (
        lambda ckpt, tmp: dict(metrics=_write_metrics(tmp, {"R1@0.5": 50.0}), dataset="qvhighlights"),
        r"missing 'brief' or 'MR-full-mAP' or 'HL-min-VeryGood-mAP', which a qvhighlights evaluation writes",
    ),
    "metrics of another dataset": (
        lambda ckpt, tmp: dict(metrics=_write_metrics(tmp, {"dataset": "tvsum", "epoch": 3, "mAP": 1.0})),
        r"the metrics file is of dataset 'tvsum', the checkpoint of 'youtube_highlights'",
    ),
    "no dataset": (
        lambda ckpt, tmp: dict(dataset=None),
        r"no training dataset: neither the preset nor training_args.json names one; pass --dataset",
    ),
    "unknown preset": (
        lambda ckpt, tmp: dict(preset="qvhighlight"),
        r"unknown preset 'qvhighlight' .* known presets: .*qvhighlights_clip_slowfast",
    ),
    "preset of other widths": (
        lambda ckpt, tmp: dict(preset="qvhighlights_clip_slowfast"),
        r"video_feature_dim=24 but preset 'qvhighlights_clip_slowfast' has 2816",
    ),
    "invalid repo id": (
        lambda ckpt, tmp: dict(repo_id="not a/valid/id"),
        r"invalid repo_id 'not a/valid/id'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_stops_before_anything_is_written(case, checkpoint, metrics_files, tmp_path):
    make, message = BAD_INPUTS[case]
    arguments = dict(
        checkpoint=checkpoint, metrics=metrics_files["youtube_highlights"], dataset="youtube_highlights"
    )
    arguments.update(make(checkpoint, tmp_path))
    parent = tmp_path / "published"
    parent.mkdir()
    with pytest.raises(PublishError, match=message):
        publish_checkpoint(
            arguments.pop("checkpoint"), arguments.pop("metrics"), parent / "repo", **arguments
        )
    assert list(parent.iterdir()) == []


def test_a_non_empty_output_folder_is_kept_unless_overwrite(checkpoint, metrics_files, tmp_path):
    out = tmp_path / "repo"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(PublishError, match="is not empty"):
        publish_checkpoint(checkpoint, metrics_files["tvsum"], out, dataset="tvsum")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    publish_checkpoint(checkpoint, metrics_files["tvsum"], out, dataset="tvsum", overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "README.md").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_script_reports_bad_input_as_an_error_line(checkpoint, tmp_path, capsys):
    metrics = _write_metrics(tmp_path, {"per_domain": {"BK": 80.0}})
    code = load_publish_script().main(
        [str(checkpoint), str(metrics), str(tmp_path / "repo"), "--dataset", "tvsum"]
    )
    assert code == 2
    assert "publish.py: error:" in capsys.readouterr().err
    assert not (tmp_path / "repo").exists()


def _training_loop_metrics(dataset: str, shared_data: Path) -> dict:
    """``best/metrics.json`` as the training loop writes it: its flat metrics, the epoch and the dataset."""
    if dataset == "tvsum":
        rows = [
            json.loads(line)
            for line in (shared_data / "tvsum/tvsum_val_release.jsonl").read_text().splitlines()
        ]
        rng = np.random.default_rng(0)
        predictions = [
            {"qid": r["qid"], "pred_saliency_scores": rng.random(len(r["label"])).tolist()} for r in rows
        ]
        return {"epoch": 7, "dataset": dataset, **compute_metrics(dataset, predictions, rows, None)}
    conformance = shared_data / "conformance/qvhighlights/qddetr_sf+clip_val_preds.jsonl"
    predictions = [json.loads(line) for line in conformance.read_text().splitlines()]
    annotations = shared_data / "qvhighlights/highlight_val_release.jsonl"
    return {"epoch": 7, "dataset": dataset, **compute_metrics(dataset, predictions, None, str(annotations))}


@pytest.mark.parametrize("dataset", ["qvhighlights", "tvsum"])
def test_a_training_loop_checkpoint_publishes_with_its_own_arguments(
    dataset, trained_model, shared_data, tmp_path
):
    """What ``rdmf-train`` leaves in ``best/``; the card's command gives back the same arguments."""
    preset = tiny_preset(tmp_path, dataset="custom")
    args = RDMFTrainingArguments(
        output_dir="runs/tiny", preset=str(preset), dataset=dataset, domain="BK" if dataset == "tvsum" else None,
        config_overrides={"hidden_size": 32, "fusion_type": "reaction_diffusion"}, learning_rate=0.001,
        video_feature_dirs=["features/a", "features/b"], mixed_precision="bf16", disable_progress_bar=True,
    )  # fmt: skip
    best = tmp_path / "runs" / "best"
    trained_model.save_pretrained(best)
    (best / "preset.json").write_text(preset.read_text())
    (best / "training_args.json").write_text(json.dumps(dataclasses.asdict(args), indent=2))
    metrics = _training_loop_metrics(dataset, shared_data)
    (best / "metrics.json").write_text(json.dumps(metrics))

    out = publish_checkpoint(best, best / "metrics.json", tmp_path / "repo")
    card, _, results = load_card_metrics(out / "README.md")
    expected = {k: v for k, v in leaves(metrics).items() if k not in ("epoch", "dataset")}
    assert {r.metric_type: r.metric_value for r in results} == expected  # exact: written and read back
    assert {r.dataset_type for r in results} == {dataset}
    assert "Checkpoint of epoch 7." in card.text
    assert json.loads((out / "preset.json").read_text())["name"] == "tiny_preset"
    command = card.text.split("```bash\n")[1].split("\n```")[0]
    argv = shlex.split(command)
    assert argv[0] == "rdmf-train"
    replayed = arguments_from_namespace(build_train_parser().parse_args(argv[1:]))
    # exact: floats such as the learning rate are written with repr and parsed back
    assert replayed == dataclasses.replace(args, disable_progress_bar=False)


@pytest.mark.parametrize("domain", ["BK", None])
def test_card_says_whether_a_per_category_protocol_checkpoint_covers_one_category_or_all(
    domain, trained_model, shared_data, tmp_path
):
    """TVSum's protocol trains one model per category; a checkpoint trained without ``--domain`` is one
    model for every category, and its card must not describe it as the protocol's."""
    preset = tiny_preset(tmp_path, dataset="tvsum")
    preset.write_text(
        json.dumps({**json.loads(preset.read_text()), "training": {"dataset": "tvsum", "per_domain": True}})
    )
    args = RDMFTrainingArguments(output_dir="runs/tiny", preset=str(preset), dataset="tvsum", domain=domain)
    best = tmp_path / "runs" / "best"
    trained_model.save_pretrained(best)
    (best / "preset.json").write_text(preset.read_text())
    (best / "training_args.json").write_text(json.dumps(dataclasses.asdict(args), indent=2))
    (best / "metrics.json").write_text(json.dumps(_training_loop_metrics("tvsum", shared_data)))
    card, _, _ = load_card_metrics(
        publish_checkpoint(best, best / "metrics.json", tmp_path / "repo") / "README.md"
    )
    limitations = card.text.split("## Limitations")[1].split("## ")[0]
    assert "moment head was not trained" not in card.text  # not recorded: the card does not claim either way
    one_model_for_all = "this checkpoint is one model trained on every category's train videos at once"
    assert (one_model_for_all in limitations) == (domain is None)
    assert ("covers what its training arguments name" in limitations) == (domain is not None)


def test_card_of_a_highlight_only_checkpoint_says_its_moment_head_was_not_trained(
    trained_model, shared_data, tmp_path
):
    preset = tiny_preset(tmp_path, dataset="tvsum")
    best = tmp_path / "runs" / "best"
    trained_model.config.trained_heads = ["saliency"]
    try:
        trained_model.save_pretrained(best)
    finally:
        trained_model.config.trained_heads = None
    (best / "preset.json").write_text(preset.read_text())
    (best / "metrics.json").write_text(json.dumps(_training_loop_metrics("tvsum", shared_data)))
    card, _, _ = load_card_metrics(
        publish_checkpoint(best, best / "metrics.json", tmp_path / "repo") / "README.md"
    )
    summary = card.text.split("## Results")[0]
    assert '**Its moment head was not trained** (`trained_heads: ["saliency"]` in `config.json`)' in summary
