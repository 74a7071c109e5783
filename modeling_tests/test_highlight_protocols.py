"""TVSum cross-validation, the selection baseline, paired tests and the report built on them."""

import itertools
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from transformers_rdmf.metrics.highlight_detection import tvsum_video_ap
from transformers_rdmf.training.report import gathered_cv, highlight_report
from transformers_rdmf.training.selection import CV_FOLDS, cv_data_arguments
from transformers_rdmf.training.selection_baseline import expected_best_of_random
from transformers_rdmf.training.significance import (
    comparisons,
    holm_adjusted,
    nearest_parent_tag,
    paired_test,
    setting_comparisons,
)
from transformers_rdmf.training.sweep import data_arguments, job_key, run_sweep, with_fold_selection
from transformers_rdmf.training.tracking import last_per_video_scores, per_video_scores_path

DOMAINS = ["BK", "BT", "DS", "FM", "GA", "MS", "PK", "PR", "VT", "VU"]


def vids(path) -> list[tuple[str, str]]:
    return [
        (row["domain"], row["vid"]) for row in map(json.loads, Path(path).read_text().splitlines()) if row
    ]


def test_every_tvsum_video_is_the_test_video_exactly_once(shared_data, tmp_path):
    root = shared_data / "tvsum"
    tested = []
    for fold in range(CV_FOLDS):
        data = (
            cv_data_arguments(root, None, fold, tmp_path / f"f{fold}", inner_fold=None)
            if (tmp_path / f"f{fold}").mkdir() is None
            else None
        )
        train, test = vids(data["train_annotations"]), vids(data["eval_annotations"])
        assert sorted(d for d, _ in test) == DOMAINS  # one test video per category
        assert len(train) == 40 and not set(train) & set(test)
        tested += test
        for inner in range(4):
            (tmp_path / f"f{fold}i{inner}").mkdir()
            inner_data = cv_data_arguments(root, None, fold, tmp_path / f"f{fold}i{inner}", inner, 4)
            inner_train, held_out = (
                vids(inner_data["train_annotations"]),
                vids(inner_data["eval_annotations"]),
            )
            assert len(inner_train) == 30 and len(held_out) == 10
            assert not (set(inner_train) | set(held_out)) & set(test)  # the test video never seen
            assert set(inner_train) | set(held_out) == set(train)
    assert len(tested) == len(set(tested)) == 50  # all 50 videos, each once


def test_a_per_category_cv_job_and_its_inner_folds_read_only_its_category(shared_data, tmp_path):
    job = {
        "dataset": "tvsum",
        "data_root": str(shared_data / "tvsum"),
        "domain": "GA",
        "cv_fold": 2,
        "fold": None,
        "folds": 0,
    }
    data = data_arguments(job, tmp_path)
    train, test = vids(data["train_annotations"]), vids(data["eval_annotations"])
    assert {d for d, _ in train} == {"GA"} and len(train) == 4
    assert len(test) == 1 and test[0][0] == "GA" and not set(train) & set(test)
    assert job_key({**job, "variant": "full", "seed": 1, "tag": ""}) == "full (CV)/GA/1/cv2"
    held_out = []
    for inner in range(4):
        inner_job = {**job, "fold": inner, "folds": 4}
        (tmp_path / f"inner{inner}").mkdir()
        inner_data = data_arguments(inner_job, tmp_path / f"inner{inner}")
        kept, scored = vids(inner_data["train_annotations"]), vids(inner_data["eval_annotations"])
        assert len(kept) == 3 and len(scored) == 1 and set(kept) | set(scored) == set(train)
        held_out += scored
        assert (
            job_key({**inner_job, "variant": "full", "seed": 1, "tag": ""})
            == f"full (CV)/GA/1/cv2/fold{inner}"
        )
    assert sorted(held_out) == sorted(train)  # each train video held out once, the test video never


def pool_running(imap):
    """A stand-in for ``multiprocessing.get_context(...)`` whose ``Pool`` hands the sweep's jobs to
    ``imap(jobs)`` in this process (an iterator of each job's results) instead of training them."""
    import argparse

    class Pool:
        def __init__(self, *a, **k):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def imap_unordered(self, fn, jobs):
            return imap(jobs)

    return argparse.Namespace(Pool=Pool)


