"""Training with Accelerate: learning on synthetic data, two processes = one, exact resume, bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from transformers_rdmf import RDMFConfig, RDMFForMomentRetrieval
from transformers_rdmf.data import random_temporal_crop
from transformers_rdmf.data.synthetic import write_synthetic_moment_dataset
from transformers_rdmf.training import (
    RDMFTrainingArguments,
    TrainingLoop,
    heads_trained_by,
    read_csv_log,
    train,
    train_main,
)

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "video_feature_dim": 32,
    "text_feature_dim": 16,
    "hidden_size": 32,
    "num_attention_heads": 4,
    "num_moment_queries": 10,
    "decoder_ffn_dim": 64,
}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return write_synthetic_moment_dataset(tmp_path_factory.mktemp("synthetic"), num_train=32, num_eval=13)


def data_flags(layout) -> list[str]:
    return [
        "--dataset", "qvhighlights",
        "--train_annotations", str(layout.train_annotations),
        "--eval_annotations", str(layout.eval_annotations),
        "--video_feature_dirs", *map(str, layout.video_feature_dirs),
        "--text_feature_dir", str(layout.text_feature_dir),
        "--preset", "clip_vit_b32",
    ]  # fmt: skip


def tiny_flags(**extra) -> list[str]:
    flags = [f"--set={k}={v}" for k, v in {**TINY, **extra}.items()]
    return [*flags, "--disable_progress_bar", "--lr_scheduler", "linear", "--warmup_steps", "2"]


def arguments(layout, output_dir, **overrides) -> RDMFTrainingArguments:
    values = dict(
        output_dir=str(output_dir),
        preset="clip_vit_b32",
        config_overrides=dict(TINY),
        dataset="qvhighlights",
        train_annotations=str(layout.train_annotations),
        eval_annotations=str(layout.eval_annotations),
        video_feature_dirs=[str(d) for d in layout.video_feature_dirs],
        text_feature_dir=str(layout.text_feature_dir),
        batch_size=8,
        learning_rate=1e-3,
        lr_scheduler="linear",
        warmup_steps=2,
        disable_progress_bar=True,
    )
    return RDMFTrainingArguments(**{**values, **overrides})


def final_weights(output_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(output_dir / "checkpoints" / "last" / "model.safetensors")


class Interrupted(Exception):
    """Stands for a crash or a killed job."""


def test_resume_continues_exactly(synthetic, tmp_path, monkeypatch):
    """2N steps in one go == N steps, an interruption, and a resume for N more (dropout on, mid-epoch)."""
    straight = tmp_path / "straight"
    train(arguments(synthetic, straight, max_steps=6, num_epochs=10, ema_decay=0.9))

    original_step = TrainingLoop.after_optimizer_step

    def step_then_crash_at_4(self, outputs):
        original_step(self, outputs)
        if self.state.global_step == 4:  # after step 4's rows are logged, one step past the checkpoint
            raise Interrupted

    stopped = tmp_path / "stopped"
    monkeypatch.setattr(TrainingLoop, "after_optimizer_step", step_then_crash_at_4)
    with pytest.raises(Interrupted):
        train(
            arguments(synthetic, stopped, max_steps=6, num_epochs=10, save_state_every_steps=3, ema_decay=0.9)
        )
    monkeypatch.setattr(TrainingLoop, "after_optimizer_step", original_step)
    checkpoint = stopped / "checkpoints" / "step_3"
    train(
        arguments(
            synthetic,
            stopped,
            max_steps=6,
            num_epochs=10,
            resume_from_checkpoint=str(checkpoint),
            ema_decay=0.9,
        )
    )

    # the run ended mid-epoch, after its last evaluation (step 4): final/ holds no metrics of other weights
    assert set(json.loads((straight / "final" / "metrics.json").read_text())) == {"epoch", "dataset"}
    a, b = final_weights(straight), final_weights(stopped)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=1e-6, rtol=0, msg=name)
    # the resumed log is the uninterrupted one: step 4's rows once (the checkpoint's copy of the log)
    log_a, log_b = read_csv_log(straight), read_csv_log(stopped)
    assert [(step, name) for step, name, _ in log_b] == [(step, name) for step, name, _ in log_a]
    assert [step for step, name, _ in log_a if name == "train/loss"] == [1, 2, 3, 4, 5, 6]
    for (_, name, value_a), (_, _, value_b) in zip(log_a, log_b):
        assert value_b == pytest.approx(value_a, abs=1e-6), name
    ema_a, ema_b = (
        ema_weights(straight / "checkpoints" / "last"),
        ema_weights(stopped / "checkpoints" / "last"),
    )
    assert ema_a.keys() == a.keys()
    for name in ema_a:
        torch.testing.assert_close(ema_b[name], ema_a[name], atol=1e-6, rtol=0, msg=f"EMA {name}")


def ema_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The EMA model's weights saved with the training state (the third registered object)."""
    state = torch.load(checkpoint / "custom_checkpoint_2.pkl", weights_only=True)
    return {name.removeprefix("module."): value for name, value in state.items()}


