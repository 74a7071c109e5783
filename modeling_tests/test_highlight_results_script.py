"""scripts/run_highlight_results.py: the train-fold protocol never sees a val video, and picks its epoch right.

Also scripts/tvsum_baselines.py: its oracle matches the data README, its folds match the sweep's.
"""

import importlib.util
import json
import sys

import pytest

from transformers_rdmf import RDMFConfig
from transformers_rdmf.data import load_annotations, load_youtube_highlights
from transformers_rdmf.training import RDMFTrainingArguments, build_dataset

from .conftest import REPO_ROOT


def load_script(name: str):
    if str(REPO_ROOT / "scripts") not in sys.path:  # scripts import each other, as when run from there
        sys.path.insert(0, str(REPO_ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script():
    return load_script("run_highlight_results")


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
    assert data["data_root"] == str(root)  # the real folder; only the split comes from the fold
    train = set(load_youtube_highlights(root, "train", "parkour", splits_file=data["splits_file"])["vid"])
    held_out = set(load_youtube_highlights(root, "val", "parkour", splits_file=data["splits_file"])["vid"])
    official_train = set(load_youtube_highlights(root, "train", "parkour")["vid"])
    assert train | held_out == official_train and not train & held_out
    assert len(held_out) == pytest.approx(len(official_train) / 4, abs=1)
    # the training loop reads the fold through --splits_file: it trains on the kept, evaluates on the held out
    args = RDMFTrainingArguments(output_dir=str(tmp_path / "run"), preset="youtube_highlights_i3d", domain="parkour",
                             dataset="youtube_highlights", **data)  # fmt: skip
    config = RDMFConfig.from_preset("youtube_highlights_i3d")
    assert set(build_dataset(args, "train", config).annotations["vid"]) == train
    assert set(build_dataset(args, "eval", config).annotations["vid"]) == held_out


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
    assert runs["GA"]["train_fold"] == 50.0 and "train_fold" not in runs["BK"]


def test_a_run_whose_folds_are_not_all_there_gets_no_fold_protocol(script):
    def run(fold=None, folds=4):
        return {"variant": "full", "domain": "GA", "seed": 0, "fold": fold, "folds": folds,
                "curve": [[1, 50.0], [2, 60.0]]}  # fmt: skip

    # a sweep stopped after the first of four inner folds: no epoch is chosen from one fold
    partial = script.with_fold_selection([run(), run(0)])
    assert "train_fold" not in partial[0]
    complete = script.with_fold_selection([run(), *(run(fold) for fold in range(4))])
    assert complete[0]["train_fold"] == 60.0  # the held-out curves peak at the second evaluation


def test_joint_folds_hold_out_a_quarter_of_each_category(script, shared_data, tmp_path):
    root = shared_data / "tvsum"
    train = load_annotations(root / "tvsum_train_release.jsonl", "tvsum")
    val_vids = set(load_annotations(root / "tvsum_val_release.jsonl", "tvsum")["vid"])
    domain_of = dict(zip(train["vid"], train["domain"]))
    held_out = []
    for fold in range(4):
        work = tmp_path / str(fold)
        work.mkdir()
        job = {"dataset": "tvsum", "data_root": str(root), "domain": None, "fold": fold, "folds": 4}
        data = script.data_arguments(job, work)
        trained, evaluated = vids_of(data["train_annotations"]), vids_of(data["eval_annotations"])
        assert not (set(trained) | set(evaluated)) & val_vids
        assert set(trained) | set(evaluated) == set(domain_of) and not set(trained) & set(evaluated)
        assert sorted(domain_of[v] for v in evaluated) == sorted(script.domains_of("tvsum"))  # one each
        held_out += evaluated
    assert sorted(held_out) == sorted(domain_of)  # each train video held out once


def test_a_joint_run_gives_one_result_per_domain(script, monkeypatch, shared_data):
    import transformers_rdmf.training as training

    domains = script.domains_of("tvsum")
    log = [(step, "eval/top5_mAP", 50.0) for step in (10, 20)]
    # per domain: rises then falls, so the best (step 20) is neither the first nor the last point
    log += [
        (step, f"eval/top5_mAP/{d}", 10.0 * i + v)
        for i, d in enumerate(domains)
        for step, v in ((10, 1), (20, 5), (30, 2))
    ]
    log.append((20, "train/loss", 99.0))
    monkeypatch.setattr(training, "train", lambda args: None)
    monkeypatch.setattr(training, "read_csv_log", lambda output_dir: log)
    job = {
        "dataset": "tvsum", "data_root": str(shared_data / "tvsum"), "variant": "full", "domain": None,
        "seed": 3, "epochs": 2, "eval_every": 1, "learning_rate": 1e-3, "batch_size": 4, "overrides": {},
        "training": {}, "threads": 1, "fold": None, "folds": 0, "tag": "", "joint": True,
    }  # fmt: skip
    results = script.run_one(job)
    assert [r["domain"] for r in results] == domains
    assert [script.job_key(r) for r in results] == script.result_keys(job)
    assert script.result_keys(job)[0] == f"full (joint)/{domains[0]}/3"
    for i, r in enumerate(results):
        assert r["curve"] == [(10, 10.0 * i + 1), (20, 10.0 * i + 5), (30, 10.0 * i + 2)]
        assert (r["best"], r["best_step"], r["final"]) == (10.0 * i + 5, 20, 10.0 * i + 2)


def test_youtube_joint_folds_hold_out_a_quarter_of_every_domain(script, shared_data, tmp_path):
    root = shared_data / "youtube_highlights"
    job = {"dataset": "youtube_highlights", "data_root": str(root), "domain": None, "fold": 2, "folds": 4}
    data = script.data_arguments(job, tmp_path)
    for domain in script.domains_of("youtube_highlights"):
        train = set(load_youtube_highlights(root, "train", domain, splits_file=data["splits_file"])["vid"])
        held_out = set(load_youtube_highlights(root, "val", domain, splits_file=data["splits_file"])["vid"])
        official_train = set(load_youtube_highlights(root, "train", domain)["vid"])
        assert train | held_out == official_train and not train & held_out, domain
        assert len(held_out) == pytest.approx(len(official_train) / 4, abs=1), domain


def test_joint_with_domains_is_refused(script, monkeypatch, capsys):
    argv = ["run_highlight_results.py", "--data_root", "x", "--joint", "--domains", "GA"]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit):
        script.main()
    assert "--joint trains one model on every domain: drop --domains" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "value", "expect"),
    [
        ("--jobs", "0", "a positive integer"),
        ("--epochs", "0", "a positive integer"),
        ("--train_folds", "-1", "0 (none) or 2 or more folds"),
        ("--train_folds", "1", "0 (none) or 2 or more folds"),
    ],
)
def test_a_sweep_number_out_of_range_is_refused_before_any_training(
    flag, value, expect, script, monkeypatch, capsys
):
    monkeypatch.setattr("sys.argv", ["run_highlight_results.py", "--data_root", "x", flag, value])
    with pytest.raises(SystemExit) as stopped:
        script.main()
    assert stopped.value.code == 2 and f"{flag}: expected {expect}, got {value}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            ["--train", "nosuch=1"],
            "--train: unknown training key(s) ['nosuch']; expected RDMFTrainingArguments",
        ),
        (["--train", "ema_decay=abc"], "--train: ema_decay is 'abc'; expected float | None"),
        (["--train", "ema_decay"], "--train expects key=value, got 'ema_decay'"),
        (["--set", "nosuch=1"], "full/BK/0: --set: unknown config field(s) ['nosuch']"),
        (["--set", "hidden_size=-4"], "full/BK/0: RDMFConfig.hidden_size=-4 is invalid"),
        (["--domains", "BK", "XX"], "full/XX/0: --domain 'XX': expected one of BK, BT, DS"),
        (["--seeds", "0", "-1"], "full/BK/-1: --seed -1: expected a seed >= 0"),
        (["--learning_rate", "-1"], "full/BK/0: --learning_rate -1.0: expected a learning rate >= 0.0"),
        (["--train_folds", "5"], "full/BK/0/fold4: --train_folds 5: BK has 4 train videos; each fold needs"),
        (["--protocol", "cv", "--train_folds", "4", "--train", "ema_decay=1.5"], "--ema_decay 1.5: expected"),
        (["--results", "{tmp}"], "--results: {tmp} is a folder; give the path of a file to write"),
        (["--results", "{data}/r.json"], "--results {data}/r.json would overwrite --data_root {data}"),
        (["--results", "{tmp}/notes.txt"], "--results {tmp}/notes.txt: not JSON (Expecting value, line 1)"),
        (["--data_root", "{tmp}/none"], "--data_root: {tmp}/none is not a folder"),
        (["--train", "seed=3"], "full/BK/0: --train seed: the sweep sets it itself; give --seeds"),
        (
            ["--train", "num_epochs=3"],
            "full/BK/0: --train num_epochs: the sweep sets it itself; give --epochs",
        ),
        (["--results", "{tmp}/youtube.json"], "--results {tmp}/youtube.json: holds youtube_highlights runs"),
        (["--results", "{tmp}/notes.txt/r.json"], "--results: cannot write to {tmp}/notes.txt"),
    ],
)
def test_what_a_run_would_refuse_stops_the_sweep_in_one_line_before_any_training(
    given, expected, script, shared_data, tmp_path, monkeypatch, capsys
):
    """Each run's own checks (the training arguments, the config, its folds) and the results file are
    checked in the sweep's process before the first run: one line naming the flag or the run, exit 2,
    rather than a worker's traceback minutes in."""
    data = (shared_data / "tvsum").resolve()
    (tmp_path / "notes.txt").write_text("not a results file")
    run = {"dataset": "youtube_highlights", "variant": "full", "domain": "dog", "seed": 0, "curve": [[1, 50.0]],
           "seconds": 1.0, "best": 50.0, "final": 50.0}  # fmt: skip
    (tmp_path / "youtube.json").write_text(json.dumps({"full/dog/0": run}))
    given = [arg.format(tmp=tmp_path, data=data) for arg in given]
    argv = ["run_highlight_results.py", "--dataset", "tvsum", "--data_root", str(data), "--seeds", "0"]
    argv += ["--epochs", "1", "--results", str(tmp_path / "r.json"), *given]
    monkeypatch.setattr("sys.argv", argv)
    monkeypatch.setattr(script, "run_sweep", lambda *a: pytest.fail("a sweep started"))
    with pytest.raises(SystemExit) as stopped:
        script.main()
    error = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2 and len(error) == 1
    assert error[-1].startswith("run_highlight_results.py: error: ")
    assert expected.format(tmp=tmp_path, data=data) in error[-1]
    assert (tmp_path / "notes.txt").read_text() == "not a results file" and not (tmp_path / "r.json").exists()
    assert json.loads((tmp_path / "youtube.json").read_text()) == {"full/dog/0": run}