def test_the_sweep_plans_five_folds_and_their_inner_folds(monkeypatch, tmp_path, shared_data):
    import argparse

    from transformers_rdmf.training import sweep

    planned = []

    def imap(jobs):
        planned.extend(jobs)
        return iter(())

    monkeypatch.setattr(sweep.multiprocessing, "get_context", lambda name: pool_running(imap))
    args = argparse.Namespace(
        results=str(tmp_path / "r.json"), set=[], train=[], dataset="tvsum", data_root=str(shared_data / "tvsum"), variants=["full", "cross_attention"],
        seeds=[0, 1], epochs=5, eval_every=1, learning_rate=1e-3, batch_size=4, jobs=1, threads=1, train_folds=4,
        tag="", joint=True, domains=None, protocol="cv",
    )  # fmt: skip
    run_sweep(args)
    assert len(planned) == 2 * 2 * CV_FOLDS * (1 + 4)
    assert sorted({job["cv_fold"] for job in planned}) == list(range(CV_FOLDS))
    assert len({job_key(job) for job in planned}) == len(planned)


def test_the_checks_before_a_sweep_reach_every_variant_seed_and_fold():
    import argparse

    from transformers_rdmf.training.sweep import jobs_to_check, planned_jobs

    args = argparse.Namespace(
        set=[], train=[], dataset="tvsum", data_root="x", variants=["full", "K5"], seeds=[0, 1], epochs=1,
        eval_every=1, learning_rate=1e-3, batch_size=4, jobs=1, threads=1, train_folds=4, tag="",
        joint=False, domains=None, protocol="cv",
    )  # fmt: skip
    jobs = planned_jobs(args)
    checked = jobs_to_check(jobs)
    for values in (
        lambda job: job["variant"],
        lambda job: (job["domain"], job["seed"]),
        lambda job: (job["domain"], job["cv_fold"], job["fold"]),
    ):
        assert {values(job) for job in checked} == {values(job) for job in jobs}
    assert len(jobs) == 2 * 2 * 10 * CV_FOLDS * 5 and len(checked) == 10 * CV_FOLDS * 5 + 10 + 1


def test_a_sweep_writes_each_run_as_it_ends_and_resumes_with_the_runs_not_yet_done(
    monkeypatch, tmp_path, shared_data
):
    import argparse
    import json

    from transformers_rdmf.training import sweep

    handed: list[list[str]] = []

    def imap(jobs):  # runs nothing: each job "scores" its seed, and the file is read after every run
        handed.append([job_key(job) for job in jobs])
        for number, job in enumerate(jobs):
            curve = [(1, float(job["seed"])), (2, float(job["seed"]) + 1)]
            yield [sweep.scored_run(job, curve, seconds=1.0)]
            assert len(json.loads(results.read_text())) == written + number + 1

    monkeypatch.setattr(sweep.multiprocessing, "get_context", lambda name: pool_running(imap))
    results = tmp_path / "r.json"
    args = argparse.Namespace(
        results=str(results), set=[], train=[], dataset="tvsum", data_root=str(shared_data / "tvsum"),
        variants=["full"], seeds=[0], epochs=2, eval_every=1, learning_rate=1e-3, batch_size=4, jobs=1,
        threads=1, train_folds=0, tag="", joint=False, domains=["BK", "GA"], protocol="official",
    )  # fmt: skip
    written = 0
    run_sweep(args)
    args.seeds = [0, 1]
    written = 2
    run_sweep(args)
    assert handed == [["full/BK/0", "full/GA/0"], ["full/BK/1", "full/GA/1"]]
    runs = json.loads(results.read_text())
    assert sorted(runs) == ["full/BK/0", "full/BK/1", "full/GA/0", "full/GA/1"]
    assert (runs["full/GA/1"]["best"], runs["full/GA/1"]["final"]) == (2.0, 2.0)


def exact_ap_distribution(labels: np.ndarray) -> list[float]:
    """The top-5 AP of every ranking of a short video (all permutations equally likely)."""
    clips = len(labels)
    values = []
    for order in itertools.permutations(range(clips)):
        scores = np.empty(clips)
        scores[list(order)] = np.arange(clips, 0, -1)  # clip order[0] ranked first
        values.append(tvsum_video_ap(scores, labels))
    return values


