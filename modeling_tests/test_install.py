"""A stranger's machine: the built wheel carries what the library needs, and imports cost nothing until used.

The wheel is built from a copy of the repository (so the build leaves nothing in the checkout), installed
with ``pip install --no-deps --target`` into an empty folder, and used from another working directory, where
neither the source tree nor its ``hub_configs/`` can be reached: every preset, every ``evaluate`` module and
``rdmf predict`` on the shipped checkpoint must work from the installed files alone.
"""

import importlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from transformers_rdmf.cli import main as rdmf_main
from transformers_rdmf.metrics import EVALUATE_MODULES

REPO = Path(__file__).resolve().parents[1]
PRESETS = sorted(path.stem for path in (REPO / "hub_configs").glob("*.json"))
NOT_PART_OF_A_BUILD = shutil.ignore_patterns(
    ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache", "runs", "results"
)


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel_install(tmp_path_factory) -> dict[str, Path]:
    """``{"wheel": the .whl, "site": the folder it is installed in, "elsewhere": an empty working directory}``."""
    root = tmp_path_factory.mktemp("wheel_install")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=NOT_PART_OF_A_BUILD)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(root / "dist"), str(source)])
    (wheel,) = (root / "dist").glob("transformers_rdmf-*.whl")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            str(root / "site"),
            str(wheel),
        ]
    )
    (root / "elsewhere").mkdir()
    return {"wheel": wheel, "site": root / "site", "elsewhere": root / "elsewhere"}


def in_installed_wheel(install: dict[str, Path], command: list[str]) -> subprocess.CompletedProcess:
    """Run ``command`` from the empty working directory with the installed wheel first on the path."""
    env = {
        **os.environ,
        "PYTHONPATH": str(install["site"]),
        "HF_HOME": str(install["elsewhere"] / "hf_home"),  # evaluate copies its modules into a cache here
        "HF_HUB_OFFLINE": "1",
        "HF_EVALUATE_OFFLINE": "1",
    }
    return run(command, cwd=install["elsewhere"], env=env)


def test_the_wheel_carries_every_preset_and_evaluate_module(wheel_install):
    names = set(zipfile.ZipFile(wheel_install["wheel"]).namelist())
    for preset in PRESETS:
        assert f"transformers_rdmf/hub_configs/{preset}.json" in names
    for module in EVALUATE_MODULES:
        assert f"transformers_rdmf/metrics/evaluate_modules/{module}/{module}.py" in names
    assert "transformers_rdmf/hub/model_card_template.md" in names  # publishing renders it
    assert not any(name.startswith(("modeling_tests/", "scripts/", "examples/")) for name in names)


INSTALLED_CHECK = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import evaluate
    import transformers_rdmf
    from transformers_rdmf import RDMFConfig, list_presets, metric_path
    from transformers_rdmf.metrics import EVALUATE_MODULES, evaluate_tvsum

    site = Path(sys.argv[1]).resolve()
    assert Path(transformers_rdmf.__file__).resolve().is_relative_to(site), transformers_rdmf.__file__
    widths = {name: RDMFConfig.from_preset(name).video_feature_dim for name in list_presets()}
    modules = {name: evaluate.load(metric_path(name)).name for name in EVALUATE_MODULES}
    for path in [metric_path(name) for name in EVALUATE_MODULES]:
        assert Path(path).resolve().is_relative_to(site), path
    label = [[1 + (clip * annotator) % 5 for annotator in range(20)] for clip in range(12)]
    predictions = [{"qid": 0, "pred_saliency_scores": [float(clip % 7) for clip in range(12)]}]
    references = [{"qid": 0, "domain": "GA", "label": label}]
    tvsum = evaluate.load(metric_path("tvsum")).compute(predictions=predictions, references=references)
    assert tvsum == evaluate_tvsum(predictions, references), (tvsum, evaluate_tvsum(predictions, references))
    print(json.dumps({"presets": widths, "modules": modules}))
    """
)


def test_the_installed_wheel_loads_every_preset_and_evaluate_module_from_elsewhere(wheel_install):
    result = in_installed_wheel(
        wheel_install, [sys.executable, "-c", INSTALLED_CHECK, str(wheel_install["site"])]
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(report["presets"]) == PRESETS
    assert report["presets"]["qvhighlights_clip_slowfast"] == 2816 and report["presets"]["tvsum_i3d"] == 2048
    assert report["modules"] == {name: name for name in EVALUATE_MODULES}


def readme_predict_argv(json_path: Path) -> list[str]:
    """The README's main job (absolute paths, so it runs from any directory)."""
    features = REPO / "examples" / "tvsum"
    return [
        "predict", "--model", str(REPO / "examples" / "rdmf-tvsum-GA"),
        "--features", str(features / "Bhxk-O1Y7Ho_rgb.npy"), str(features / "Bhxk-O1Y7Ho_opt.npy"),
        "--text-features", str(features / "Bhxk-O1Y7Ho_title.npz"),
        "--query", "Vlog #509 I'M A PUPPY DOG GROOMER!", "--clip-length", "2",
        "--output", str(json_path.with_suffix(".png")), "--json", str(json_path),
    ]  # fmt: skip


