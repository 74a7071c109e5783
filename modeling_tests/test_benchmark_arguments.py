"""scripts/benchmark*.py refuse bad input in one line (``PROG: error: ...``), exit 2, before any measurement.

Every topic's ``benchmark`` is replaced by a failing stand-in: a refusal must come from the options alone,
and nothing below ``tmp_path`` may change. No test measures anything.
"""

import importlib
import json

import pytest

from .conftest import REPO_ROOT

SHARED = "expected the shared data folder (../shared/data beside the checkout, or $RDMF_DATA_DIR)"


@pytest.fixture
def scripts(monkeypatch):
    """The benchmark scripts as modules, each topic's measurement a failure."""
    monkeypatch.syspath_prepend(str(REPO_ROOT / "scripts"))
    topics = importlib.import_module("benchmark").TOPICS
    modules = {topic: importlib.import_module(f"benchmark_{topic}") for topic in topics}
    for module in modules.values():
        monkeypatch.setattr(module, "benchmark", lambda args: pytest.fail("a measurement started"))
    modules["benchmark"] = importlib.import_module("benchmark")
    return modules


@pytest.fixture
def paths(tmp_path):
    """A stand-in data folder, a plain file, an existing JSON file; the format keys of the cases."""
    data = tmp_path / "data"
    for relative in (
        "qvhighlights/highlight_val_release.jsonl",
        "qvhighlights/highlight_train_release.jsonl",
        "conformance/qvhighlights/a.jsonl",
        "examples/charades.mp4",
    ):
        (data / relative).parent.mkdir(parents=True, exist_ok=True)
        (data / relative).write_text("")
    (tmp_path / "file").write_text("")
    (tmp_path / "old.json").write_text("{}")
    return {"tmp": tmp_path, "data": data}


def snapshot(root):
    return sorted((str(path), path.is_dir() or path.read_bytes()) for path in root.rglob("*"))


def refuse(main, argv, capsys, root):
    """``main(argv)``'s one stderr line; asserts exit 2, no traceback, and nothing changed below ``root``."""
    before = snapshot(root)
    try:
        status = main(argv)
    except SystemExit as stop:  # argparse's own errors exit through OneLineParser
        status = stop.code
    captured = capsys.readouterr()
    assert status == 2, captured
    assert "Traceback" not in captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert snapshot(root) == before
    return lines[0]


