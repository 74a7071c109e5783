"""One atomic writer for files and folders: a failure leaves the previous version and no temporary behind."""

import json
from types import SimpleNamespace

import pytest
from safetensors.torch import load_file

from transformers_rdmf import RDMFConfig, RDMFForMomentRetrieval, atomic
from transformers_rdmf.atomic import (
    atomic_folder,
    atomic_savefig,
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    check_figure_path,
    check_output_paths,
)
from transformers_rdmf.training import RDMFTrainingArguments, save_model
from transformers_rdmf.training import loop as training_loop

from .test_modeling import tiny_config


class Crash(Exception):
    """Stands for a full disk or a killed process in the middle of a write."""


def fail_after_writing(path):
    with open(path, "w") as handle:
        handle.write("half")
    raise Crash


def test_a_file_is_replaced_whole_or_not_at_all(tmp_path):
    target = tmp_path / "sub" / "result.json"
    atomic_write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    with pytest.raises(Crash):
        atomic_write(target, fail_after_writing)
    assert json.loads(target.read_text()) == {"a": 1}
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.json"]  # no temporary left


def test_the_temporary_file_keeps_the_suffix(tmp_path):
    seen = []
    atomic_write(
        tmp_path / "features.npz", lambda temporary: seen.append(temporary) or open(temporary, "w").close()
    )
    assert seen[0].endswith(".npz")  # np.savez would otherwise append .npz to the name it is given


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path):
    target = tmp_path / "best"
    atomic_folder(target, lambda staging: (staging / "weights").write_text("first"))
    assert (target / "weights").read_text() == "first"

    def half_fill(staging):
        (staging / "weights").write_text("second, half written")
        raise Crash

    with pytest.raises(Crash):
        atomic_folder(target, half_fill)
    assert (
        sorted(p.name for p in target.iterdir()) == ["weights"]
        and (target / "weights").read_text() == "first"
    )
    atomic_folder(target, lambda staging: (staging / "other").write_text("second"))
    assert sorted(p.name for p in target.iterdir()) == ["other"]  # a replacement, not a merge
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]  # no staging or old copy left


def test_a_checkpoint_save_that_fails_midway_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    accelerator = SimpleNamespace(is_main_process=True, unwrap_model=lambda model: model)
    args = RDMFTrainingArguments(output_dir=str(tmp_path), preset="clip_vit_b32", dataset="custom")
    first = RDMFForMomentRetrieval(tiny_config())
    save_model("best", first, accelerator, args, {"MR-full-mAP": 10.0}, epoch=1)
    saved = load_file(tmp_path / "best" / "model.safetensors")

    def crash(*_):
        raise Crash

    monkeypatch.setattr(training_loop, "write_training_feature_signatures", crash)
    with pytest.raises(Crash):  # the weights of epoch 2 are written, then the save fails
        save_model(
            "best", RDMFForMomentRetrieval(tiny_config()), accelerator, args, {"MR-full-mAP": 20.0}, epoch=2
        )
    assert json.loads((tmp_path / "best" / "metrics.json").read_text())["epoch"] == 1
    kept = load_file(tmp_path / "best" / "model.safetensors")
    assert kept.keys() == saved.keys() and all((kept[k] == saved[k]).all() for k in saved)  # bytes read back
    assert RDMFConfig.from_pretrained(tmp_path / "best").hidden_size == first.config.hidden_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]


@pytest.mark.parametrize(
    "name, magic",
    [
        ("plot.png", b"\x89PNG"),
        ("plot.PDF", b"%PDF"),
        ("plot.svg", b"<?xml"),
        ("plot", b"\x89PNG"),
        ("p.jpg", b"\xff\xd8"),
    ],
)
def test_a_figure_is_written_in_the_format_its_suffix_names(tmp_path, name, magic):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    check_figure_path("--out", tmp_path / name)  # accepted: upper case and no suffix too
    figure, axis = plt.subplots(figsize=(1, 1))
    axis.plot([0, 1])
    atomic_savefig(figure, tmp_path / name, dpi=20)
    plt.close(figure)
    assert (tmp_path / name).read_bytes().startswith(magic)
    assert [path.name for path in tmp_path.iterdir()] == [name]  # no temporary left


def test_a_figure_suffix_that_names_no_format_written_here_is_refused(monkeypatch):
    check_figure_path("--out", None)  # no figure asked for
    with pytest.raises(
        ValueError, match=r"^--out plot\.txt: the suffix names the image format; expected one of "
    ):
        check_figure_path("--out", "plot.txt")
    monkeypatch.setattr(atomic.shutil, "which", lambda program: None)  # no TeX program: no .pgf
    assert "pgf" not in atomic.writable_figure_formats() and "pdf" in atomic.writable_figure_formats()
    with pytest.raises(ValueError, match=r"^--out plot\.pgf: "):
        check_figure_path("--out", "plot.pgf")
    monkeypatch.setattr(atomic.shutil, "which", lambda program: f"/usr/bin/{program}")
    check_figure_path("--out", "plot.pgf")


def test_an_output_that_exists_but_is_not_a_regular_file_is_refused():
    """A rename onto /dev/null would replace the device with a regular file."""
    with pytest.raises(
        ValueError, match=r"^--json: /dev/null is not a regular file; give the path of a file"
    ):
        check_output_paths({"--json": "/dev/null"}, {})