def test_ema_weights_follow_their_recursion_and_are_what_is_evaluated(synthetic, tmp_path):
    """``--ema_decay d``: e_1 = p_1, e_k = d e_(k-1) + (1 - d) p_k (float64 reference over saved steps);
    evaluation, and so ``best/``, use the EMA weights."""
    output = tmp_path / "ema"
    train(arguments(synthetic, output, max_steps=4, num_epochs=1, ema_decay=0.75, save_state_every_steps=1))
    steps = [load_file(output / "checkpoints" / f"step_{k}" / "model.safetensors") for k in (1, 2, 3, 4)]
    reference = {name: value.double() for name, value in steps[0].items()}
    for weights in steps[1:]:
        reference = {name: 0.75 * reference[name] + 0.25 * weights[name].double() for name in reference}
    ema = ema_weights(output / "checkpoints" / "step_4")
    best = load_file(output / "best" / "model.safetensors")
    assert not torch.equal(steps[-1]["rdmf.saliency_head.weight"], ema["rdmf.saliency_head.weight"])
    final = load_file(output / "final" / "model.safetensors")  # the weights training ended with
    for name in reference:
        torch.testing.assert_close(ema[name].double(), reference[name], atol=1e-6, rtol=0, msg=name)
        torch.testing.assert_close(best[name], ema[name], atol=0, rtol=0, msg=name)
        torch.testing.assert_close(final[name], ema[name], atol=0, rtol=0, msg=name)
    final_metrics = json.loads((output / "final" / "metrics.json").read_text())
    assert final_metrics == json.loads((output / "best" / "metrics.json").read_text())  # evaluated at step 4


def run_training_process(flags: list[str], processes: int, output_dir: Path) -> None:
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(processes)]
    launcher += ["--multi_gpu"] if processes > 1 else ["--cpu"]  # no GPU here: the script falls back to gloo
    launcher += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    command = [*launcher, str(REPO / "scripts" / "train.py"), "--output_dir", str(output_dir), *flags]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]


@pytest.mark.parametrize(
    "losses",
    [{}, {"moment_loss_weight": 0.0, "iou_loss_weight": 0.0}],
    ids=["all losses", "highlight-only (decoder frozen, unused by the loss)"],
)
def test_two_processes_equal_one_process_with_the_whole_batch(synthetic, tmp_path, losses):
    common = [
        *data_flags(synthetic),
        *tiny_flags(dropout=0.0, **losses),
        "--num_epochs",
        "2",
        "--learning_rate",
        "1e-3",
    ]
    run_training_process([*common, "--batch_size", "8"], 1, tmp_path / "one")
    run_training_process([*common, "--batch_size", "4"], 2, tmp_path / "two")
    one, two = final_weights(tmp_path / "one"), final_weights(tmp_path / "two")
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=1e-5, rtol=0, msg=name)
    for folder in ("one", "two"):
        rows = [json.loads(line) for line in open(tmp_path / folder / "eval" / "epoch_002_preds.jsonl")]
        qids = [row["qid"] for row in rows]
        assert len(qids) == 13 and len(set(qids)) == 13  # 13 = uneven for 2 x 4: no duplicate, none lost


