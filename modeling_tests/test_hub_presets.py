"""hub_configs/: every preset builds a valid model, and its documented features agree with the data loaders."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from transformers_rdmf import RDMFConfig, RDMFForMomentRetrieval, list_presets
from transformers_rdmf.data import (
    DEFAULT_CLIP_LENGTHS,
    YOUTUBE_HIGHLIGHTS_DOMAINS,
    DomainQueryEncoder,
    TextFeatureReader,
    standard_video_reader,
    tvsum_text_reader,
    tvsum_video_reader,
    youtube_highlights_video_reader,
)
from transformers_rdmf.dataset_specs import DATASETS as ALL_DATASETS
from transformers_rdmf.dataset_specs import HIGHLIGHT_DATASETS, MOMENT_DATASETS, dataset_spec
from transformers_rdmf.hub import DATASETS, load_preset
from transformers_rdmf.presets import read_preset
from transformers_rdmf.training import (
    PRESET_PROTOCOL_KEYS,
    RDMFTrainingArguments,
    arguments_from_namespace,
    build_dataset,
    build_train_parser,
    check_preset_training,
    command_line_for,
    train_main,
)

REQUIRED_PRESETS = {
    "qvhighlights_clip_slowfast",
    "charades_sta_clip_slowfast",
    "activitynet_captions_clip_slowfast",
    "tvsum_i3d",
    "youtube_highlights_i3d",
}
LAYOUTS = ("moment_detr", "tvsum", "youtube_highlights", "raw_video")
PRESETS = list_presets()


def presets_of_layout(layout: str) -> list[str]:
    return [name for name in PRESETS if load_preset(name).features["layout"] == layout]


@pytest.fixture(scope="module")
def models() -> dict[str, RDMFForMomentRetrieval]:
    torch.manual_seed(0)
    return {name: RDMFForMomentRetrieval(RDMFConfig.from_preset(name)).eval() for name in PRESETS}


def run_on(model: RDMFForMomentRetrieval, video: np.ndarray, text: np.ndarray):
    with torch.no_grad():
        return model(torch.from_numpy(video)[None], torch.from_numpy(text)[None])


def test_the_published_checkpoint_kinds_all_have_a_preset():
    assert REQUIRED_PRESETS <= set(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_builds_a_model_that_validates_and_runs(name, models):
    config = RDMFConfig.from_preset(name)
    config.validate_architecture()
    assert RDMFConfig.from_dict(config.to_dict()).to_dict() == config.to_dict()
    outputs = run_on(
        models[name],
        np.random.default_rng(0).standard_normal((7, config.video_feature_dim), dtype=np.float32),
        np.random.default_rng(1).standard_normal((3, config.text_feature_dim), dtype=np.float32),
    )
    assert outputs.pred_spans.shape == (1, config.num_moment_queries, 2)
    assert outputs.saliency_logits.shape == (1, 7)
    assert torch.isfinite(outputs.scores).all()


@pytest.mark.parametrize("name", PRESETS)
def test_preset_documents_its_features_and_training(name):
    preset = load_preset(name)
    assert preset.description
    assert preset.features["layout"] in LAYOUTS
    assert set(preset.training) >= {
        "dataset",
        "learning_rate",
        "batch_size",
        "num_epochs",
        "early_stopping_metric",
    }
    streams = preset.features["video_streams"]
    optional = preset.features.get("optional_streams", {}) if preset.features.get("audio") else {}
    assert sum(streams.values()) + sum(optional.values()) == preset.config["video_feature_dim"]
    assert list(preset.features["text_stream"].values()) == [preset.config["text_feature_dim"]]
    dataset = preset.training["dataset"]
    if dataset != "custom":
        assert dataset in DATASETS
        assert preset.features["clip_length"] == DEFAULT_CLIP_LENGTHS[dataset]


@pytest.mark.parametrize("name", [n for n in PRESETS if load_preset(n).training["dataset"] != "custom"])
def test_early_stopping_metric_is_one_the_evaluation_writes(name, shared_data):
    preset = load_preset(name)
    dataset = preset.training["dataset"]
    written = set(DATASETS[dataset].required_metrics)
    if dataset == "qvhighlights":
        metrics = shared_data / "conformance/qvhighlights/qddetr_sf+clip_val_preds_metrics.json"
        written = set(json.loads(metrics.read_text())["brief"])
    assert preset.training["early_stopping_metric"] in written


@pytest.mark.parametrize("name", presets_of_layout("moment_detr"))
def test_moment_detr_layout_widths_match_the_standard_reader(name, models, tmp_path):
    """Write one video per stream at the documented widths; the reader's output fits the model."""
    preset = load_preset(name)
    streams = preset.features["video_streams"]
    rng = np.random.default_rng(0)
    for stream, width in streams.items():
        (tmp_path / stream).mkdir()
        np.savez(tmp_path / stream / "v1.npz", features=rng.standard_normal((9, width)).astype(np.float32))
    (text_width,) = preset.features["text_stream"].values()
    np.savez(tmp_path / "qid7.npz", last_hidden_state=rng.standard_normal((4, text_width)).astype(np.float32))

    reader = standard_video_reader([tmp_path / s for s in streams], dims=list(streams.values()))
    video, _ = reader.read("v1", num_labels=9)
    text = TextFeatureReader(tmp_path, dim=text_width).read({"qid": 7}).tokens
    assert reader.dim == video.shape[1] == models[name].config.video_feature_dim
    assert text.shape[1] == models[name].config.text_feature_dim
    assert run_on(models[name], video, text).saliency_logits.shape == (1, 9)