def test_the_selection_baseline_simulation_matches_the_exact_expected_maximum():
    rng = np.random.default_rng(3)
    labels = rng.integers(1, 6, size=(7, 4)).astype(float)  # 7 clips, 4 annotators
    values = np.sort(exact_ap_distribution(labels))
    for evaluations in (1, 5, 20):
        # E[max of N iid draws] = sum over distinct v of v * (F(v)^N - F(v-)^N)
        distinct, counts = np.unique(values, return_counts=True)
        cdf = np.cumsum(counts) / len(values)
        previous = np.concatenate([[0.0], cdf[:-1]])
        exact = 100 * float(np.sum(distinct * (cdf**evaluations - previous**evaluations)))
        group = [[(lambda s: tvsum_video_ap(s, labels), 7)]]
        simulated = expected_best_of_random(group, evaluations, repeats=3000, seed=0)
        assert simulated == pytest.approx(exact, abs=1.0), evaluations  # 3000 maxima: standard error < 0.4
    assert expected_best_of_random(group, 20, repeats=50, seed=1) == expected_best_of_random(
        group, 20, repeats=50, seed=1
    )


def test_paired_tests_match_their_definitions():
    rng = np.random.default_rng(0)
    a = {(s, f"v{i}"): float(v) for s in range(2) for i, v in enumerate(rng.normal(70, 5, 4))}
    b = {k: v - 1.5 + float(rng.normal(0, 1)) for k, v in a.items()}
    b[(9, "extra")] = 1.0  # unpaired: left out
    test = paired_test(a, b)
    keys = sorted(a)
    d = np.array([a[k] - b[k] for k in keys])
    t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    from scipy.stats import t as student

    assert test["pairs"] == 8 and test["seeds"] == 2
    assert test["difference"] == pytest.approx(d.mean())
    assert test["t_p"] == pytest.approx(2 * student.sf(abs(t), len(d) - 1), rel=1e-9)
    # Wilcoxon, exact: the share of the 2^8 sign flips whose signed-rank sum is at least as extreme
    ranks = np.argsort(np.argsort(np.abs(d))) + 1
    observed = min(ranks[d > 0].sum(), ranks[d < 0].sum())
    flips = [sum(r for r, sign in zip(ranks, signs) if sign) for signs in itertools.product([0, 1], repeat=8)]
    extreme = sum(1 for w in flips if min(w, ranks.sum() - w) <= observed) / len(flips)
    assert test["wilcoxon_p"] == pytest.approx(extreme, rel=1e-9)


def test_paired_tests_of_equal_shifted_and_too_few_pairs():
    a = {(0, f"v{i}"): 50.0 + i for i in range(6)}
    same = paired_test(a, dict(a))
    assert (same["t_p"], same["wilcoxon_p"], same["difference"]) == (1.0, 1.0, 0.0)
    shifted = paired_test(a, {k: v - 2.0 for k, v in a.items()})  # no spread: t is infinite
    assert shifted["t_p"] == 0.0 and shifted["difference"] == pytest.approx(2.0)
    assert shifted["wilcoxon_p"] == pytest.approx(2 / 2**6)  # exact: only all-positive or all-negative
    assert paired_test(a, {(0, "v0"): 1.0}) is None


def test_a_variant_with_too_few_pairs_gets_a_row_and_stays_out_of_the_family():
    def run(variant, per_video):
        return {"variant": variant, "seed": 0, "tag": "", "joint": False, "per_video": per_video}

    videos = {f"v{i}": 60.0 + i for i in range(8)}
    runs = [
        run("full", videos),
        run("cross_attention", {q: v - 1 - 0.1 * (i % 3) for i, (q, v) in enumerate(videos.items())}),
        run("no_temporal_diffusion", {"v0": 1.0}),
    ]
    from transformers_rdmf.training.significance import significance_lines

    lines = significance_lines(runs, "full", ["full", "cross_attention", "no_temporal_diffusion"])
    assert lines[0].endswith("Holm p (of 1) |")
    assert lines[2].startswith(
        "| no_temporal_diffusion | fewer than 2 shared (seed, video) pairs: not tested"
    )
    assert lines[3].startswith("| cross_attention | 8 (1 seed) |")


def test_the_last_per_video_file_is_the_latest_epoch_by_number(tmp_path):
    (tmp_path / "eval").mkdir()
    for epoch in (2, 999, 1000):  # by name, epoch_999 would sort after epoch_1000
        per_video_scores_path(tmp_path, epoch).write_text(json.dumps({"GA": {"v": float(epoch)}}))
    assert last_per_video_scores(tmp_path) == {"GA": {"v": 1000.0}}
    assert last_per_video_scores(tmp_path / "nowhere") == {}