def test_training_learns_query_dependent_moments(tmp_path):
    """750 CPU steps (about 30 s): held-out queries' top moment at IoU >= 0.5 above 90%, target clips ranked first."""
    layout = write_synthetic_moment_dataset(tmp_path / "data", num_train=400, num_eval=48, seed=1)
    args = arguments(
        layout,
        tmp_path / "run",
        config_overrides={**TINY, "hidden_size": 64, "decoder_ffn_dim": 128, "dropout": 0.0},
        batch_size=16,
        num_epochs=30,
        learning_rate=2e-3,
        lr_scheduler="constant_with_warmup",
        eval_every_epochs=30,
    )
    result = train(args)
    metrics = result["last_metrics"]
    assert metrics["MR-full-R1@0.5"] > 90.0, metrics
    model = RDMFForMomentRetrieval.from_pretrained(tmp_path / "run" / "best").eval()
    rows = [json.loads(line) for line in open(tmp_path / "run" / "eval" / "epoch_030_preds.jsonl")]
    truth = {json.loads(line)["qid"]: json.loads(line) for line in open(layout.eval_annotations)}
    ranked_first = 0
    for row in rows:
        relevant = set(truth[row["qid"]]["relevant_clip_ids"])
        saliency = torch.tensor(row["pred_saliency_scores"])
        top = saliency.argsort(descending=True)[: len(relevant)].tolist()
        ranked_first += set(top) == relevant
    assert ranked_first / len(rows) > 0.9
    assert model.config.hidden_size == 64


def test_bad_input_stops_before_training(synthetic, tmp_path, capsys):
    base = ["--output_dir", str(tmp_path / "out"), *data_flags(synthetic), *tiny_flags()]
    assert train_main([*base, "--preset", "no_such_preset"]) == 2
    assert "unknown preset 'no_such_preset'" in capsys.readouterr().err
    assert train_main([*base, "--set", "hiden_size=8"]) == 2
    assert "unknown config field(s) ['hiden_size']" in capsys.readouterr().err
    missing = [*base, "--text_feature_dir", str(tmp_path / "nowhere")]
    assert train_main(missing) == 2
    assert f"--text_feature_dir: {tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err
    empty_features = tmp_path / "empty_clip"
    empty_features.mkdir()
    no_features = [*base, "--video_feature_dirs", str(empty_features), str(synthetic.video_feature_dirs[1])]
    assert train_main(no_features) == 2
    assert str(empty_features) in capsys.readouterr().err
    assert train_main([*base, "--random_crop_clips", "16"]) == 2
    assert "--random_crop_clips 16: expected" in capsys.readouterr().err
    assert train_main([*base, "--ema_decay", "1.5"]) == 2
    assert "--ema_decay 1.5: expected a value in [0, 1)" in capsys.readouterr().err
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert train_main([*base, "--output_dir", str(blocker / "sub")]) == 2
    assert "--output_dir: cannot write" in capsys.readouterr().err
    assert not (tmp_path / "out" / "checkpoints").exists()


@pytest.mark.parametrize("dataset", ["qvhighlights", "charades_sta", "activitynet_captions", "custom"])
def test_the_metric_names_known_before_training_are_those_of_a_real_evaluation(dataset, shared_data):
    """`metric_names` (one made-up query) against the metrics of the official QVHighlights val
    predictions of QD-DETR, scored by the dataset's own evaluator (1550 queries)."""
    from transformers_rdmf.training.evaluation import compute_metrics, metric_names

    folder = shared_data / "conformance" / "qvhighlights"
    predictions = [json.loads(line) for line in (folder / "qddetr_sf+clip_val_preds.jsonl").open()]
    annotations = shared_data / "qvhighlights" / "highlight_val_release.jsonl"
    if dataset == "qvhighlights":  # the official script's own output (ours adds R1@0.3 and mIoU)
        written = json.loads((folder / "qddetr_sf+clip_val_preds_metrics.json").read_text())["brief"]
        assert set(written) < set(metric_names(dataset))
    assert metric_names(dataset) == sorted(compute_metrics(dataset, predictions, None, str(annotations)))


