"""scripts/run_highlight_results.py: the train-fold protocol never sees a val video, and picks its epoch right."""

import importlib.util
import json

import pytest

from transformers_rdmf.data import load_annotations, load_youtube_highlights

from .conftest import REPO_ROOT


@pytest.fixture(scope="module")
def script():
    path = REPO_ROOT / "scripts" / "run_highlight_results.py"
    spec = importlib.util.spec_from_file_location("run_highlight_results", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def vids_of(jsonl) -> list[str]:
    return [json.loads(line)["vid"] for line in open(jsonl) if line.strip()]


def test_tvsum_folds_split_the_train_videos_only(script, shared_data, tmp_path):
    root = shared_data / "tvsum"
    train_vids = set(load_annotations(root / "tvsum_train_release.jsonl", "tvsum", domain="GA")["vid"])
    val_vids = set(load_annotations(root / "tvsum_val_release.jsonl", "tvsum", domain="GA")["vid"])
    assert len(train_vids) == 4 and len(val_vids) == 1
    held_out = []
    for fold in range(4):
        work = tmp_path / str(fold)
        work.mkdir()
        job = {"dataset": "tvsum", "data_root": str(root), "domain": "GA", "fold": fold, "folds": 4}
        data = script.data_arguments(job, work)
        trained, evaluated = vids_of(data["train_annotations"]), vids_of(data["eval_annotations"])
        assert len(trained) == 3 and len(evaluated) == 1
        assert set(trained) | set(evaluated) == train_vids
        held_out += evaluated
    assert sorted(held_out) == sorted(train_vids)  # each train video held out once
    official = script.data_arguments({"dataset": "tvsum", "data_root": str(root), "domain": "GA"}, tmp_path)
    assert set(vids_of(official["eval_annotations"])) >= val_vids


def test_youtube_folds_split_the_train_videos_only(script, shared_data, tmp_path):
    root = shared_data / "youtube_highlights"
    job = {
        "dataset": "youtube_highlights",
        "data_root": str(root),
        "domain": "parkour",
        "fold": 1,
        "folds": 4,
    }
    data = script.data_arguments(job, tmp_path)
    train = set(load_youtube_highlights(data["data_root"], "train", "parkour")["vid"])
    held_out = set(load_youtube_highlights(data["data_root"], "val", "parkour")["vid"])
    official_train = set(load_youtube_highlights(root, "train", "parkour")["vid"])
    assert train | held_out == official_train and not train & held_out
    assert len(held_out) == pytest.approx(len(official_train) / 4, abs=1)


def test_fold_selection_reads_the_val_curve_at_the_best_held_out_epoch(script):
    run = {"curve": [[1, 50.0], [2, 90.0], [3, 70.0], [4, 60.0]]}
    folds = [
        {"curve": [[1, 10.0], [2, 20.0], [3, 60.0], [4, 60.0]]},
        {"curve": [[1, 30.0], [2, 40.0], [3, 40.0]]},
    ]
    # held-out means 20, 30, 50 (the fourth evaluation is missing from one fold): the third evaluation
    assert script.fold_selected(run, folds) == 70.0
    tie = [{"curve": [[1, 5.0], [2, 5.0], [3, 1.0], [4, 1.0]]}]
    assert script.fold_selected(run, tie) == 50.0  # the earliest of equal held-out scores


def test_only_runs_with_folds_get_the_fold_protocol(script):
    def run(domain, fold=None, curve=((1, 50.0), (2, 60.0))):
        return {
            "variant": "full",
            "domain": domain,
            "seed": 0,
            "fold": fold,
            "curve": [list(p) for p in curve],
        }

    results = [run("GA"), run("GA", 0, ((1, 9.0), (2, 1.0))), run("BK")]
    runs = {r["domain"]: r for r in script.with_fold_selection(results)}
    assert runs["GA"]["fold"] == 50.0 and "fold" not in runs["BK"]