def test_holm_adjustment_by_hand():
    # sorted 0.01 < 0.02 < 0.04 < 0.30: times 4, 3, 2, 1 = 0.04, 0.06, 0.08, 0.30, kept non-decreasing
    assert holm_adjusted([0.04, 0.30, 0.01, 0.02]) == pytest.approx([0.08, 0.30, 0.04, 0.06])
    # 0.03 x 2 = 0.06 > 0.05 x 1: the larger p takes the running maximum; capped at 1
    assert holm_adjusted([0.05, 0.03]) == pytest.approx([0.06, 0.06])
    assert holm_adjusted([0.6, 0.9]) == pytest.approx([1.0, 1.0])


def cv_result(variant, seed, domain, fold, score, per_video_shift=0.0):
    return {
        "dataset": "tvsum", "data_root": "/nowhere", "variant": variant, "domain": domain, "seed": seed,
        "fold": None, "folds": 0, "tag": "", "joint": True, "cv_fold": fold, "seconds": 10.0,
        "curve": [[1, score - 5], [2, score]], "best": score, "best_step": 2, "final": score,
        "per_video": {f"{domain}{fold}": score + per_video_shift},
    }  # fmt: skip


def test_cv_runs_are_gathered_per_category_and_the_report_tests_the_ablation(tmp_path):
    results = {}
    rng = np.random.default_rng(0)
    for seed in range(3):
        for domain in DOMAINS:
            for fold in range(CV_FOLDS):
                score = 60 + 10 * rng.random()
                for variant, shift in (("full", 0.0), ("cross_attention", -3.0 + rng.normal(0, 0.5))):
                    run = cv_result(variant, seed, domain, fold, score + shift)
                    results[job_key(run)] = run
    del results[job_key(cv_result("full", 2, "VU", 4, 0))]  # an incomplete group: left out
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))

    # "train_fold": the train-fold score, where one exists
    selected = with_fold_selection(list(results.values()))
    runs = gathered_cv(selected)
    ga = [r for r in runs if r["variant"] == "full" and r["seed"] == 0 and r["domain"] == "GA"][0]
    folds = [results[job_key(cv_result("full", 0, "GA", f, 0))]["final"] for f in range(CV_FOLDS)]
    assert ga["final"] == pytest.approx(np.mean(folds)) and len(ga["per_video"]) == CV_FOLDS
    assert "train_fold" not in ga  # no inner-fold runs: no train-fold score
    partly = [{**run, "train_fold": 99.0} if run["cv_fold"] == 0 else run for run in selected]
    ga = [r for r in gathered_cv(partly) if r["variant"] == "full" and r["seed"] == 0 and r["domain"] == "GA"]
    assert "train_fold" not in ga[0]  # one fold's train-fold score is not the category's
    every = [{**run, "train_fold": 10.0 * run["cv_fold"]} for run in selected]
    ga = [r for r in gathered_cv(every) if r["variant"] == "full" and r["seed"] == 0 and r["domain"] == "GA"]
    assert ga[0]["train_fold"] == pytest.approx(20.0)  # the mean of 0, 10, 20, 30, 40
    assert not [r for r in runs if r["variant"] == "full" and r["seed"] == 2 and r["domain"] == "VU"]
    text = highlight_report([path])
    line = [row for row in text.splitlines() if row.startswith("| cross_attention (CV, joint)")][-1]
    cells = [cell.strip() for cell in line.split("|")]
    assert cells[2] == "145 (3 seeds)"  # 3 x 50 pairs, less the incomplete group's 5 videos
    assert float(cells[5]) == pytest.approx(3.0, abs=0.2) and "full (CV, joint) better" in cells[8]
    assert float(cells[9]) == pytest.approx(max(float(cells[6]), float(cells[7])))  # a family of one