def test_the_highlight_metric_names_are_the_headline_and_one_per_domain():
    from transformers_rdmf.training.evaluation import highlight_metrics_and_per_video_scores, metric_names

    references = [
        {"qid": str(i), "domain": domain, "label": [[c, 6 - c] for c in range(6)]}
        for i, domain in enumerate(["BK", "VT", "BK"])
    ]
    predictions = [{"qid": str(i), "pred_saliency_scores": [0.1, 0.6, 0.2, 0.9, 0.4, 0.3]} for i in range(3)]
    for dataset in ("tvsum", "youtube_highlights"):
        if dataset == "youtube_highlights":  # one binary label per clip
            references = [{**r, "domain": "dog", "label": [0, 1, 0, 1, 1, 0]} for r in references]
        metrics, _ = highlight_metrics_and_per_video_scores(dataset, predictions, references)
        assert metric_names(dataset, [r["domain"] for r in references]) == sorted(metrics)
    assert sorted(metrics) == ["mAP", "mAP/dog"]


def test_disable_progress_bar_quiets_the_bars_of_transformers_too(synthetic, tmp_path, capsys):
    from transformers.utils import logging as transformers_logging

    from transformers_rdmf.training import evaluate_main

    base = [*data_flags(synthetic), *tiny_flags(), "--max_steps", "2"]
    assert train_main(["--output_dir", str(tmp_path / "start"), *base]) == 0
    quiet = capsys.readouterr().err
    start = str(tmp_path / "start" / "final")
    fine_tune = ["--output_dir", str(tmp_path / "tuned"), *base, "--model_name_or_path", start]
    assert train_main(fine_tune) == 0
    assert evaluate_main(["--output_dir", str(tmp_path / "eval"), *base, "--checkpoint", start]) == 0
    quiet += capsys.readouterr().err
    assert "Writing model shards" not in quiet and "Loading weights" not in quiet, quiet
    assert transformers_logging.is_progress_bar_enabled()  # restored for the caller
    shown = [arg for arg in fine_tune if arg != "--disable_progress_bar"]
    shown[1] = str(tmp_path / "shown")
    assert train_main(shown) == 0
    loud = capsys.readouterr().err
    assert "Loading weights" in loud and "Writing model shards" in loud  # what the flag turns off