SCALE = "benchmark_scale.py: error: "
CLIPS = "--clips: expected increasing positive integers separated by commas (75,300,1200), got "
CASES = [
    ("scale", ["--clips", "abc"], SCALE + CLIPS + "'abc'"),
    ("scale", ["--clips", "0,-5"], SCALE + CLIPS + "'0,-5'"),
    ("scale", ["--clips", "300,75"], SCALE + CLIPS + "'300,75'"),
    ("scale", ["--clips", "75,75"], SCALE + CLIPS + "'75,75'"),
    ("scale", ["--threads", "0"], SCALE + "--threads: expected a positive integer, got 0"),
    ("scale", ["--threads", "x"], SCALE + "argument --threads: invalid int value: 'x'"),
    ("scale", ["--min-repeats", "0"], SCALE + "--min-repeats: expected a positive integer, got 0"),
    ("scale", ["--max-repeats", "-1"], SCALE + "--max-repeats: expected a positive integer, got -1"),
    (
        "scale",
        ["--min-repeats", "5", "--max-repeats", "2"],
        SCALE + "--max-repeats: expected at least --min-repeats (5), got 2",
    ),
    (
        "scale",
        ["--row-seconds", "0"],
        SCALE + "--row-seconds: expected a positive number of seconds, got 0.0",
    ),
    (
        "scale",
        ["--row-seconds", "nan"],
        SCALE + "--row-seconds: expected a positive number of seconds, got nan",
    ),
    (
        "scale",
        ["--max-row-seconds", "-3"],
        SCALE + "--max-row-seconds: expected a positive number of seconds, got -3.0",
    ),
    (
        "scale",
        ["--max-row-seconds", "inf"],
        SCALE + "--max-row-seconds: expected a positive number of seconds, got inf",
    ),
    (
        "scale",
        ["--max-memory-gib", "0"],
        SCALE + "--max-memory-gib: expected a positive number of GiB, got 0.0",
    ),
    (
        "scale",
        ["--max-memory-gib", "nan"],
        SCALE + "--max-memory-gib: expected a positive number of GiB, got nan",
    ),
    (
        "scale",
        ["--tables", "foo"],
        SCALE + "--tables: unknown table 'foo'; known: fusion, model, ten_hours, gpu",
    ),
    (
        "scale",
        ["--tables", "fusion,gpus"],
        SCALE + "--tables: unknown table 'gpus'; known: fusion, model, ten_hours, gpu",
    ),
    ("scale", ["--json", "{tmp}"], SCALE + "--json: {tmp} is a folder; give the path of a file to write"),
    (
        "scale",
        ["--json", "{tmp}/old.json"],
        SCALE + "--json: {tmp}/old.json exists; pass --overwrite to replace it, or write elsewhere",
    ),
    ("scale", ["--json", "{tmp}/file/r.json"], SCALE + "--json: cannot write to {tmp}/file ("),
    (  # the other checks come first: no folder is made for a --json when an option is refused
        "scale",
        ["--json", "{tmp}/new/r.json", "--threads", "0"],
        SCALE + "--threads: expected a positive integer, got 0",
    ),
    ("scale", ["--bogus"], SCALE + "unrecognized arguments: --bogus"),
    (
        "benchmark",
        ["--topics", "foo"],
        "benchmark.py: error: unknown topic 'foo'; known: model, metrics, data, extraction, video, scale",
    ),
    (  # every topic's options are checked before the first topic measures
        "benchmark",
        ["--topics", "model,scale", "--", "--max-repeats", "0"],
        SCALE + "--max-repeats: expected a positive integer, got 0",
    ),
    (  # an option no selected topic knows, a typo included, is refused before any topic measures
        "benchmark",
        ["--topics", "model,scale", "--", "--workers", "2"],
        "benchmark.py: error: after --: --workers is an option of no selected topic (model, scale)",
    ),
    (
        "benchmark",
        ["--topics", "data,video", "--", "--batchsize", "0"],
        "benchmark.py: error: after --: --batchsize is an option of no selected topic (data, video)",
    ),
    (  # never read as an abbreviation of extraction's --videos
        "benchmark",
        ["--topics", "video,extraction", "--", "--video", "{tmp}/missing.mp4"],
        "benchmark_video.py: error: --video {tmp}/missing.mp4: no such file; expected a video file",
    ),
    ("model", ["--bogus", "x"], "benchmark_model.py: error: unrecognized arguments: --bogus x"),
    (
        "video",
        ["--frames_per_clip", "0"],
        "benchmark_video.py: error: unrecognized arguments: --frames_per_clip 0",
    ),
    ("data", ["--batch", "0"], "benchmark_data.py: error: unrecognized arguments: --batch 0"),
    (
        "benchmark",
        ["--topics", "video,data", "--", "--workers", "-1"],
        "benchmark_data.py: error: --workers: expected a number of workers >= 0, got -1",
    ),
    (
        "benchmark",
        ["--topics", "metrics", "--", "--repeats", "x"],
        "benchmark_metrics.py: error: argument --repeats: invalid int value: 'x'",
    ),
    (
        "data",
        ["--workers", "-1"],
        "benchmark_data.py: error: --workers: expected a number of workers >= 0, got -1",
    ),
    (
        "data",
        ["--batch-size", "0"],
        "benchmark_data.py: error: --batch-size: expected a positive integer, got 0",
    ),
    (
        "data",
        ["--limit", "0"],
        "benchmark_data.py: error: --limit: expected at least 4 queries (a quarter of them is run too), got 0",
    ),
    (
        "data",
        ["--data-dir", "{tmp}/nope"],
        "benchmark_data.py: error: --data-dir {tmp}/nope: no qvhighlights/highlight_train_release.jsonl "
        "there; " + SHARED,
    ),
    (
        "data",
        ["--data-dir", "{data}", "--tmp-dir", "{tmp}/file/sub"],
        "benchmark_data.py: error: --tmp-dir: cannot write to {tmp}/file/sub (",
    ),
    (
        "metrics",
        ["--repeats", "0"],
        "benchmark_metrics.py: error: --repeats: expected a positive integer, got 0",
    ),
    (
        "metrics",
        ["--process_repeats", "-2"],
        "benchmark_metrics.py: error: --process_repeats: expected a positive integer, got -2",
    ),
    (
        "metrics",
        ["--data", "{tmp}/nope"],
        "benchmark_metrics.py: error: --data {tmp}/nope: no qvhighlights/highlight_val_release.jsonl there; "
        + SHARED,
    ),
    (
        "metrics",
        ["--data", "{data}", "--predictions", "b.jsonl"],
        "benchmark_metrics.py: error: --predictions 'b.jsonl': no such file in "
        "{data}/conformance/qvhighlights; known: a.jsonl",
    ),
    (
        "metrics",
        ["--data", "{data}", "--predictions", "a.jsonl", "--official_eval", "{tmp}"],
        "benchmark_metrics.py: error: --official_eval {tmp}: no standalone_eval/eval.py there; "
        "expected a folder holding moment_detr's standalone_eval/",
    ),
    (
        "extraction",
        ["--videos", "0"],
        "benchmark_extraction.py: error: --videos: expected a positive integer, got 0",
    ),
    (
        "extraction",
        ["--data-dir", "{tmp}/nope"],
        "benchmark_extraction.py: error: --data-dir {tmp}/nope: no examples/charades.mp4 there; " + SHARED,
    ),
    ("video", ["--repeats", "0"], "benchmark_video.py: error: --repeats: expected a positive integer, got 0"),
    (
        "video",
        ["--frames-per-clip", "0"],
        "benchmark_video.py: error: --frames-per-clip: expected a positive integer, got 0",
    ),
    (
        "video",
        ["--video", "{tmp}/missing.mp4"],
        "benchmark_video.py: error: --video {tmp}/missing.mp4: no such file; expected a video file",
    ),
]