def test_one_model_per_category_is_tested_against_the_joint_model_of_the_same_recipe(tmp_path):
    """The two settings score the same videos: the report pairs them video by video, under the same tag
    and protocol only, in a table of its own."""
    rng = np.random.default_rng(1)
    results, gaps = {}, []
    for seed in range(2):
        for domain in DOMAINS:
            for fold in range(CV_FOLDS):
                score = 50 + 20 * rng.random()
                gap = 4.0 + rng.normal(0, 1.0)
                gaps.append(gap)
                for joint, value in ((True, score), (False, score + gap)):
                    run = {**cv_result("full", seed, domain, fold, value), "joint": joint}
                    results[job_key(run)] = run
    tagged = {**cv_result("full", 0, "GA", 0, 99.0), "joint": False, "tag": "lr 3e-4"}
    results[job_key(tagged)] = tagged  # no joint "lr 3e-4": not paired
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    runs = [
        {"variant": "full", "tag": tag, "joint": joint, "cv_fold": cv}
        for tag, joint, cv in (("", False, 0), ("", True, 0), ("", True, None), ("a", False, None), ("a", True, None), ("b", False, None))
    ]  # fmt: skip
    labels = ["full (CV)", "full (CV, joint)", "full (joint)", "full (a)", "full (joint, a)", "full (b)"]
    assert setting_comparisons(runs, labels) == [
        ("full (CV)", "full (CV, joint)"),
        ("full (a)", "full (joint, a)"),
    ]
    text = highlight_report([path])
    table = text.split("**Paired tests")[-1]
    assert table.startswith(", last evaluation (fixed schedule), every (seed, video) pair: full (CV), one")
    (row,) = [line for line in table.splitlines() if line.startswith("| full (CV, joint) |")]
    cells = [cell.strip() for cell in row.split("|")]
    assert cells[2] == "100 (2 seeds)"  # 2 seeds x 50 videos
    assert float(cells[5]) == pytest.approx(np.mean(gaps), abs=0.005)
    assert "full (CV) better" in cells[8]


def test_a_run_records_the_score_of_every_video_it_evaluated(shared_data):
    """A real (tiny) YouTube Highlights run on dog: each of its 17 val videos, the one the jsonl release
    lacks too, gets its AP, recomputed here from the run's predictions; their mean is the logged mAP.
    Its predictions carry saliency alone: no windows from the moment head it never trained, and no warning
    about them at each evaluation."""
    from transformers_rdmf.data import load_youtube_highlights
    from transformers_rdmf.metrics.highlight_detection import youtube_video_ap

    root = shared_data / "youtube_highlights"
    job = {
        "dataset": "youtube_highlights", "data_root": str(root), "variant": "full", "domain": "dog",
        "seed": 0, "epochs": 1, "eval_every": 1, "learning_rate": 1e-3, "batch_size": 8,
        "overrides": {"hidden_size": 32, "num_attention_heads": 2, "num_moment_queries": 4},
        "training": {}, "threads": 1, "fold": None, "folds": 0, "tag": "", "joint": False,
    }  # fmt: skip
    captured = {}
    original = last_per_video_scores

    def keep_predictions(output_dir):
        captured["predictions"] = [
            json.loads(line)
            for line in (output_dir / "eval" / "epoch_001_preds.jsonl").read_text().splitlines()
        ]
        return original(output_dir)

    import transformers_rdmf.training.sweep as sweep
    import transformers_rdmf.training.tracking as tracking

    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        patch.setattr(tracking, "last_per_video_scores", keep_predictions)
        (run,) = sweep.run_one(job)
    assert not [w for w in caught if "moment head was not trained" in str(w.message)]
    assert all("pred_relevant_windows" not in prediction for prediction in captured["predictions"])
    videos = load_youtube_highlights(root, "val", "dog")
    labels = {row["qid"]: np.array(row["saliency_target"]) for row in videos}
    released = {
        json.loads(line)["qid"]
        for line in (root / "youtube_highlight_val_release.jsonl").open()
        if line.strip()
    }
    assert len(labels) == 17 and len(set(labels) - released) == 1
    assert set(run["per_video"]) == set(labels)
    for prediction in captured["predictions"]:
        expected = 100 * youtube_video_ap(
            np.array(prediction["pred_saliency_scores"]), labels[prediction["qid"]]
        )
        assert run["per_video"][prediction["qid"]] == pytest.approx(expected, abs=1e-3)
    assert float(np.mean(list(run["per_video"].values()))) == pytest.approx(run["final"], abs=0.01)


