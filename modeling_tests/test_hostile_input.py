"""Hostile and broken input through the console entry points: each refusal is one line naming the file or
flag, exit 2 (1 for a batch that went on past failures), no traceback, and every file that existed before is
byte-identical afterwards. Made-up output (NaN weights, NaN features, a truncated video) is refused or
reported; training checkpoints survive a kill mid-save."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from transformers_rdmf import RDMFConfig, RDMFForMomentRetrieval
from transformers_rdmf.atomic import atomic_write_json, atomic_write_text, current_umask
from transformers_rdmf.cli import main as rdmf_main
from transformers_rdmf.data.synthetic import write_synthetic_moment_dataset
from transformers_rdmf.metrics.qvhighlights import main as qvhighlights_main
from transformers_rdmf.training import evaluate_main, train_main
from transformers_rdmf.video_processing_rdmf import read_frame_timestamps

REPO = Path(__file__).resolve().parents[1]
TINY = dict(
    hidden_size=32, video_feature_dim=24, text_feature_dim=12, num_attention_heads=4,
    num_moment_queries=10, decoder_ffn_dim=64,
)  # fmt: skip


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file below ``roots`` -> the SHA-256 of its bytes."""
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for root in roots
        for path in sorted(Path(root).rglob("*"))
        if path.is_file()
    }


def refused(entry, argv, capsys, *roots, expect: str, status: int = 2) -> str:
    """Run a command that must refuse: its status, one ``error:`` line holding ``expect``, no traceback,
    and no file below ``roots`` changed, added or removed."""
    before = snapshot(*roots)
    try:
        got = entry(argv)
    except SystemExit as stop:  # the metrics CLI exits through sys.exit
        got = stop.code
    err = capsys.readouterr().err
    assert got == status, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and expect in errors[0], err
    assert snapshot(*roots) == before
    return errors[0]


@pytest.fixture
def workspace(tmp_path):
    """A tiny feature checkpoint, one video's clip features, one query's token features."""
    torch.manual_seed(0)
    model = tmp_path / "model"
    RDMFForMomentRetrieval(RDMFConfig(**TINY)).save_pretrained(model)
    features = tmp_path / "features"
    features.mkdir()
    rng = np.random.default_rng(0)
    np.savez(features / "vid.npz", features=rng.standard_normal((10, 24)).astype(np.float32))
    np.savez(features / "qid1.npz", last_hidden_state=rng.standard_normal((5, 12)).astype(np.float32))
    return tmp_path


def predict_argv(root: Path, *extra: str, model: Path | None = None) -> list[str]:
    argv = [
        "predict",
        "--model",
        str(model or root / "model"),
        "--features",
        str(root / "features" / "vid.npz"),
    ]
    argv += ["--text-features", str(root / "features" / "qid1.npz"), "--query", "a person opens a door"]
    return [*argv, "--output", str(root / "out" / "p.png"), *extra]


def damaged_copy(root: Path, damage) -> Path:
    folder = root / "damaged"
    shutil.copytree(root / "model", folder)
    damage(folder)
    return folder


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def drop_config_field(name: str):
    def damage(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        del config[name]
        (folder / "config.json").write_text(json.dumps(config))

    return damage


def nan_weight(folder: Path) -> None:
    weights = load_file(folder / "model.safetensors")
    weights["rdmf.saliency_head.weight"][0, 0] = float("nan")
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})


def pickle_only(folder: Path) -> None:
    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")


def corrupt_header(folder: Path) -> None:
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[:8] = b"\xff" * 8
    (folder / "model.safetensors").write_bytes(bytes(data))