def test_a_joint_model_reads_every_domain_at_one_held_out_epoch(script):
    def run(domain, fold=None, curve=((1, 50.0), (2, 60.0), (3, 70.0))):
        return {"variant": "full", "joint": True, "domain": domain, "seed": 0, "fold": fold, "curve": curve}

    # GA's own held-out curve peaks at evaluation 1, BK's at 3; their mean peaks at 2
    results = [
        run("GA"),
        run("BK"),
        run("GA", 0, ((1, 9.0), (2, 8.0), (3, 0.0))),
        run("BK", 0, ((1, 0.0), (2, 8.0), (3, 9.0))),
    ]
    runs = {r["domain"]: r for r in script.with_fold_selection(results)}
    assert runs["GA"]["train_fold"] == runs["BK"]["train_fold"] == 60.0


def test_tvsum_baselines_oracle_and_folds(script, shared_data, tmp_path):
    baselines = load_script("tvsum_baselines")
    root = shared_data / "tvsum"
    val, train = baselines.load_videos(root, "val"), baselines.load_videos(root, "train")
    assert (len(val), len(train)) == (10, 40)
    # the data README: ranking by the mean of the 20 annotators' scores gives 84.35 on the val videos
    assert round(baselines.top5_map(val, lambda v: v["scores"].mean(1)), 2) == 84.35
    # the same folds as the sweep's joint train folds
    for fold, (kept, held_out) in enumerate(baselines.train_folds(train, 4)):
        work = tmp_path / str(fold)
        work.mkdir()
        job = {"dataset": "tvsum", "data_root": str(root), "domain": None, "fold": fold, "folds": 4}
        evaluated = set(vids_of(script.data_arguments(job, work)["eval_annotations"]))
        assert {v["vid"] for v in held_out} == evaluated
        assert len(kept) == 30