def test_the_report_prints_the_selection_baseline_and_a_plot(shared_data, tmp_path):
    results = {}
    for seed in range(2):
        for domain in DOMAINS:
            run = cv_result("full", seed, domain, 0, 70.0) | {
                "cv_fold": None,
                "data_root": str(shared_data / "tvsum"),
                "joint": False,
            }
            run["curve"] = [[step, 60.0 + step % 7] for step in range(1, 11)]
            results[job_key(run)] = run
    path = tmp_path / "r.json"
    path.write_text(json.dumps(results))
    text = highlight_report([path], plot=tmp_path / "spread.png", baseline_repeats=40)
    line = [row for row in text.splitlines() if row.startswith("| random rankings, best of 10")]
    assert len(line) == 1
    mean = float(line[0].split("|")[-4])
    assert 55 < mean < 80  # random top-5 AP is about 44-50; the best of 10 draws lies well above it
    assert (tmp_path / "spread.png").stat().st_size > 5000


def test_recipe_tags_are_tested_against_their_parent_recipe_and_ablations_within_their_tag(tmp_path):
    results, rng = {}, np.random.default_rng(1)
    for seed in range(2):
        for domain in ("dog", "gymnastics"):
            videos = {f"{domain}{i}": 60 + 10 * rng.random() for i in range(6)}
            for variant, tag, shift in (
                ("full", "", 0.0),
                ("cross_attention", "", -1.0),
                ("full", "margin", 2.0),
                ("cross_attention", "margin", 1.0),
                ("full", "margin, lr 3e-4", 3.5),
            ):
                run = {
                    "dataset": "youtube_highlights", "data_root": "/nowhere", "variant": variant,
                    "domain": domain, "seed": seed, "fold": None, "folds": 0, "tag": tag, "joint": False,
                    "seconds": 1.0, "curve": [[1, 60.0]], "best": 60.0, "best_step": 1, "final": 60.0,
                    "per_video": {q: v + shift + rng.normal(0, 0.1) for q, v in videos.items()},
                }  # fmt: skip
                results[job_key(run)] = run
    path = tmp_path / "r.json"
    path.write_text(json.dumps(results))
    tables = highlight_report([path]).split("**Paired tests")[1:]
    rows = {
        table.split("**")[0].split(": ")[-1]: [
            [cell.strip() for cell in line.split("|")[1:-1]]
            for line in table.splitlines()
            if line.startswith("| ")
        ][1:]  # the header
        for table in tables
    }
    assert {name: [row[0] for row in table] for name, table in rows.items()} == {
        "full": ["full (margin)", "cross_attention"],  # not "margin, lr 3e-4": two changes away
        "full (margin)": ["full (margin, lr 3e-4)", "cross_attention (margin)"],
    }
    # 24 pairs (2 seeds x 12 videos); the shifts come back as the differences
    assert [(row[1], float(row[4])) for row in rows["full"]] == [
        ("24 (2 seeds)", pytest.approx(-2.0, abs=0.1)),
        ("24 (2 seeds)", pytest.approx(1.0, abs=0.1)),
    ]
    assert "full worse" in rows["full"][0][7]
    assert [float(row[4]) for row in rows["full (margin)"]] == [
        pytest.approx(-1.5, abs=0.1),
        pytest.approx(1.0, abs=0.1),
    ]
    assert "full (margin) worse" in rows["full (margin)"][0][7]
    # the Holm column adjusts the larger p of each row over the table's family of two
    header = [line for line in tables[0].splitlines() if line.startswith("| full vs")][0]
    assert header.rstrip(" |").endswith("Holm p (of 2)")
    larger = [max(float(row[5]), float(row[6])) for row in rows["full"]]
    assert [float(row[8]) for row in rows["full"]] == pytest.approx(holm_adjusted(larger), rel=1e-2)
    assert holm_adjusted(larger) != pytest.approx(larger)  # a family of two changes something