DAMAGED_CHECKPOINTS = {
    "truncated weights": (lambda f: truncate(f / "model.safetensors"), "model.safetensors: not a readable safetensors file"),
    "empty weights": (lambda f: truncate(f / "model.safetensors", 0), "model.safetensors: not a readable safetensors file"),
    "corrupt weights": (corrupt_header, "model.safetensors: not a readable safetensors file"),
    "truncated config": (lambda f: truncate(f / "config.json"), "config.json: not valid JSON"),
    "config missing a field": (drop_config_field("hidden_size"), "config.json lacks ['hidden_size']"),
    "pickle-only weights": (pickle_only, "holds only pytorch_model.bin, a pickle file; this library loads safetensors only"),
    "NaN weights": (nan_weight, "1 tensor(s) hold NaN or infinity (rdmf.saliency_head.weight)"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(DAMAGED_CHECKPOINTS))
def test_a_damaged_checkpoint_is_one_line_naming_the_file(case, workspace, capsys):
    damage, expect = DAMAGED_CHECKPOINTS[case]
    folder = damaged_copy(workspace, damage)
    line = refused(rdmf_main, predict_argv(workspace, model=folder), capsys, workspace, expect=expect)
    assert str(folder) in line
    assert "weights_only=False" not in line  # torch's hint to unpickle unsafely never reaches the user
    assert not (workspace / "out").exists()


def test_publish_and_evaluate_refuse_a_damaged_checkpoint_the_same_way(workspace, shared_data, capsys):
    sys.path.insert(0, str(REPO / "scripts"))
    from publish import main as publish_main

    from .test_hub_publish import tiny_preset

    folder = damaged_copy(workspace, lambda f: truncate(f / "model.safetensors"))
    metrics = shared_data / "conformance" / "qvhighlights" / "qddetr_sf+clip_val_preds_metrics.json"
    preset = tiny_preset(workspace)
    argv = [str(folder), str(metrics), str(workspace / "repo"), "--preset", str(preset)]
    line = refused(publish_main, argv, capsys, workspace, expect="not a readable safetensors file")
    assert line.startswith("publish.py: error: ") and str(folder / "model.safetensors") in line
    assert not (workspace / "repo").exists()
    argv = ["--checkpoint", str(folder), "--output_dir", str(workspace / "eval"), "--dataset", "custom"]
    line = refused(evaluate_main, argv, capsys, workspace, expect="not a readable safetensors file")
    assert line.startswith("rdmf-evaluate: error: ") and str(folder / "model.safetensors") in line
    assert not (workspace / "eval" / "metrics.json").exists()


BAD_NUMBERS = {
    "--clip-length 0": (["--clip-length", "0"], "--clip-length: expected a positive number of seconds, got 0.0"),
    "--duration -5": (["--duration", "-5"], "--duration: expected a positive number of seconds, got -5.0"),
    "--nms -1": (["--nms", "-1"], "--nms: expected an IoU threshold in [0, 1]"),
    "--top-k 100000": (["--top-k", "100000"], "--top-k 100000: the model proposes 10 moments per pass"),
    "--top-k 0": (["--top-k", "0"], "--top-k: expected a positive integer, got 0"),
    "--clip-length nan": (["--clip-length", "nan"], "--clip-length: expected a positive number of seconds, got nan"),
    "--window-clips 0": (["--window-clips", "0"], "--window-clips: expected a positive integer, got 0"),
    "--duration 5": (["--duration", "5"], "--duration 5: the 10 feature rows of 2 s span more than 18 s"),
    "--gt 0 inf": (["--gt", "0", "inf"], "--gt: expected START END with 0 <= START < END seconds"),
    "--gt 10 500": (["--gt", "10", "500"], "--gt: the window [10.0, 500.0] ends past the video's 20 s"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_NUMBERS))
def test_every_numeric_argument_is_range_checked(case, workspace, capsys):
    extra, expect = BAD_NUMBERS[case]
    line = refused(rdmf_main, predict_argv(workspace, *extra), capsys, workspace, expect=expect)
    assert line.startswith("rdmf predict: error: ") and extra[0] in line  # names the flag
    assert not (workspace / "out").exists()


def test_outputs_are_checked_before_anything_is_written(workspace, capsys):
    (workspace / "out").mkdir()
    png = str(workspace / "out" / "p.png")
    features = str(workspace / "features" / "vid.npz")
    cases = [
        (["--output", str(workspace / "out")], "--output: "),  # a folder
        (["--json", str(workspace / "out")], "--json: "),  # a folder: the PNG must not be written first
        (["--output", features], f"--output {features} would overwrite --features {features}"),
        (["--json", png], "--output and --json are both"),
        (["--json", str(workspace / "model" / "config.json")], "would overwrite --model"),
    ]
    for extra, expect in cases:
        argv = predict_argv(workspace)
        argv[argv.index("--output") : argv.index("--output") + 2] = []
        argv += ["--output", png] if extra[0] == "--json" else []
        refused(rdmf_main, [*argv, *extra], capsys, workspace, expect=expect)
        assert not Path(png).exists()


def test_predict_replaces_an_existing_output_only_when_asked(workspace, capsys):
    (workspace / "out").mkdir()
    png, answer = workspace / "out" / "p.png", workspace / "out" / "p.json"
    png.write_bytes(b"mine")
    argv = predict_argv(workspace, "--json", str(answer))
    refused(rdmf_main, argv, capsys, workspace, expect=f"--output: {png} exists; pass --overwrite")
    assert png.read_bytes() == b"mine" and not answer.exists()
    png.unlink()
    answer.write_text("mine")
    refused(rdmf_main, argv, capsys, workspace, expect=f"--json: {answer} exists; pass --overwrite")
    assert answer.read_text() == "mine" and not png.exists()
    assert rdmf_main([*argv, "--overwrite"]) == 0
    assert png.read_bytes().startswith(b"\x89PNG") and "moments" in json.loads(answer.read_text())


def test_the_metrics_cli_replaces_its_save_path_only_when_asked(shared_data, tmp_path, capsys):
    conformance = shared_data / "conformance" / "qvhighlights"
    saved = tmp_path / "metrics.json"
    saved.write_text("{}")
    argv = ["--submission_path", str(conformance / "qddetr_sf+clip_val_preds.jsonl"), "--not_verbose"]
    argv += ["--gt_path", str(shared_data / "qvhighlights" / "highlight_val_release.jsonl")]
    argv += ["--save_path", str(saved)]
    refused(
        qvhighlights_main, argv, capsys, tmp_path, expect=f"--save_path: {saved} exists; pass --overwrite"
    )
    assert saved.read_text() == "{}"
    qvhighlights_main([*argv, "--overwrite"])
    official = json.loads((conformance / "qddetr_sf+clip_val_preds_metrics.json").read_text())
    brief = json.loads(saved.read_text())["brief"]
    assert {key: brief.get(key) for key in official["brief"]} == official["brief"]  # the same dict


def test_the_metrics_cli_never_replaces_its_ground_truth(shared_data, tmp_path, capsys):
    gt = tmp_path / "gt.jsonl"
    shutil.copy(shared_data / "qvhighlights" / "highlight_val_release.jsonl", gt)
    argv = [
        "--submission_path",
        str(gt),
        "--gt_path",
        str(gt),
        "--save_path",
        str(tmp_path / "." / "gt.jsonl"),
    ]
    before = gt.read_bytes()
    line = refused(qvhighlights_main, argv, capsys, tmp_path, expect="--save_path")
    assert f"would overwrite --submission_path {gt}" in line
    assert gt.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["gt.jsonl"]


def test_publish_never_deletes_the_checkpoints_own_metrics(workspace, capsys):
    sys.path.insert(0, str(REPO / "scripts"))
    from publish import main as publish_main

    checkpoint = workspace / "model"
    (checkpoint / "metrics.json").write_text(json.dumps({"top5_mAP": 70.0, "per_domain": {"BK": 70.0}}))
    argv = [str(checkpoint), str(checkpoint / "metrics.json"), str(checkpoint), "--overwrite"]
    line = refused(publish_main, argv, capsys, workspace, expect="would overwrite checkpoint_dir")
    assert f"output_dir {checkpoint} would overwrite checkpoint_dir {checkpoint}" in line
    line = refused(
        publish_main, [*argv[:2], str(workspace), "--overwrite"], capsys, workspace, expect="would overwrite"
    )
    assert (
        f"output_dir {workspace} would overwrite checkpoint_dir {checkpoint}" in line
    )  # a folder holding it
    assert json.loads((checkpoint / "metrics.json").read_text()) == {
        "top5_mAP": 70.0,
        "per_domain": {"BK": 70.0},
    }


def test_publish_checks_the_space_folder_before_writing_the_repository(workspace, capsys):
    sys.path.insert(0, str(REPO / "scripts"))
    from publish import main as publish_main

    checkpoint, repo = workspace / "model", workspace / "repo"
    (checkpoint / "metrics.json").write_text(json.dumps({"top5_mAP": 70.0}))
    argv = [str(checkpoint), str(checkpoint / "metrics.json"), str(repo)]
    line = refused(publish_main, [*argv, "--space", str(repo)], capsys, workspace, expect="--space")
    assert f"would overwrite OUTPUT_DIR {repo}" in line and not repo.exists()
    refused(publish_main, [*argv, "--space", str(repo / "space")], capsys, workspace, expect="OUTPUT_DIR")
    afile = workspace / "afile"
    afile.write_text("mine")
    line = refused(publish_main, [*argv, "--space", str(afile)], capsys, workspace, expect="--space")
    assert f"{afile} is a file" in line and afile.read_text() == "mine" and not repo.exists()
    assert not [path for path in workspace.iterdir() if path.name.startswith(".")]


def test_a_config_field_of_the_wrong_type_is_one_line(workspace, capsys):
    argv = ["--output_dir", str(workspace / "run"), "--preset", "tvsum_i3d", "--set", "dropout=abc"]
    argv += [
        "--data_root",
        str(workspace / "features"),
        "--train_annotations",
        str(workspace / "features" / "vid.npz"),
    ]
    line = refused(train_main, argv, capsys, workspace, expect="'dropout'")
    assert "'abc'" in line


def test_misspelt_config_keys_and_constant_feature_rows_are_reported(workspace, capsys):
    config = json.loads((workspace / "model" / "config.json").read_text())
    (workspace / "model" / "config.json").write_text(json.dumps({**config, "hiden_size": 64}))
    rows = np.random.default_rng(1).standard_normal((10, 24)).astype(np.float32)
    rows[[2, 5, 7]] = 0.0
    np.savez(workspace / "features" / "vid.npz", features=rows)
    assert rdmf_main(predict_argv(workspace, "--json", str(workspace / "out" / "p.json"))) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "rdmf predict: warning: " in err and "unknown config key(s) ['hiden_size']" in err
    assert "vid.npz: 3 of 10 rows are constant (all zero?)" in err
    result = json.loads((workspace / "out" / "p.json").read_text(), parse_constant=_no_nan)
    assert len(result["saliency"]) == 10


def _no_nan(token: str):
    raise AssertionError(f"non-strict JSON token {token}")


def test_nan_feature_rows_are_refused(workspace, capsys):
    rows = np.ones((10, 24), dtype=np.float32)
    rows[4, 3] = np.nan
    np.savez(workspace / "features" / "vid.npz", features=rows)
    line = refused(
        rdmf_main, predict_argv(workspace), capsys, workspace, expect="1 of 10 rows hold NaN or infinity"
    )
    assert line.startswith(f"rdmf predict: error: --features: {workspace / 'features' / 'vid.npz'}: ")
    assert not (workspace / "out").exists()


UNREADABLE_FILES = {
    "empty .npz": ("damaged.npz", b""),
    "garbage .npz": ("damaged.npz", b"not a zip archive at all"),
    "empty .npy": ("damaged.npy", b""),
    "truncated .npy": (
        "vid.npy",
        b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (10, 24), }",
    ),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE_FILES))