@pytest.mark.parametrize(("script", "argv", "expect"), CASES, ids=[f"{s} {' '.join(a)}" for s, a, _ in CASES])
def test_a_bad_option_is_refused_in_one_line_before_any_measurement(
    script, argv, expect, scripts, paths, capsys
):
    argv = [part.format(**paths) for part in argv]
    line = refuse(scripts[script].main, argv, capsys, paths["tmp"])
    assert line.startswith(expect.format(**paths))
    if not expect.endswith("("):  # a message with the OS's own words is checked by its start
        assert line == expect.format(**paths)


def test_the_documented_options_pass_the_checks(scripts, paths):
    scale = scripts["scale"].parse_args(["--quick", "--json", str(paths["tmp"] / "old.json"), "--overwrite"])
    assert (scale.clips, scale.min_repeats, scale.max_repeats) == ([75, 1200], 1, 1)
    assert scale.tables == {"fusion", "model", "ten_hours", "gpu"}
    assert scripts["scale"].parse_args(["--clips", "75,300", "--tables", "fusion"]).clips == [75, 300]
    assert scripts["data"].parse_args(["--data-dir", str(paths["data"]), "--workers", "0"]).workers == 0
    video = scripts["video"].parse_args(["--workers", "2"], alongside=True)  # as benchmark.py reads it
    assert video.video.name == "charades.mp4" and video.unknown_options == ["--workers"]
    assert (paths["tmp"] / "old.json").read_text() == "{}"


def test_the_scale_json_is_what_plot_scale_reads(paths, monkeypatch, capsys):
    """Written once the rows are measured (here two stand-in rows), atomically, in plot_scale.py's shape."""
    row = {"table": "fusion", "variant": "RD fusion (fused, default)", "batch": 1, "backward": False}
    rows = [{**row, "clips": clips, "status": "ok", "seconds": 0.01 * clips, "peak_mib": 1.0 * clips,
             "load_1min": 1.0} for clips in (75, 1200)]  # fmt: skip
    monkeypatch.syspath_prepend(str(REPO_ROOT / "scripts"))
    scale = importlib.import_module("benchmark_scale")
    monkeypatch.setattr(scale, "fusion_rows", lambda args: rows)
    out = paths["tmp"] / "new" / "scale.json"
    assert scale.main(["--quick", "--tables", "fusion", "--json", str(out)]) == 0
    written = json.loads(out.read_text())
    assert set(written) == {"machine", "rows"} and written["rows"] == rows
    assert [path.name for path in out.parent.iterdir()] == ["scale.json"]  # no temporary left
    plot_scale = importlib.import_module("plot_scale")
    assert plot_scale.main(["--results", str(out), "--out", str(paths["tmp"] / "scale.png")]) == 0
    capsys.readouterr()


def test_the_documented_benchmark_command_reaches_the_measurement(scripts, paths, monkeypatch, capsys):
    """docs/performance.md's command, its measurement a stand-in: every check passes, nothing is written."""
    measured = []
    monkeypatch.setattr(scripts["scale"], "benchmark", measured.append)
    out = paths["tmp"] / "old.json"
    argv = ["--topics", "scale", "--", "--json", str(out), "--overwrite"]
    assert scripts["benchmark"].main(argv) == 0, capsys.readouterr().err
    assert [(args.json, args.overwrite, args.unknown_options) for args in measured] == [(out, True, [])]
    assert out.read_text() == "{}"