def test_the_installed_wheel_runs_the_readme_prediction(wheel_install, tmp_path):
    installed = wheel_install["elsewhere"] / "installed.json"
    result = in_installed_wheel(
        wheel_install, [sys.executable, "-m", "transformers_rdmf.cli", *readme_predict_argv(installed)]
    )
    assert "top clips by saliency (seconds):" in result.stdout
    assert rdmf_main(readme_predict_argv(tmp_path / "editable.json")) == 0  # this checkout, this process
    theirs, ours = json.loads(installed.read_text()), json.loads((tmp_path / "editable.json").read_text())
    # two processes, maybe at other thread counts: saliency equal to float rounding, clips in the same order
    # unless two saliencies are closer than that
    assert [c["saliency"] for c in theirs["saliency"]] == pytest.approx(
        [c["saliency"] for c in ours["saliency"]], abs=1e-6
    )
    assert [(c["start"], c["end"]) for c in theirs["top_clips"]] == [
        (c["start"], c["end"]) for c in ours["top_clips"]
    ]


LIGHT_IMPORTS = textwrap.dedent(
    """
    import sys
    import transformers_rdmf, transformers_rdmf.metrics
    from transformers_rdmf import list_presets, metric_path
    from transformers_rdmf.metrics import evaluate_moment_retrieval, evaluate_qvhighlights, evaluate_tvsum
    from transformers_rdmf.metrics import evaluate_youtube_highlights, read_jsonl
    import transformers_rdmf.metrics.evaluate_schemas  # what the evaluate modules import of this package
    import transformers_rdmf.training.sweep  # a sweep's --report (folds, tables)
    from transformers_rdmf.metrics.qvhighlights import main
    try:
        main(["--submission_path", "missing.jsonl", "--gt_path", "missing.jsonl", "--save_path", "out.json"])
    except SystemExit as stop:
        assert stop.code == 2, stop.code
    heavy = sorted({"torch", "transformers"} & set(sys.modules))
    assert list_presets() and metric_path("tvsum")
    from transformers_rdmf import RDMFConfig  # a model name: now transformers loads and RDMF registers
    from transformers import AutoConfig
    assert type(AutoConfig.for_model("rdmf")) is RDMFConfig
    print(heavy, sorted({"torch", "transformers"} & set(sys.modules)))
    """
)


def test_the_package_and_its_metrics_import_neither_torch_nor_transformers(tmp_path):
    result = run([sys.executable, "-c", LIGHT_IMPORTS], cwd=tmp_path)
    assert result.stdout.split("\n")[-2] == "[] ['torch', 'transformers']"
    assert "error: [Errno 2] No such file or directory: 'missing.jsonl'" in result.stderr  # the CLI ran


@pytest.mark.parametrize("package", ["transformers_rdmf", "transformers_rdmf.training"])
def test_every_lazy_name_resolves(package):
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(module._LAZY_NAMES)
    for name in module.__all__:
        value = getattr(module, name)
        assert getattr(value, "__name__", name) == name  # constants (PRESET_PROTOCOL_KEYS) have no name
        assert value is getattr(importlib.import_module(f"{package}.{module._LAZY_NAMES[name]}"), name)
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError, match="has no attribute 'RDMFNothing'"):
        module.RDMFNothing  # noqa: B018