def test_an_unreadable_feature_file_is_one_line_naming_it(case, workspace, capsys):
    name, content = UNREADABLE_FILES[case]
    features = workspace / "features" / name
    features.write_bytes(content)
    argv = predict_argv(workspace)
    argv[argv.index("--features") + 1] = str(features)
    line = refused(rdmf_main, argv, capsys, workspace, expect=f"--features: {features}: not a readable")
    assert not (workspace / "out").exists()
    text = workspace / "features" / "qid1.npz"
    text.write_bytes(content[:10])
    argv = predict_argv(workspace)
    line = refused(rdmf_main, argv, capsys, workspace, expect=f"--text-features: {text}: not a readable .npz")
    assert line.count(str(text)) == 1


@pytest.mark.parametrize(
    ("array", "expect"),
    [
        (np.ones((10, 24), np.complex64), "an array of dtype complex64; expected real numbers"),
        (np.ones((10, 24), bool), "an array of dtype bool; expected real numbers"),
        (np.zeros((0, 24), np.float32), "must hold a (rows, dim) array, got shape (0, 24)"),
    ],
    ids=["complex", "boolean", "no-rows"],
)
def test_features_that_are_not_real_rows_are_refused(array, expect, workspace, capsys):
    np.savez(workspace / "features" / "vid.npz", features=array)
    refused(rdmf_main, predict_argv(workspace), capsys, workspace, expect=expect)
    assert not (workspace / "out").exists()