def test_the_report_is_written_between_its_markers_and_bad_markers_are_refused(
    script, tmp_path, monkeypatch, capsys
):
    results = {}
    for seed in range(2):
        for domain in ("GA", "BK"):
            run = {
                "dataset": "tvsum", "data_root": "/nowhere", "variant": "full", "domain": domain,
                "seed": seed, "fold": None, "folds": 0, "tag": "", "joint": False, "seconds": 5.0,
                "curve": [[1, 60.0], [2, 70.0 + seed]], "best": 70.0 + seed, "best_step": 2,
                "final": 70.0 + seed,
            }  # fmt: skip
            results[f"full/{domain}/{seed}"] = run
    path = tmp_path / "r.json"
    path.write_text(json.dumps(results))
    document = tmp_path / "results.md"
    before, after = "# Results\n\nProse.\n<!-- report: cv begin -->\n", "<!-- report: cv end -->\n\nMore.\n"
    document.write_text(before + "stale tables\n" + after)
    argv = ["run_highlight_results.py", "--report", str(path), "--into", str(document), "--section", "cv"]
    monkeypatch.setattr("sys.argv", argv)
    script.main()
    printed = capsys.readouterr().out.strip()
    assert document.read_text() == before + printed + "\n" + after
    assert "| full | 70.50 ± 0.71 | 70.50 ± 0.71 |" in printed  # BK, GA: seeds 0 and 1 score 70 and 71

    document.write_text("no markers here\n")
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as stopped:
        script.main()
    assert stopped.value.code == 2 and document.read_text() == "no markers here\n"
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{document}: expected one '<!-- report: cv begin -->' line" in error