def test_fine_tuning_starts_from_the_checkpoint(synthetic, tmp_path, capsys):
    """``--model_name_or_path``: the run starts from the checkpoint's weights, with ``--set`` on its config.

    With learning rate 0 nothing moves, so the new ``best/`` must be the checkpoint bit for bit and score
    what it scored; a fresh model (seed 42, the first run's starting point) would not.
    """
    first = tmp_path / "first"
    train(arguments(synthetic, first, num_epochs=1))
    checkpoint = first / "best"
    frozen = tmp_path / "frozen"
    train(
        arguments(
            synthetic,
            frozen,
            num_epochs=1,
            learning_rate=0.0,
            model_name_or_path=str(checkpoint),
            config_overrides={**TINY, "dropout": 0.3},
        )
    )
    start, after = (
        load_file(checkpoint / "model.safetensors"),
        load_file(frozen / "best" / "model.safetensors"),
    )
    assert after.keys() == start.keys()
    for name in start:
        torch.testing.assert_close(after[name], start[name], atol=0, rtol=0, msg=name)
    saved = json.loads((frozen / "best" / "config.json").read_text())
    assert saved["dropout"] == 0.3
    assert saved["trained_heads"] == ["saliency", "moments", "iou"]  # QVHighlights-layout data has spans
    # two model instances evaluated in two runs: equal to float rounding, so metrics (rounded to 0.01) agree
    # to 0.01 (a score on a rounding boundary may move by one step)
    after_metrics = json.loads((frozen / "best" / "metrics.json").read_text())
    before_metrics = json.loads((checkpoint / "metrics.json").read_text())
    assert after_metrics.keys() == before_metrics.keys()
    assert flat_numbers(after_metrics) == pytest.approx(flat_numbers(before_metrics), abs=0.01)

    base = ["--output_dir", str(tmp_path / "bad"), *data_flags(synthetic), *tiny_flags()]
    assert train_main([*base, "--model_name_or_path", str(tmp_path / "nowhere")]) == 2
    assert (
        f"--model_name_or_path: cannot load an RDMF checkpoint from {tmp_path / 'nowhere'}"
        in capsys.readouterr().err
    )
    assert train_main([*base, "--model_name_or_path", str(checkpoint), "--set", "video_feature_dim=24"]) == 2
    error = capsys.readouterr().err
    assert (
        f"{checkpoint} has video_feature_dim=32, but preset 'clip_vit_b32' (with --set) reads features of width 24"
        in error
    )
    assert train_main([*base, "--model_name_or_path", str(checkpoint), "--set", "num_moment_queries=5"]) == 2
    error = capsys.readouterr().err
    assert f"the weights of {checkpoint} do not fit its config after --set ['num_moment_queries']" in error
    assert not (tmp_path / "bad" / "checkpoints").exists()


def flat_numbers(tree, prefix: str = "") -> dict[str, float]:
    """Every number of a nested dict, keyed by its path."""
    if isinstance(tree, dict):
        return {
            k: v for key, value in tree.items() for k, v in flat_numbers(value, f"{prefix}{key}/").items()
        }
    return {prefix.rstrip("/"): tree} if isinstance(tree, int | float) else {}


def test_trained_heads_follow_loss_weights_and_the_labels_the_dataset_has():
    config = RDMFConfig(**TINY)
    assert heads_trained_by("qvhighlights", config) == ["saliency", "moments", "iou"]
    assert heads_trained_by("custom", config) == ["saliency", "moments", "iou"]
    for highlight_only in ("tvsum", "youtube_highlights"):  # no spans: the moment head learns nothing
        assert heads_trained_by(highlight_only, config) == ["saliency"]
    assert heads_trained_by("qvhighlights", RDMFConfig(**TINY, moment_loss_weight=0.0)) == ["saliency", "iou"]
    assert heads_trained_by("qvhighlights", RDMFConfig(**TINY, use_iou_head=False)) == ["saliency", "moments"]
    no_saliency = RDMFConfig(**TINY, saliency_loss_weight=0.0)
    assert heads_trained_by("qvhighlights", no_saliency) == ["moments", "iou"]
    ranked = RDMFConfig(**TINY, saliency_loss_weight=0.0, saliency_rank_loss_weight=1.0)
    assert heads_trained_by("tvsum", ranked) == ["saliency"]
    # fine-tuning keeps what the starting checkpoint records; an unrecorded start adds nothing
    assert heads_trained_by("tvsum", config, start=["saliency", "moments"]) == ["saliency", "moments"]
    assert heads_trained_by("tvsum", config, start=None) == ["saliency"]