def test_a_feature_set_refuses_a_video_of_no_rows(tmp_path, capsys):
    stream = tmp_path / "clip"
    stream.mkdir()
    np.savez(stream / "v1.npz", features=np.ones((3, 8), np.float32))
    np.savez(stream / "v2.npz", features=np.zeros((0, 8), np.float32))
    argv = [
        "convert-features",
        "--layout",
        "moment_detr",
        "--video-dirs",
        str(stream),
        "--out",
        str(tmp_path / "s"),
    ]
    line = refused(rdmf_main, argv, capsys, tmp_path, expect="no rows; expected one feature row per clip")
    assert str(stream / "v2.npz") in line and not (tmp_path / "s").exists()


def test_json_is_written_strict_or_not_at_all(tmp_path):
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        atomic_write_json(tmp_path / "m.json", {"mAP": float("nan")})
    assert list(tmp_path.iterdir()) == []  # no file, no temporary


def test_written_files_follow_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(previous)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    atomic_write_text(tmp_path / "b.txt", "x")
    assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o666 & ~previous


def test_forward_rejects_unknown_keywords_and_accepts_the_processors():
    model = RDMFForMomentRetrieval(RDMFConfig(**TINY)).eval()
    video, text = torch.randn(1, 6, 24), torch.randn(1, 4, 12)
    with pytest.raises(TypeError, match="unexpected keyword argument 'vide_mask'"):
        model(video, text, vide_mask=torch.ones(1, 6))
    with torch.no_grad():
        plain = model(video, text)
        with_extras = model(video, text, durations=torch.tensor([12.0]), clip_sampling=[None])
    torch.testing.assert_close(with_extras.pred_spans, plain.pred_spans, atol=0, rtol=0)  # same tensors


def test_return_dict_false_gives_the_tuple_of_the_output():
    model = RDMFForMomentRetrieval(RDMFConfig(**TINY, return_dict=False)).eval()
    video, text = torch.randn(1, 6, 24), torch.randn(1, 4, 12)
    with torch.no_grad():
        as_tuple = model(video, text)
        as_output = model(video, text, return_dict=True)
    assert isinstance(as_tuple, tuple)
    torch.testing.assert_close(as_tuple[0], as_output.to_tuple()[0], atol=0, rtol=0)