def test_the_report_keeps_only_the_variants_asked_for(script, tmp_path, monkeypatch, capsys):
    results = {}
    for variant, score in (("full", 70.0), ("cross_attention", 60.0)):
        for seed in range(2):
            run = {
                "dataset": "tvsum", "data_root": "/nowhere", "variant": variant, "domain": "GA",
                "seed": seed, "fold": None, "folds": 0, "tag": "", "joint": False, "seconds": 5.0,
                "curve": [[1, score + seed]], "best": score + seed, "best_step": 1, "final": score + seed,
            }  # fmt: skip
            results[f"{variant}/GA/{seed}"] = run
    path = tmp_path / "r.json"
    path.write_text(json.dumps(results))
    monkeypatch.setattr("sys.argv", ["run_highlight_results.py", "--report", str(path)])
    script.main()
    both = capsys.readouterr().out
    assert "| full | 70.50 ± 0.71 |" in both and "| cross_attention | 60.50 ± 0.71 |" in both
    for spelling in (["--variants", "full"], ["--variants=full"]):
        monkeypatch.setattr("sys.argv", ["run_highlight_results.py", "--report", str(path), *spelling])
        script.main()
        only_full = capsys.readouterr().out
        assert "| full | 70.50 ± 0.71 |" in only_full and "cross_attention" not in only_full, spelling
    monkeypatch.setattr("sys.argv", ["run_highlight_results.py", "--report", str(path), "--seeds=1"])
    script.main()
    seed_1 = capsys.readouterr().out
    assert "| full | 71.00 |" in seed_1 and "| cross_attention | 61.00 |" in seed_1
    argv = ["run_highlight_results.py", "--report", str(path), "--variants", "no_temporal_diffusion"]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as stopped:
        script.main()
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.endswith(f"no complete runs in {path} (--variants no_temporal_diffusion)")