def test_random_temporal_crop_keeps_clips_and_labels_aligned():
    lengths = [10, 4, 7]
    features = torch.zeros(3, 10, 2)
    mask = torch.zeros(3, 10, dtype=torch.long)
    labels = []
    for row, length in enumerate(lengths):
        clip_ids = torch.arange(length, dtype=torch.float32)
        features[row, :length, 0] = clip_ids  # feature 0 = the clip's index, to follow it
        features[row, :length, 1] = row
        mask[row, :length] = 1
        saliency = torch.zeros(10)
        saliency[:length] = clip_ids / 10
        labels.append({"spans": torch.zeros(0, 2), "saliency": saliency})
    batch = {
        "video_features": features,
        "video_mask": mask,
        "labels": labels,
        "text_features": torch.ones(3, 2, 4),
    }
    starts = set()
    for step in range(20):
        cropped = random_temporal_crop(batch, 5, torch.Generator().manual_seed(step))
        assert cropped["video_features"].shape == (3, 5, 2)
        assert cropped["video_mask"].sum(1).tolist() == [5, 4, 5]
        assert cropped["text_features"] is batch["text_features"]
        for row in range(3):
            valid = cropped["video_mask"][row].bool()
            clip_ids = cropped["video_features"][row, valid, 0]
            assert torch.equal(clip_ids, torch.arange(clip_ids[0], clip_ids[0] + valid.sum()))  # contiguous
            assert torch.equal(cropped["video_features"][row, valid, 1], torch.full_like(clip_ids, row))
            assert torch.equal(cropped["labels"][row]["saliency"][valid], clip_ids / 10)
            assert not cropped["labels"][row]["saliency"][~valid].any()
        starts.add(int(cropped["video_features"][0, 0, 0]))
    assert starts == set(range(6))  # every start of the 10-clip video, 0..5
    again = random_temporal_crop(batch, 5, torch.Generator().manual_seed(3))
    assert torch.equal(
        again["video_features"],
        random_temporal_crop(batch, 5, torch.Generator().manual_seed(3))["video_features"],
    )


def test_the_dynamics_learn_at_their_own_rate_when_asked():
    """``--dynamics_learning_rate`` puts ``D`` (eqs. 1-3) and ``D_u, D_v, F, k`` (eqs. 5-8) in an AdamW group
    of their own: every parameter is in exactly one group, and Adam's first step (which moves a parameter
    by its rate times ``g / (|g| + eps)``) moves each raw coefficient by that rate, the rest by the shared one."""
    from transformers_rdmf.training.loop import dynamics_parameters, optimizer_parameter_groups

    torch.manual_seed(0)
    model = RDMFForMomentRetrieval(RDMFConfig(**TINY))
    dynamics = dynamics_parameters(model)
    core = model.rdmf
    expected = [core.temporal_diffusion.raw_coefficient, *core.fusion.reaction_parameters()]
    assert [id(p) for p in dynamics] == [id(p) for p in expected]
    (only,) = optimizer_parameter_groups(model, None)  # not asked: one group, as before the option
    assert [id(p) for p in only["params"]] == [id(p) for p in model.parameters()] and "lr" not in only
    cross = RDMFForMomentRetrieval(
        RDMFConfig(**TINY, fusion_type="cross_attention", use_temporal_diffusion=False)
    )
    assert dynamics_parameters(cross) == []
    video, text = torch.randn(2, 12, 32), torch.randn(2, 5, 16)
    for rate in (0.1, 0.0):
        model.zero_grad()
        groups = optimizer_parameter_groups(model, rate)
        assert sorted(id(p) for g in groups for p in g["params"]) == sorted(id(p) for p in model.parameters())
        before = [p.detach().clone() for p in model.parameters()]
        model(video_features=video, text_features=text).saliency_logits.square().mean().backward()
        torch.optim.AdamW(groups, lr=1e-3, weight_decay=0.0).step()
        moved = {id(p): (p.detach() - b).abs() for p, b in zip(model.parameters(), before)}
        for parameter in dynamics:
            assert parameter.grad is not None and parameter.grad != 0
            assert moved[id(parameter)].item() == pytest.approx(
                adam_first_step(parameter, rate), rel=1e-4, abs=0.0
            )
        head = core.saliency_head.bias
        assert moved[id(head)].item() == pytest.approx(adam_first_step(head, 1e-3), rel=1e-4)


def adam_first_step(parameter: torch.nn.Parameter, rate: float, eps: float = 1e-8) -> float:
    """|Adam's first update| of a scalar: ``rate * |g| / (|g| + eps)`` (bias-corrected moments ``g``, ``g^2``)."""
    gradient = abs(parameter.grad.double().item())
    return rate * gradient / (gradient + eps)