def faststart_copy(source: Path, target: Path) -> None:
    """Remux ``source`` with its index (moov) at the front, as streaming encoders write it."""
    with (
        av.open(str(source)) as reader,
        av.open(str(target), "w", options={"movflags": "faststart"}) as writer,
    ):
        stream = writer.add_stream_from_template(reader.streams.video[0])
        for packet in reader.demux(reader.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                writer.mux(packet)


def test_a_truncated_video_is_reported_with_both_durations(shared_data, tmp_path):
    whole = tmp_path / "whole.mp4"
    faststart_copy(shared_data / "examples" / "charades.mp4", whole)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert read_frame_timestamps(whole).duration == pytest.approx(30.697, abs=1e-3)
    with pytest.warns(
        UserWarning, match=r"cut.mp4: its frames end at 13\.48 s but the container says 30\.70 s"
    ):
        stamps = read_frame_timestamps(cut)
    assert stamps.declared_duration == pytest.approx(30.697, abs=1e-3)


def test_extract_features_goes_on_past_a_bad_video_and_lists_it(shared_data, tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(shared_data / "examples" / "charades.mp4", videos / "a_good.mp4")
    (videos / "b_broken.mp4").write_bytes(b"not a video at all")
    faststart_copy(shared_data / "examples" / "charades.mp4", tmp_path / "whole.mp4")
    (videos / "c_cut.mp4").write_bytes((tmp_path / "whole.mp4").read_bytes()[:400_000])
    argv = ["extract-features", "--videos", str(videos), "--out", str(tmp_path / "features")]
    argv += ["--backbones", "timm:test_resnet", "--random-weights", "--batch-size", "8"]
    before = snapshot(videos)
    assert rdmf_main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    failures = [line for line in err.splitlines() if ": failed: " in line]
    assert len(failures) == 1 and failures[0].startswith("rdmf extract-features: failed: b_broken: ")
    assert "b_broken.mp4" in failures[0]
    assert "c_cut.mp4: its frames end at" in err
    written = sorted(path.name for path in (tmp_path / "features" / "timm_test_resnet").glob("*.npz"))
    assert written == ["a_good.npz", "c_cut.npz"]
    mode = (tmp_path / "features" / "timm_test_resnet" / "a_good.npz").stat().st_mode & 0o777
    assert mode == 0o666 & ~current_umask()  # the user's umask, not mkstemp's private 0600
    assert snapshot(videos) == before
    argv_inside = ["extract-features", "--videos", str(videos), "--out", str(videos)]
    argv_inside += ["--backbones", "timm:test_resnet", "--random-weights"]
    refused(rdmf_main, argv_inside, capsys, videos, expect="would overwrite --videos")


# ------------------------------------------------------------------ training


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return write_synthetic_moment_dataset(tmp_path_factory.mktemp("synthetic"), num_train=16, num_eval=6)


def train_argv(layout, output: Path, *extra: str) -> list[str]:
    argv = ["--output_dir", str(output), "--preset", "clip_vit_b32", "--dataset", "qvhighlights"]
    argv += [
        "--train_annotations",
        str(layout.train_annotations),
        "--eval_annotations",
        str(layout.eval_annotations),
    ]
    argv += [
        "--video_feature_dirs",
        *map(str, layout.video_feature_dirs),
        "--text_feature_dir",
        str(layout.text_feature_dir),
    ]
    argv += [
        f"--set={key}={value}"
        for key, value in {**TINY, "video_feature_dim": 32, "text_feature_dim": 16}.items()
    ]
    return [*argv, "--batch_size", "4", "--num_epochs", "2", "--disable_progress_bar", "--save_state_every_steps", "2", *extra]  # fmt: skip


def test_a_finished_run_is_never_overwritten_unless_asked(synthetic, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_main(train_argv(synthetic, run, "--max_steps", "4")) == 0
    assert (run / "checkpoints" / "step_4" / "complete.json").is_file()
    capsys.readouterr()
    refused(train_main, train_argv(synthetic, run, "--max_steps", "2"), capsys, run, expect="holds a run")
    inside = train_argv(synthetic, synthetic.text_feature_dir / "run")
    refused(
        train_main, inside, capsys, synthetic.text_feature_dir, expect="would overwrite --text_feature_dir"
    )
    assert train_main(train_argv(synthetic, run, "--max_steps", "2", "--overwrite_output_dir")) == 0
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "last",
        "step_2",
    ]  # no step_4 of the old run
    steps = {step for step, name, _ in _csv_rows(run) if name == "train/loss"}
    assert steps == {1, 2}


def test_an_early_stopping_metric_never_reported_is_refused_before_the_old_run_goes(
    synthetic, tmp_path, capsys
):
    run = tmp_path / "run"
    assert train_main(train_argv(synthetic, run, "--max_steps", "2")) == 0
    capsys.readouterr()
    misspelt = train_argv(synthetic, run, "--early_stopping_metric", "MR-full-mAp", "--overwrite_output_dir")
    line = refused(
        train_main, misspelt, capsys, run, expect="--early_stopping_metric 'MR-full-mAp': expected"
    )
    assert "MR-full-mAP" in line and "HL-min-VeryGood-mAP" in line  # what QVHighlights reports
    fresh = tmp_path / "fresh"
    other_dataset = train_argv(synthetic, fresh, "--early_stopping_metric", "R1@0.5")  # Charades' name
    refused(train_main, other_dataset, capsys, tmp_path, expect="--early_stopping_metric 'R1@0.5'")
    assert not (fresh / "logs").exists()  # nothing was started: the rerun needs no --overwrite_output_dir
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"qid": 1}\n')
    bad_data = [*train_argv(synthetic, run, "--overwrite_output_dir"), "--eval_annotations", str(broken)]
    refused(train_main, bad_data, capsys, run, expect="broken.jsonl")  # the old run is kept whole


def test_an_early_stopping_metric_is_checked_against_the_domains_the_run_evaluates(
    shared_data, tmp_path, capsys
):
    root = shared_data / "tvsum"
    argv = ["--output_dir", str(tmp_path / "run"), "--preset", "tvsum_i3d", "--dataset", "tvsum"]
    argv += ["--data_root", str(root), "--train_annotations", str(root / "tvsum_train_release.jsonl")]
    argv += ["--eval_annotations", str(root / "tvsum_val_release.jsonl"), "--domain", "BK"]
    line = refused(
        train_main, [*argv, "--early_stopping_metric", "top5_mAP/VT"], capsys, tmp_path, expect="VT"
    )
    assert line.endswith("expected one of the metrics tvsum reports, top5_mAP, top5_mAP/BK")


def test_a_preset_early_stopping_metric_the_dataset_never_reports_names_the_preset(
    synthetic, tmp_path, capsys
):
    # clip_vit_b32's early_stopping_metric is QVHighlights' MR-full-mAP; Charades-STA reports R1@0.5 and such
    argv = [*train_argv(synthetic, tmp_path / "run"), "--dataset", "charades_sta", "--clip_length", "2"]
    line = refused(
        train_main, argv, capsys, tmp_path, expect="'MR-full-mAP' (from --preset clip_vit_b32): expected"
    )
    assert line.endswith("charades_sta reports, R1@0.3, R1@0.5, R1@0.7, R5@0.5, R5@0.7, mIoU")


def _csv_rows(run: Path) -> list[tuple[int, str, float]]:
    from transformers_rdmf.training import read_csv_log

    return read_csv_log(run)


def test_a_kill_inside_a_checkpoint_save_resumes_from_the_newest_complete_one(synthetic, tmp_path, capsys):
    straight = tmp_path / "straight"
    assert train_main(train_argv(synthetic, straight, "--max_steps", "6")) == 0
    killed = tmp_path / "killed"
    command = [
        sys.executable,
        "-c",
        "import sys; from transformers_rdmf.training import train_main; sys.exit(train_main(sys.argv[1:]))",
    ]
    env = {**os.environ, "RDMF_TEST_DIE_IN_SAVE": "step_4", "OMP_NUM_THREADS": str(torch.get_num_threads())}
    done = subprocess.run([*command, *train_argv(synthetic, killed, "--max_steps", "6")], env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 17, done.stderr  # died inside the save of step 4
    checkpoints = killed / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == [".step_4.partial", "step_2"]
    (checkpoints / "step_4").mkdir()  # what a save without the rename used to leave behind
    capsys.readouterr()
    line = refused(
        train_main, train_argv(synthetic, killed, "--max_steps", "6", "--resume_from_checkpoint", str(checkpoints / "step_4")),
        capsys, killed, expect="not a complete checkpoint (missing complete.json)",
    )  # fmt: skip
    assert f"the newest complete checkpoint there is {checkpoints / 'step_2'}" in line
    resume = train_argv(
        synthetic, killed, "--max_steps", "6", "--resume_from_checkpoint", str(checkpoints / "step_2")
    )
    assert train_main(resume) == 0
    a = load_file(straight / "checkpoints" / "last" / "model.safetensors")
    b = load_file(killed / "checkpoints" / "last" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:  # another process and a resumed run: equal to float32 rounding
        torch.testing.assert_close(b[name], a[name], atol=1e-6, rtol=0, msg=name)


def test_the_console_script_prints_one_line_and_no_traceback(workspace):
    folder = damaged_copy(workspace, lambda f: truncate(f / "model.safetensors"))
    rdmf = Path(sys.executable).with_name("rdmf")
    command = [str(rdmf)] if rdmf.exists() else [sys.executable, "-m", "transformers_rdmf.cli"]
    done = subprocess.run([*command, *predict_argv(workspace, model=folder)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(f"rdmf predict: error: {folder / 'model.safetensors'}")
    )
    debug = subprocess.run([*command, *predict_argv(workspace, "--debug", model=folder)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert debug.returncode == 2 and "Traceback" in debug.stderr  # --debug shows it


def test_outputs_that_overflow_are_refused_not_printed(workspace, capsys):
    """Finite weights can still overflow float32: the command stops instead of printing NaN."""
    weights = load_file(workspace / "model" / "model.safetensors")
    weights["rdmf.video_projection.weight"].fill_(3e38)
    save_file(weights, workspace / "model" / "model.safetensors", metadata={"format": "pt"})
    argv = predict_argv(workspace, "--json", str(workspace / "out" / "p.json"))
    refused(rdmf_main, argv, capsys, workspace, expect="the model's outputs hold NaN or infinity")
    assert not (workspace / "out").exists()


TRAINING_NUMBERS = {
    "--batch_size 0": (["--batch_size", "0"], "--batch_size 0: expected a batch size >= 1"),
    "--learning_rate -1": (["--learning_rate", "-1"], "--learning_rate -1.0: expected a learning rate >= 0.0"),
    "--clip_length 0": (["--clip_length", "0"], "--clip_length 0.0: expected seconds per clip > 0.0"),
    "--nms_threshold 2": (["--nms_threshold", "2"], "--nms_threshold 2.0: expected an IoU threshold in [0, 1]"),
    "--seed -3": (["--seed", "-3"], "--seed -3: expected a seed >= 0"),
    "--max_grad_norm nan": (["--max_grad_norm", "nan"], "--max_grad_norm nan: expected a gradient norm > 0.0"),
    "--domain with qvhighlights": (["--domain", "GA"], "--domain 'GA': expected no --domain: qvhighlights has no categories"),
    "--splits_file with qvhighlights": (["--splits_file", __file__], "--splits_file: YouTube Highlights' splits"),
    "--audio with qvhighlights": (["--audio"], "--audio: TVSum's PANN audio stream; --dataset qvhighlights has none"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(TRAINING_NUMBERS))
def test_every_training_number_is_range_checked(case, synthetic, tmp_path, capsys):
    extra, expect = TRAINING_NUMBERS[case]
    refused(train_main, train_argv(synthetic, tmp_path / "run", *extra), capsys, tmp_path, expect=expect)
    assert not (tmp_path / "run" / "logs").exists()


@pytest.mark.parametrize(
    "extra, expect",
    [
        (["--clip-length", "0"], "--clip-length: expected a positive number of seconds, got 0.0"),
        (["--frames-per-clip", "0"], "--frames-per-clip: expected a positive integer, got 0"),
        (["--batch-size", "-2"], "--batch-size: expected a positive integer, got -2"),
        (["--decode-threads", "0"], "--decode-threads: expected a positive integer, got 0"),
        (["--clip-length", "inf"], "--clip-length: expected a positive number of seconds, got inf"),
        (["--device", "bogus"], "--device: 'bogus' is not a torch device"),
    ],
)
def test_extraction_numbers_are_range_checked(extra, expect, shared_data, tmp_path, capsys):
    argv = ["extract-features", "--videos", str(shared_data / "examples" / "charades.mp4")]
    argv += ["--out", str(tmp_path / "f"), "--backbones", "timm:test_resnet", "--random-weights", *extra]
    refused(rdmf_main, argv, capsys, tmp_path, expect=expect)
    assert not (tmp_path / "f").exists()


SCRIPT_CASES = {
    "plot_architecture": (["--out", "{not_a_figure}"], "the suffix names the image format; expected one of"),
    "plot_highlight_curves": (["{missing}", "--output", "{out}"], "No such file or directory"),
    "plot_k_sweep": (["--tvsum", "{missing}", "--out", "{out}"], "No such file or directory"),
    "plot_scale": (["--results", "{listed}", "--out", "{out}"], "expected benchmark_scale.py's JSON"),
    "plot_tvsum_targets": (["--results", "{missing}", "--out", "{out}"], "No such file or directory"),
    "tvsum_baselines": (["--data_root", "{missing}"], "annotation file not found"),
}


@pytest.mark.parametrize("script", sorted(SCRIPT_CASES))
def test_the_result_scripts_answer_bad_input_in_one_line(script, tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    main = __import__(script).main
    (tmp_path / "listed.json").write_text("[1, 2]")
    paths = {
        "missing": tmp_path / "missing.json",
        "listed": tmp_path / "listed.json",
        "out": tmp_path / "p.png",
        "not_a_figure": tmp_path / "p.txt",
    }
    template, expect = SCRIPT_CASES[script]
    argv = [part.format(**paths) for part in template]
    line = refused(main, argv, capsys, tmp_path, expect=expect)
    assert line.startswith(f"{script}.py: error: ")


@pytest.mark.parametrize(
    ("extra", "expect"),
    [
        (["--epochs", "0"], "--epochs: expected a positive integer, got 0"),
        (["--threads", "0"], "--threads: expected a positive integer, got 0"),
        (["--domains", "BK", "XX"], "--domain 'XX': expected one of BK, BT"),
        (["--learning_rate", "nan"], "--learning_rate nan: expected a learning rate >= 0.0"),
        (["--seed", "-2"], "--seed -2: expected a seed >= 0"),
        (["--results", "{tmp}"], "--results: {tmp} is a folder"),
        (["--results", "{tmp}/bad.json"], "--results {tmp}/bad.json: not JSON (Expecting value, line 1)"),
        (["--results", "{data}/r.json"], "--results {data}/r.json would overwrite --data_root {data}"),
        (
            ["--results", "{tmp}/nan.json"],
            "--results {tmp}/nan.json: holds NaN; every score in a results file",
        ),
        (["--results", "{tmp}/list.json"], "--results {tmp}/list.json: expected an object"),
    ],
)
def test_the_joint_fine_tuning_script_refuses_before_its_joint_model_trains(
    extra, expect, tmp_path, capsys, monkeypatch
):
    """The fine-tuning runs' arguments and the results file are checked before the joint model's minutes
    of training, not after them."""
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    script = __import__("tvsum_joint_fine_tune")
    monkeypatch.setattr(script, "train", lambda args: pytest.fail("a run started"))
    data = tmp_path / "tvsum"
    data.mkdir()
    (tmp_path / "bad.json").write_text("")
    (tmp_path / "nan.json").write_text('{"lr0.001/seed0": {"GA": {"best": NaN}}}')
    (tmp_path / "list.json").write_text('{"lr0.001/seed0": [1, 2]}')
    argv = [
        "--data_root",
        str(data),
        "--work_dir",
        str(tmp_path / "work"),
        "--results",
        str(tmp_path / "r.json"),
    ]
    argv += [part.format(tmp=tmp_path, data=data) for part in extra]
    refused(script.main, argv, capsys, tmp_path, expect=expect.format(tmp=tmp_path, data=data))


def test_the_joint_fine_tuning_script_keeps_what_another_run_wrote_meanwhile(tmp_path, monkeypatch):
    """Two rates or seeds may run side by side into one results file: each write merges into what the file
    holds then, so neither loses the other's categories."""
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    script = __import__("tvsum_joint_fine_tune")
    results = tmp_path / "r.json"
    monkeypatch.setattr(script, "joint_model", lambda args: (tmp_path, {"BK": 40.0, "GA": 50.0}))

    def fine_tune(args, start, domain):  # meanwhile, a run at another rate writes its own category
        other = json.loads(results.read_text()) if results.exists() else {}
        other.setdefault("lr0.0001/seed0", {})[domain] = {"best": 1.0, "final": 1.0}
        results.write_text(json.dumps(other))
        return {"curve": [[1, 60.0]], "best": 60.0, "final": 60.0, "seconds": 1.0}

    monkeypatch.setattr(script, "fine_tune", fine_tune)
    (tmp_path / "tvsum").mkdir()
    argv = ["--data_root", str(tmp_path / "tvsum"), "--domains", "BK", "GA", "--results", str(results)]
    assert script.main(argv) == 0
    written = json.loads(results.read_text())
    assert sorted(written) == ["lr0.0001/seed0", "lr0.001/seed0"]
    assert sorted(written["lr0.0001/seed0"]) == sorted(written["lr0.001/seed0"]) == ["BK", "GA"]
    assert written["lr0.001/seed0"]["GA"]["joint"] == 50.0


def test_the_curves_plot_names_the_seeds_a_results_file_has(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    from plot_highlight_curves import main

    run = {"dataset": "tvsum", "variant": "full", "domain": "GA", "curve": [[1, 50.0]], "seconds": 1.0,
           "best": 50.0, "final": 50.0, "eval_every": 1}  # fmt: skip
    results = tmp_path / "r.json"
    results.write_text(json.dumps({f"full/GA/{seed}": {**run, "seed": seed} for seed in (0, 2)}))
    argv = [str(results), "--seed", "1", "--output", str(tmp_path / "c.png")]
    refused(main, argv, capsys, tmp_path, expect=f"--seed 1: {results} has runs of seeds [0, 2] only")
    folds = {f"full/GA/1/fold{k}": {**run, "seed": 1, "fold": k, "folds": 2} for k in (0, 1)}
    results.write_text(json.dumps({"full/GA/0": {**run, "seed": 0}, **folds}))  # seed 1: inner folds only
    refused(main, argv, capsys, tmp_path, expect=f"--seed 1: {results} has runs of seeds [0] only")
    assert main([str(results), "--seed", "0", "--output", str(tmp_path / "curves")]) == 0  # no suffix: PNG
    assert (tmp_path / "curves").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_plot_never_overwrites_its_results_file(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    from plot_k_sweep import main

    results = tmp_path / "k.json"
    results.write_text("{}")
    line = refused(main, ["--tvsum", str(results), "--out", str(results)], capsys, tmp_path, expect="--out")
    assert f"would overwrite --tvsum {results}" in line


@pytest.mark.parametrize(
    ("entry", "argv", "prog"),
    [
        (rdmf_main, ["predict", "--bogus"], "rdmf predict"),
        (
            rdmf_main,
            ["extract-features", "--videos", "v.mp4", "--out", "o", "--bogus"],
            "rdmf",
        ),
        (rdmf_main, [], "rdmf"),
        (train_main, ["--output_dir", "o", "--bogus"], "rdmf-train"),
        (evaluate_main, ["--output_dir", "o"], "rdmf-evaluate"),
        (qvhighlights_main, ["--gt_path", "g"], "python -m transformers_rdmf.metrics.qvhighlights"),
    ],
    ids=["predict", "extract-features", "no-command", "train", "evaluate", "metrics"],
)
def test_a_bad_flag_is_one_line_not_the_usage_block(entry, argv, prog, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        entry(argv)
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.count("\n") == 1 and err.startswith(f"{prog}: error: "), err
    assert not list(tmp_path.iterdir())