@pytest.mark.parametrize(
    "content, expected",
    [
        ('{"full/GA/0": {"variant": "full"', "not JSON (Expecting ',' delimiter, line 1)"),
        ("[1, 2]", "expected an object of runs {key: run}, found list"),
        ('{"full/GA/0": {"best": NaN}}', "holds NaN; every score in a results file is a finite number"),
        (
            '{"full/GA/0": {"curve": [[1, -Infinity]]}}',
            "holds -Infinity; every score in a results file is a finite number",
        ),
        (
            '{"full/GA/0": {"dataset": "tvsum", "variant": "full", "domain": "GA", "seed": 0}}',
            "run 'full/GA/0' lacks curve, seconds, best, final",
        ),
    ],
)
def test_a_malformed_results_file_is_refused_in_one_line(
    script, tmp_path, monkeypatch, capsys, content, expected
):
    path = tmp_path / "r.json"
    path.write_text(content)
    monkeypatch.setattr("sys.argv", ["run_highlight_results.py", "--report", str(path)])
    with pytest.raises(SystemExit) as stopped:
        script.main()
    error = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2 and error[-1].endswith(f"error: {path}: {expected}")


def test_a_report_of_two_datasets_or_of_a_missing_data_folder_is_refused_in_one_line(
    script, tmp_path, monkeypatch, capsys
):
    run = {"variant": "full", "seed": 0, "curve": [[1, 50.0]], "seconds": 1.0, "best": 50.0, "final": 50.0}
    tvsum, youtube = tmp_path / "tvsum.json", tmp_path / "youtube.json"
    tvsum.write_text(json.dumps({"full/GA/0": {**run, "dataset": "tvsum", "domain": "GA"}}))
    youtube.write_text(json.dumps({"full/dog/0": {**run, "dataset": "youtube_highlights", "domain": "dog"}}))
    for given, expected in [
        ([str(tvsum), str(youtube)], f"{tvsum}, {youtube}: runs of tvsum and youtube_highlights; a report is of one dataset"),
        ([str(tvsum), "--data_root", str(tmp_path / "none")], f"--data_root: {tmp_path / 'none'} is not a folder"),
    ]:  # fmt: skip
        monkeypatch.setattr("sys.argv", ["run_highlight_results.py", "--report", *given])
        with pytest.raises(SystemExit) as stopped:
            script.main()
        error = capsys.readouterr().err.strip().splitlines()
        assert stopped.value.code == 2 and error == [f"run_highlight_results.py: error: {expected}"]


def test_the_spread_plot_never_replaces_an_input_of_the_report(script, tmp_path, monkeypatch, capsys):
    run = {"dataset": "tvsum", "variant": "full", "domain": "GA", "seed": 0, "curve": [[1, 50.0]],
           "seconds": 1.0, "best": 50.0, "final": 50.0}  # fmt: skip
    results, doc = tmp_path / "r.json", tmp_path / "doc.md"
    results.write_text(json.dumps({"full/GA/0": run}))
    doc.write_text("<!-- report: s begin -->\n<!-- report: s end -->\n")
    for plot, flag in [(results, "--report"), (doc, "--into")]:
        argv = ["run_highlight_results.py", "--report", str(results), "--into", str(doc), "--section", "s"]
        monkeypatch.setattr("sys.argv", [*argv, "--plot", str(plot)])
        with pytest.raises(SystemExit) as stopped:
            script.main()
        error = capsys.readouterr().err.strip().splitlines()
        assert stopped.value.code == 2 and error == [
            f"run_highlight_results.py: error: --plot {plot} would overwrite {flag} {plot}; write the output elsewhere"
        ]
    assert json.loads(results.read_text()) == {"full/GA/0": run}
    assert doc.read_text() == "<!-- report: s begin -->\n<!-- report: s end -->\n"
    monkeypatch.setattr("sys.argv", [*argv, "--plot", str(tmp_path / "spread.csv")])
    with pytest.raises(SystemExit) as stopped:
        script.main()
    assert (
        stopped.value.code == 2 and "--plot" in capsys.readouterr().err and "| full |" not in doc.read_text()
    )
    monkeypatch.setattr("sys.argv", [*argv, "--plot", str(tmp_path / "spread")])  # no suffix: a PNG
    script.main()
    assert (tmp_path / "spread").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| full | 50.00 |" in doc.read_text()


def test_into_without_report_is_refused_before_any_training(script, tmp_path, monkeypatch, capsys):
    argv = ["run_highlight_results.py", "--data_root", str(tmp_path), "--into", "d.md", "--section", "cv"]
    monkeypatch.setattr("sys.argv", argv)
    monkeypatch.setattr(script, "run_sweep", lambda args: pytest.fail("a sweep started"))
    with pytest.raises(SystemExit) as stopped:
        script.main()
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("they need --report RESULTS_JSON")