def test_the_cross_validation_example_of_the_training_docs_runs_and_scores_every_video(
    shared_data, repo_root, tmp_path, monkeypatch, capsys
):
    text = (repo_root / "docs" / "training.md").read_text()
    section = text.split("## Highlight detection: cross-validation")[1]
    code = section.split("```python\n")[1].split("```")[0]
    shortened = code.replace("num_epochs=200,", "num_epochs=2,").replace(
        "eval_every_epochs=10,", "eval_every_epochs=1,"
    )
    shortened = shortened.replace('"../shared/data/tvsum"', repr(str(shared_data / "tvsum")))
    assert shortened.count("num_epochs=2,") == shortened.count("eval_every_epochs=1,") == 1
    assert str(shared_data) in shortened
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(shortened, "docs/training.md", "exec"), namespace)
    ga = {
        vid
        for name in ("tvsum_train_release.jsonl", "tvsum_val_release.jsonl")
        for domain, vid in vids(shared_data / "tvsum" / name)
        if domain == "GA"
    }
    assert set(namespace["per_video"]) == ga and len(ga) == 5  # each GA video tested once
    assert len(namespace["fixed"]) == len(namespace["best"]) == 5
    # a fold's eval top-5 mAP is its one test video's AP, read from the per-video file (rounded to 1e-4)
    assert np.mean(namespace["fixed"]) == pytest.approx(
        np.mean(list(namespace["per_video"].values())), abs=1e-3
    )
    assert all(b >= f for b, f in zip(namespace["best"], namespace["fixed"]))
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert (
        printed
        == f"GA: fixed schedule {np.mean(namespace['fixed']):.2f}, best val {np.mean(namespace['best']):.2f}"
    )


def test_a_recipe_tag_without_its_parent_is_tested_against_the_nearest_recipe_it_builds_on():
    assert nearest_parent_tag("a, b, c", {"", "a"}) == "a"
    assert nearest_parent_tag("a, b, c", {"", "a", "a, b"}) == "a, b"
    assert nearest_parent_tag("a, b", {""}) == ""
    assert nearest_parent_tag("a, b", set()) is None and nearest_parent_tag("", {""}) is None
    runs = [
        {"variant": variant, "tag": tag, "joint": joint}
        for variant, tag, joint in (
            ("full", "", False),
            ("full", "lr 3e-4, batch 8", False),  # "lr 3e-4" was never run
            ("full", "margin", False),
            ("full", "margin, lr 3e-4, batch 8", False),  # "margin, lr 3e-4" neither
            ("full", "lr 3e-4", True),  # a joint model: another setting, no untagged joint run
        )
    ]
    labels = [
        "full",
        "full (lr 3e-4, batch 8)",
        "full (margin)",
        "full (margin, lr 3e-4, batch 8)",
        "full (joint, lr 3e-4)",
    ]
    assert dict(comparisons(runs, labels)) == {
        "full": ["full (lr 3e-4, batch 8)", "full (margin)"],
        "full (lr 3e-4, batch 8)": [],
        "full (margin)": ["full (margin, lr 3e-4, batch 8)"],
        "full (margin, lr 3e-4, batch 8)": [],
        "full (joint, lr 3e-4)": [],
    }


def test_a_per_category_cv_run_reads_its_epoch_from_its_own_inner_folds_only():
    """One model per category: the epoch of a (category, outer fold) is the best of the mean held-out
    curve of that category's four inner runs in that outer fold; other categories, outer folds and
    seeds have their own and do not move it."""
    rng = np.random.default_rng(4)

    def run(domain, cv_fold, seed, fold, curve):
        return {
            **cv_result("full", seed, domain, cv_fold, curve[-1]),
            "joint": False, "fold": fold, "folds": 4 if fold is not None else 0,
            "curve": [[10 * (i + 1), v] for i, v in enumerate(curve)],
        }  # fmt: skip

    outer = [10.0, 20.0, 30.0, 40.0, 50.0]
    inner = [
        [1.0, 9.0, 2.0, 3.0, 4.0],
        [2.0, 6.0, 1.0, 5.0, 3.0],
        [3.0, 5.0, 4.0, 9.0, 1.0],
        [1.0, 8.0, 2.0, 2.0, 2.0],
    ]
    # held-out means 1.75, 7.0, 2.25, 4.75, 2.5: the second evaluation, where the outer run scores 20
    results = [run("GA", 2, 0, None, outer)] + [run("GA", 2, 0, f, c) for f, c in enumerate(inner)]
    for domain, cv_fold, seed in (("BK", 2, 0), ("GA", 1, 0), ("GA", 2, 1)):  # neighbours peaking last
        results += [run(domain, cv_fold, seed, f, [*rng.random(4), 100.0]) for f in range(4)]
    selected = {(r["domain"], r["cv_fold"], r["seed"]): r for r in with_fold_selection(results)}
    assert selected[("GA", 2, 0)]["train_fold"] == 20.0
    assert all("fold" not in r for r in selected.values())  # the inner runs are not runs of the table