def first_example(path) -> dict:
    return json.loads(path.read_text().splitlines()[0])


def test_tvsum_preset_matches_the_real_tvsum_features(models, shared_data):
    preset, root = load_preset("tvsum_i3d"), shared_data / "tvsum"
    example = first_example(root / "tvsum_val_release.jsonl")
    reader = tvsum_video_reader(root, audio=preset.features["audio"])
    video, _ = reader.read(example["vid"], num_labels=len(example["label"]))
    text = tvsum_text_reader(root).read(example).tokens
    config = models["tvsum_i3d"].config
    assert reader.dim == video.shape[1] == config.video_feature_dim
    assert text.shape[1] == config.text_feature_dim
    assert run_on(models["tvsum_i3d"], video, text).saliency_logits.shape == (1, video.shape[0])
    with_audio = tvsum_video_reader(root, audio=True)
    assert with_audio.dim == config.video_feature_dim + sum(preset.features["optional_streams"].values())


def test_youtube_highlights_preset_matches_the_real_features_and_domain_queries(models, shared_data):
    preset, root = load_preset("youtube_highlights_i3d"), shared_data / "youtube_highlights"
    example = first_example(root / "youtube_highlight_val_release.jsonl")
    reader = youtube_highlights_video_reader(root)
    video, _ = reader.read(example["vid"], num_labels=len(example["label"]))
    config = models["youtube_highlights_i3d"].config
    assert config.text_feature_dim >= len(YOUTUBE_HIGHLIGHTS_DOMAINS)
    text = DomainQueryEncoder(dim=config.text_feature_dim).read(example).tokens
    assert reader.dim == video.shape[1] == config.video_feature_dim
    assert text.shape == (1, config.text_feature_dim) == (1, *preset.features["text_stream"].values())
    assert run_on(models["youtube_highlights_i3d"], video, text).saliency_logits.shape == (1, video.shape[0])


def test_an_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match="known presets: .*tvsum_i3d.*youtube_highlights_i3d"):
        RDMFConfig.from_preset("tvsum")


def test_preset_files_are_plain_json_objects_and_all_installed():
    repository_presets = sorted((Path(__file__).resolve().parents[1] / "hub_configs").glob("*.json"))
    assert [path.stem for path in repository_presets] == PRESETS  # the install carries the folder
    for path in repository_presets:
        assert set(json.loads(path.read_text())) == {"description", "config", "features", "training"}, path
        assert read_preset(path.stem) == read_preset(str(path)) == json.loads(path.read_text())