def test_the_k_sweep_plot_reads_each_variant_at_its_k_and_each_seed_over_every_domain(tmp_path, monkeypatch):
    plot = load_script("plot_k_sweep")
    steps = {v: plot.diffusion_steps_of(v) for v in ("full", "K0", "no_temporal_diffusion", "K5", "K20")}
    assert steps == {"full": 10, "K0": 0, "no_temporal_diffusion": 0, "K5": 5, "K20": 20}
    assert plot.diffusion_steps_of("cross_attention") is None
    domains = ["dog", "gymnastics", "parkour", "skating", "skiing", "surfing"]
    offset = {"full": 60.0, "K5": 50.0, "no_temporal_diffusion": 40.0, "cross_attention": 90.0}
    results = {}
    for variant, seed, tag in [(v, s, "") for v in offset for s in (0, 1)] + [("full", 0, "margin")]:
        for index, domain in enumerate(domains):
            if (variant, seed, domain) == ("K5", 1, "surfing"):
                continue  # a seed missing a domain has no mean
            final = offset[variant] + seed + index + (20.0 if tag else 0.0)
            results[f"{variant} {tag}/{domain}/{seed}"] = {
                "dataset": "youtube_highlights", "variant": variant, "domain": domain, "seed": seed,
                "tag": tag, "overrides": {}, "fold": None, "curve": [[2, final]], "seconds": 1.0,
                "best": final + 5.0, "final": final,
            }  # fmt: skip
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    runs = plot.plain_runs([str(path)], "youtube_highlights", "--youtube")
    dataset, by_k = plot.scores_by_k(runs, "final")
    assert dataset == "youtube_highlights"
    assert by_k == {0: {0: 42.5, 1: 43.5}, 5: {0: 52.5}, 10: {0: 62.5, 1: 63.5}}  # 2.5: the mean of 0..5
    assert plot.scores_by_k(runs, "best")[1][10] == {0: 67.5, 1: 68.5}
    out = tmp_path / "k.png"
    monkeypatch.setattr(sys, "argv", ["plot_k_sweep.py", "--youtube", str(path), "--out", str(out)])
    plot.main()
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_k_sweep_plot_refuses_another_datasets_runs_and_files_without_the_plain_recipe(tmp_path, capsys):
    plot = load_script("plot_k_sweep")
    run = {"variant": "full", "domain": "GA", "seed": 0, "tag": "", "overrides": {}, "fold": None,
           "curve": [[2, 50.0]], "seconds": 1.0, "best": 50.0, "final": 50.0}  # fmt: skip
    tvsum, tagged = tmp_path / "tvsum.json", tmp_path / "tagged.json"
    tvsum.write_text(json.dumps({"full/GA/0": {**run, "dataset": "tvsum"}}))
    tagged.write_text(json.dumps({"full (x)/dog/0": {**run, "dataset": "youtube_highlights", "tag": "x"}}))
    for given, expected in [
        (["--youtube", str(tvsum)], f"--youtube {tvsum}: holds tvsum runs; expected youtube_highlights"),
        (
            ["--youtube", str(tagged)],
            f"--youtube: no run of the plain recipe (no --tag, no --set) in {tagged}",
        ),
    ]:
        assert plot.main([*given, "--out", str(tmp_path / "k.png")]) == 2
        assert capsys.readouterr().err.strip() == f"plot_k_sweep.py: error: {expected}"
        assert not (tmp_path / "k.png").exists()


def test_the_targets_plot_reads_the_full_models_evaluated_200_times_per_seed(tmp_path, monkeypatch):
    plot = load_script("plot_tvsum_targets")
    categories = ["BK", "BT", "DS", "FM", "GA", "MS", "PK", "PR", "VT", "VU"]
    results = {}
    cases = [("full", "evaluated every epoch, no EMA", 200), ("cross_attention", "evaluated every epoch, no EMA", 200),
             ("full", "", 20)]  # fmt: skip
    for variant, tag, evaluations in cases:
        for seed in (0, 1):
            for index, domain in enumerate(categories):
                final = 60.0 + seed + index + (10.0 if variant != "full" else 0.0)
                results[f"{variant} {tag}/{domain}/{seed}"] = {
                    "dataset": "tvsum", "variant": variant, "domain": domain, "seed": seed, "tag": tag,
                    "overrides": {}, "fold": None, "curve": [[e + 1, final] for e in range(evaluations)],
                    "seconds": 1.0, "best": final + 15.0, "final": final,
                }  # fmt: skip
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    found = plot.recipes([str(path)])
    assert list(found) == ["full (evaluated every epoch, no EMA)"]  # no ablation, no 20-evaluation run
    assert found["full (evaluated every epoch, no EMA)"] == {
        "best": {0: 79.5, 1: 80.5},
        "final": {0: 64.5, 1: 65.5},
    }  # 4.5: the mean of 0..9
    assert (
        plot.short_name("full (joint, evaluated every epoch, batch 40, no EMA)") == "joint, batch 40, no EMA"
    )
    assert plot.short_name("full (evaluated every epoch)") == "per category"
    out = tmp_path / "targets.png"
    assert plot.main(["--results", str(path), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot.main(["--results", str(path), "--out", str(tmp_path / "targets.pdf")]) == 0
    assert (tmp_path / "targets.pdf").read_bytes()[:4] == b"%PDF"  # the suffix names the format


FIGURE_CASES = {
    "plot_k_sweep": ["--youtube", "{results}", "--out", "{figure}"],
    "plot_tvsum_targets": ["--results", "{results}", "--out", "{figure}"],
    "plot_scale": ["--results", "{results}", "--out", "{figure}"],
    "plot_highlight_curves": ["{results}", "--output", "{figure}"],
}


@pytest.mark.parametrize("name", sorted(FIGURE_CASES))
def test_the_plot_helpers_refuse_a_suffix_that_names_no_image_format(name, tmp_path, capsys):
    """Before reading anything: a figure at ``k.txt`` was written as PNG bytes, or failed after the work."""
    paths = {"results": tmp_path / "r.json", "figure": tmp_path / "k.txt"}
    argv = [part.format(**paths) for part in FIGURE_CASES[name]]
    assert load_script(name).main(argv) == 2
    error = capsys.readouterr().err.strip()
    flag = argv[-2]
    assert error.startswith(
        f"{name}.py: error: {flag} {tmp_path / 'k.txt'}: the suffix names the image format"
    )
    assert error.endswith("(no suffix: PNG)") and not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("name", "given", "expected"),
    [
        ("plot_tvsum_targets", ["--peer_best", "inf"], "--peer_best: expected a score in [0, 100], got inf"),
        (
            "plot_tvsum_targets",
            ["--margin", "nan"],
            "--peer_fixed plus --margin: expected a score in [0, 100], got nan",
        ),
        ("plot_tvsum_targets", ["--margin", "-1"], "--margin: expected a margin >= 0, got -1.0"),
        (
            "plot_tvsum_targets",
            ["--peer_fixed", "95"],
            "--peer_fixed plus --margin: expected a score in [0, 100], got 105.0",
        ),
        (
            "plot_tvsum_targets",
            ["--peer_fixed", "-5"],
            "--peer_fixed: expected a score in [0, 100], got -5.0",
        ),
        ("tvsum_baselines", ["--alpha", "nan"], "--alpha: expected a ridge penalty above 0, got nan"),
        ("tvsum_baselines", ["--alpha", "0"], "--alpha: expected a ridge penalty above 0, got 0.0"),
        ("tvsum_baselines", ["--random_draws", "0"], "--random_draws: expected a positive integer, got 0"),
    ],
)
def test_the_tvsum_helpers_refuse_a_number_that_would_draw_or_print_nonsense(
    name, given, expected, tmp_path, capsys
):
    """A NaN target line, or a random baseline averaged over no draws (NaN), is refused in one line."""
    out = tmp_path / "targets.png"
    first = ["--results", str(tmp_path / "r.json"), "--out", str(out)]
    if name == "tvsum_baselines":
        first = ["--data_root", str(tmp_path)]
    assert load_script(name).main([*first, *given]) == 2
    assert capsys.readouterr().err.strip() == f"{name}.py: error: {expected}"
    assert not list(tmp_path.iterdir())  # no plot, no file at all