def test_every_preset_training_key_is_a_training_argument_or_a_protocol_fact(tmp_path, capsys):
    for name in PRESETS:
        training = read_preset(name)["training"]
        known = check_preset_training(training, name)
        assert set(training) - set(known) <= set(PRESET_PROTOCOL_KEYS), name
    preset = read_preset("tvsum_i3d")
    preset["training"]["bacth_size"] = 8  # a typo is an error, not a silently dropped key
    path = tmp_path / "typo.json"
    path.write_text(json.dumps(preset))
    assert train_main(["--output_dir", str(tmp_path / "run"), "--preset", str(path)]) == 2
    assert f"--preset {path}: unknown training key(s) ['bacth_size']" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("section", "key", "value", "expect"),
    [
        ("training", "batch_size", "abc", "training.batch_size is 'abc'; expected int"),
        ("training", "learning_rate", True, "training.learning_rate is True; expected float"),
        (
            "training",
            "video_feature_dirs",
            "features/clip",
            "training.video_feature_dirs is 'features/clip'; expected",
        ),
        ("config", "hiden_size", 64, "unknown config key(s) ['hiden_size'] (not RDMFConfig fields)"),
    ],
    ids=["a-string-batch", "a-boolean-rate", "a-string-for-a-list", "a-misspelt-config-key"],
)
def test_a_preset_value_of_the_wrong_type_or_an_unknown_config_key_is_one_line(
    section, key, value, expect, tmp_path, capsys
):
    preset = read_preset("tvsum_i3d")
    preset[section][key] = value
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(preset))
    assert train_main(["--output_dir", str(tmp_path / "run"), "--preset", str(path)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and expect in errors[0] and str(path) in errors[0], errors
    assert not (tmp_path / "run").exists()


def test_training_flags_are_typed_from_the_dataclass_and_override_the_preset():
    argv = ["--output_dir", "o", "--preset", "tvsum_i3d", "--batch-size", "3", "--max_grad_norm", "0.5"]
    argv += [
        "--video_feature_dirs",
        "a",
        "b",
        "--cpu",
        "--set=hidden_size=8",
        "--set",
        "fusion_type=cross_attention",
    ]
    args = arguments_from_namespace(build_train_parser().parse_args(argv))
    assert (args.batch_size, args.max_grad_norm, args.cpu) == (3, 0.5, True)  # int, float, bool
    assert args.video_feature_dirs == ["a", "b"]
    assert args.learning_rate == 0.001 and args.ema_decay == 0.99  # from the preset's training section
    assert args.weight_decay == RDMFTrainingArguments(output_dir="o").weight_decay  # the dataclass default
    assert args.config_overrides == {"hidden_size": 8, "fusion_type": "cross_attention"}


def test_the_rebuilt_command_line_gives_back_every_argument_over_any_preset(tmp_path):
    """`command_line_for` is the parser's inverse: switches the preset turns on come back off, values the
    preset sets come back as the run had them, and what no flag can say is an error naming the field."""
    preset = read_preset("tvsum_i3d")
    preset["training"].update({"audio": True, "cpu": True, "max_steps": 7, "max_grad_norm": 0.3})
    path = tmp_path / "preset.json"
    path.write_text(json.dumps(preset))
    from_preset = arguments_from_namespace(
        build_train_parser().parse_args(["--output_dir", "runs/x", "--preset", str(path)])
    )
    args = dataclasses.replace(
        from_preset, audio=False, cpu=False, max_steps=9, max_grad_norm=0.1, learning_rate=3e-4 / 7,
        video_feature_dirs=["a", "b c"], config_overrides={"hidden_size": 16, "fusion_type": "cross_attention"},
        disable_progress_bar=True,
    )  # fmt: skip
    values = dataclasses.asdict(args)
    argv = command_line_for(values)
    assert ["--audio", "false"] == argv[argv.index("--audio") : argv.index("--audio") + 2]
    assert "--disable_progress_bar" not in argv  # how the run was shown, not what it trained
    replayed = arguments_from_namespace(build_train_parser().parse_args(argv))
    assert replayed == dataclasses.replace(args, disable_progress_bar=False)  # exact: repr floats parse back
    with pytest.raises(
        ValueError, match=r"max_steps=None cannot be given on the command line over the preset's 7"
    ):
        command_line_for({**values, "max_steps": None})


def test_each_dataset_spec_names_a_preset_for_that_dataset_with_its_clip_length():
    for name, spec in ALL_DATASETS.items():
        preset = read_preset(spec.preset)
        assert preset["training"]["dataset"] == name, name
        assert preset["features"]["clip_length"] == spec.clip_length, name
        assert spec.has_spans == (name in MOMENT_DATASETS) != (name in HIGHLIGHT_DATASETS)
        assert set(spec.published) <= set(spec.domains), name
    assert {name for name, spec in ALL_DATASETS.items() if spec.domains} == set(HIGHLIGHT_DATASETS)
    with pytest.raises(ValueError, match="--dataset 'qvhighlight' is unknown; known: qvhighlights, "):
        dataset_spec("qvhighlight")


def test_tvsum_audio_comes_from_the_preset_or_the_flag_and_must_fit_the_width(shared_data, tmp_path):
    root = shared_data / "tvsum"
    argv = [
        "--output_dir",
        str(tmp_path),
        "--preset",
        "tvsum_i3d",
        "--data_root",
        str(root),
        "--domain",
        "GA",
    ]
    argv += ["--train_annotations", str(root / "tvsum_train_release.jsonl")]
    plain = arguments_from_namespace(build_train_parser().parse_args(argv))
    assert plain.audio is None  # the preset's features.audio (false) decides
    config = RDMFConfig.from_preset("tvsum_i3d")
    assert build_dataset(plain, "train", config).video_reader.dim == 2048
    wide = RDMFConfig.from_preset("tvsum_i3d", video_feature_dim=4096)
    with pytest.raises(ValueError, match=r"video_feature_dim=4096, but the TVSum streams without audio are "
                       r"i3d_rgb 1024 \+ i3d_opt 1024 = 2048 wide: --set video_feature_dim=2048, or --audio"):  # fmt: skip
        build_dataset(plain, "train", wide)  # a width alone no longer switches audio on
    with_audio = arguments_from_namespace(build_train_parser().parse_args([*argv, "--audio"]))
    assert with_audio.audio is True
    assert build_dataset(with_audio, "train", wide).video_reader.dim == 4096
    with pytest.raises(
        ValueError, match=r"with audio are i3d_rgb 1024 \+ i3d_opt 1024 \+ pann_audio 2048 = 4096"
    ):
        build_dataset(with_audio, "train", config)
