"""Feature sets: folders -> parquet shards with a card -> the loaders, the same batches as from the folders."""

import dataclasses
import json
import re
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from transformers_rdmf.cli import main as rdmf_main
from transformers_rdmf.configuration_rdmf import RDMFConfig
from transformers_rdmf.data import FeatureError, FeatureSet
from transformers_rdmf.data.feature_sets import CARD_KEY, FEATURE_SET_FORMAT
from transformers_rdmf.data.synthetic import write_synthetic_moment_dataset
from transformers_rdmf.feature_manifest import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    FeatureManifestError,
    check_feature_folders,
    check_feature_set,
)
from transformers_rdmf.training import RDMFTrainingArguments
from transformers_rdmf.training.data import build_dataset, build_loader

from .test_training import TINY


def round_to_float16(folder):
    """Every ``.npz`` array below ``folder`` made float16-exact (kept float32), so a float16 set holds it whole."""
    for path in folder.rglob("*.npz"):
        with np.load(path) as archive:
            arrays = {key: archive[key].astype(np.float16).astype(np.float32) for key in archive.files}
        np.savez(path, **arrays)


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qvh_layout")
    synthetic = write_synthetic_moment_dataset(folder, num_train=40, num_eval=13)
    round_to_float16(folder)
    return synthetic


@pytest.fixture(scope="module")
def feature_set(layout, tmp_path_factory):
    out = tmp_path_factory.mktemp("sets") / "qvh_set"
    argv = ["convert-features", "--layout", "moment_detr", "--out", str(out), "--shard-rows", "7"]
    argv += ["--video-dirs", *map(str, layout.video_feature_dirs), "--text-dir", str(layout.text_feature_dir)]
    assert rdmf_main([*argv, "--clip-length", "2"]) == 0
    return out


def run_arguments(layout, tmp_path, **data) -> RDMFTrainingArguments:
    folders = dict(
        video_feature_dirs=[str(d) for d in layout.video_feature_dirs],
        text_feature_dir=str(layout.text_feature_dir),
    )
    return RDMFTrainingArguments(
        output_dir=str(tmp_path / "run"),
        preset="clip_vit_b32",
        config_overrides=dict(TINY),
        dataset="qvhighlights",
        train_annotations=str(layout.train_annotations),
        eval_annotations=str(layout.eval_annotations),
        batch_size=8,
        **(data or folders),
    )


def batches(args, split="train"):
    config = RDMFConfig(**TINY)
    dataset = build_dataset(args, split, config)
    return list(build_loader(dataset, args, shuffle=split == "train"))


def test_the_set_gives_the_same_batches_as_the_folders(layout, feature_set, tmp_path):
    for split in ("train", "eval"):
        from_folders = batches(run_arguments(layout, tmp_path), split)
        from_set = batches(run_arguments(layout, tmp_path, feature_set=str(feature_set)), split)
        assert len(from_folders) == len(from_set) == (5 if split == "train" else 2)
        for a, b in zip(from_folders, from_set):
            for key in ("video_features", "video_mask", "text_features", "text_mask"):
                assert torch.equal(a[key], b[key]), key  # exact: float16-exact values, the same arithmetic
            for la, lb in zip(a["labels"], b["labels"]):
                assert torch.equal(la["spans"], lb["spans"]) and torch.equal(la["saliency"], lb["saliency"])
            assert [m["qid"] for m in a["meta"]] == [m["qid"] for m in b["meta"]]


def test_the_card_parses_back_and_datasets_reads_its_configs(layout, feature_set):
    import datasets
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(feature_set / "README.md")
    manifest = card.data.to_dict()[CARD_KEY]
    assert manifest["format"] == FEATURE_SET_FORMAT and manifest["layout"] == "moment_detr"
    assert list(manifest["streams"]) == ["clip", "slowfast", "text"]
    clip = manifest["streams"]["clip"]
    assert (clip["kind"], clip["key"], clip["feature_dim"], clip["rows"], clip["clip_length"]) == (
        "video",
        "vid",
        16,
        53,
        2.0,
    )
    assert clip["max_rounding_error"] == 0.0 and manifest["dtype"] == "float16"
    assert manifest["library_version"]
    assert [c["config_name"] for c in card.data.to_dict()["configs"]] == ["clip", "slowfast", "text"]
    text = datasets.load_dataset(
        str(feature_set), "text", split="train"
    )  # the card's configs, no library code
    assert len(text) == 53 and set(text.column_names) == {"id", "tokens", "shape", "pooled"}
    assert len(list((feature_set / "clip").glob("*.parquet"))) == 8  # 53 rows, 7 a shard
    row = text.with_format("numpy")[0]
    expected = np.load(layout.text_feature_dir / f"qid{row['id']}.npz")["last_hidden_state"]
    np.testing.assert_array_equal(row["tokens"].reshape(row["shape"]), expected)


def test_float16_rounding_is_recorded_and_float32_is_exact(tmp_path):
    layout = write_synthetic_moment_dataset(tmp_path / "raw", num_train=4, num_eval=2)
    argv = ["convert-features", "--layout", "moment_detr", "--video-dirs", str(layout.video_feature_dirs[0])]
    assert rdmf_main([*argv, "--out", str(tmp_path / "f16")]) == 0
    assert rdmf_main([*argv, "--out", str(tmp_path / "f32"), "--dtype", "float32"]) == 0
    half, full = FeatureSet(tmp_path / "f16"), FeatureSet(tmp_path / "f32")
    error = half.manifest["streams"]["clip"]["max_rounding_error"]
    assert 0 < error < 5e-3 and full.manifest["streams"]["clip"]["max_rounding_error"] == 0.0
    vid = next(iter(half.rows("clip").index))
    raw = np.load(layout.video_feature_dirs[0] / f"{vid}.npz")["features"].astype(np.float32)
    np.testing.assert_array_equal(full.rows("clip").read(vid)[0], raw)
    change = np.abs(half.rows("clip").read(vid)[0] - raw).max()
    assert 0 < change <= error  # the recorded error is the largest over the stream's rows


def test_push_to_hub_creates_the_dataset_repo_and_uploads_the_folder(layout, tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs, sorted(p.name for p in (tmp_path / "set").iterdir())))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    argv = ["convert-features", "--layout", "moment_detr", "--video-dirs", str(layout.video_feature_dirs[0])]
    assert (
        rdmf_main([*argv, "--out", str(tmp_path / "set"), "--push-to-hub", "me/qvh-features", "--private"])
        == 0
    )
    assert calls[1] == (
        "create_repo",
        "me/qvh-features",
        {"repo_type": "dataset", "private": True, "exist_ok": True},
    )
    upload = calls[2]
    assert upload[1]["repo_id"] == "me/qvh-features" and upload[1]["repo_type"] == "dataset"
    assert upload[1]["folder_path"] == str(tmp_path / "set") and upload[2] == ["README.md", "clip"]


def test_a_hub_id_is_downloaded_once_and_read_like_the_folder(feature_set, monkeypatch):
    import huggingface_hub

    asked = []

    def snapshot_download(repo_id, repo_type=None, revision=None):
        asked.append((repo_id, repo_type, revision))
        return str(feature_set)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    from_hub, local = FeatureSet("someone/qvh-features", revision="v1"), FeatureSet(feature_set)
    assert asked == [("someone/qvh-features", "dataset", "v1")]
    vid = next(iter(local.rows("clip").index))
    clips = local.video_reader().streams[0].num_rows(vid)
    a, _ = from_hub.video_reader().read(vid, clips)
    b, _ = local.video_reader().read(vid, clips)
    assert np.array_equal(a, b) and a.shape == (clips, 32)


def rewrite_row(shard, row, **columns):
    table = pq.read_table(shard)
    rows = table.to_pylist()
    rows[row].update(columns)
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), shard)


def test_a_row_of_the_wrong_width_names_the_shard_and_row(feature_set, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(feature_set, broken)
    shard = sorted((broken / "slowfast").glob("*.parquet"))[2]
    rewrite_row(shard, 3, shape=[4, 15])
    with pytest.raises(
        FeatureError, match=rf"{re.escape(str(shard))}, row 3: shape \[4, 15\], expected \[rows, 16\]"
    ):
        FeatureSet(broken).video_reader()
    rewrite_row(shard, 3, shape=[5, 16], features=[0.5] * 16)
    with pytest.raises(
        FeatureError,
        match=rf"{re.escape(str(shard))}, row 3: 'features' has 16 values, shape \[5, 16\] says 80",
    ):
        FeatureSet(broken).video_reader()


def test_a_missing_or_repeated_id_is_named(feature_set, tmp_path):
    import shutil

    reader = FeatureSet(feature_set).video_reader()
    with pytest.raises(FeatureError, match=r"stream 'clip': no row with id 'nowhere'"):
        reader.read("nowhere", 10)
    with pytest.raises(
        FeatureError,
        match=r"clip/train-00000-of-00008.parquet, row 0 has 27 rows but the labels have 1000000 clips",
    ):
        reader.read(next(iter(FeatureSet(feature_set).rows("clip").index)), 10**6)
    broken = tmp_path / "repeated"
    shutil.copytree(feature_set, broken)
    shards = sorted((broken / "clip").glob("*.parquet"))
    first = pq.read_table(shards[0]).column("id")[0].as_py()
    rewrite_row(shards[1], 2, id=first)
    with pytest.raises(
        FeatureError,
        match=rf"{re.escape(str(shards[1]))}, row 2: id '{re.escape(first)}' again "
        rf"\(first at {re.escape(str(shards[0]))}, row 0\)",
    ):
        FeatureSet(broken).rows("clip")


def test_a_set_that_disagrees_with_the_checkpoint_is_refused_naming_both(
    layout, feature_set, tmp_path, capsys
):
    args = run_arguments(layout, tmp_path, feature_set=str(feature_set))
    trained_on = {"video_streams": [{"stream": "clip", "clip_length": 1.0}, None], "text": None}
    with pytest.raises(
        FeatureManifestError,
        match=r"stream 'clip': clip_length: 2\.0 in the features, 1\.0 expected by the model",
    ):
        build_dataset(args, "train", RDMFConfig(**TINY), trained_on=trained_on)
    wide = dataclasses.replace(args, config_overrides={**TINY, "video_feature_dim": 48})
    with pytest.raises(FeatureManifestError, match=r"feature_dim 16 \+ 16 = 32 in the features, 48 expected"):
        build_dataset(wide, "train", RDMFConfig(**{**TINY, "video_feature_dim": 48}))
    with pytest.raises(FeatureError, match=r"no stream 'i3d_rgb' \(it has: clip, slowfast, text\)"):
        build_dataset(dataclasses.replace(args, feature_set_streams=["i3d_rgb"]), "train", RDMFConfig(**TINY))


def test_streams_that_disagree_on_clip_length_are_refused_for_folders_and_sets(tmp_path):
    folders = [tmp_path / "rgb", tmp_path / "flow", tmp_path / "plain"]
    for folder, length in zip(folders, (2.0, 1.0)):
        folder.mkdir()
        (folder / MANIFEST_NAME).write_text(
            json.dumps({"format": MANIFEST_FORMAT, "feature_dim": 8, "clip_length": length})
        )
    folders[2].mkdir()  # no manifest: says nothing about its clip length
    with pytest.raises(
        FeatureManifestError,
        match=rf"^video feature streams disagree on clip_length \({re.escape(str(folders[0]))}: 2\.0, "
        rf"{re.escape(str(folders[1]))}: 1\.0\)$",
    ):
        check_feature_folders(folders)
    assert check_feature_folders([folders[0], folders[2]]) == 2.0

    class Set:
        source = "sets/tvsum"
        manifests = {
            "rgb": {"feature_dim": 8, "clip_length": 2.0},
            "flow": {"feature_dim": 8, "clip_length": 1.0},
        }
        manifests["bare"] = {"feature_dim": 8, "clip_length": None}  # converted without one

        def stream_manifest(self, name):
            return self.manifests[name]

    with pytest.raises(
        FeatureManifestError,
        match=r"^feature set sets/tvsum: streams disagree on clip_length \(rgb: 2\.0, flow: 1\.0\)$",
    ):
        check_feature_set(Set(), ["rgb", "bare", "flow"])
    assert check_feature_set(Set(), ["bare", "rgb"]) == 2.0
    assert check_feature_set(Set(), ["bare"]) is None
    Set.manifests["rgb_again"] = {"feature_dim": 8, "clip_length": 2.0 + 1e-12}  # a float round trip agrees
    assert check_feature_set(Set(), ["rgb", "rgb_again"]) == 2.0


def test_a_run_on_the_set_records_its_streams_and_a_second_run_checks_them(layout, feature_set, tmp_path):
    from transformers_rdmf.training import train

    args = run_arguments(layout, tmp_path, feature_set=str(feature_set))
    train(dataclasses.replace(args, num_epochs=1, max_steps=1, disable_progress_bar=True))
    signatures = json.loads((tmp_path / "run" / "final" / "feature_manifest.json").read_text())
    assert [s["stream"] for s in signatures["video_streams"]] == ["clip", "slowfast"]
    assert signatures["video_streams"][0]["clip_length"] == 2.0 and signatures["feature_set"] == str(
        feature_set
    )


def test_tvsum_from_its_set_equals_tvsum_from_its_folders(shared_data, tmp_path):
    root = shared_data / "tvsum"
    assert (
        rdmf_main(
            ["convert-features", "--layout", "tvsum", "--root", str(root), "--out", str(tmp_path / "tvsum")]
        )
        == 0
    )
    manifest = FeatureSet(tmp_path / "tvsum").manifest
    assert {n: s["rows"] for n, s in manifest["streams"].items()} == {
        "i3d_rgb": 50,
        "i3d_flow": 50,
        "audio": 50,
        "text": 50,
    }
    common = dict(
        output_dir=str(tmp_path / "run"), preset="tvsum_i3d", dataset="tvsum", domain="BK",
        train_annotations=str(root / "tvsum_train_release.jsonl"), eval_annotations=str(root / "tvsum_val_release.jsonl"),
    )  # fmt: skip
    config = RDMFConfig(video_feature_dim=2048, text_feature_dim=512)
    folders = build_dataset(RDMFTrainingArguments(**common, data_root=str(root)), "train", config)
    from_set = build_dataset(
        RDMFTrainingArguments(**common, feature_set=str(tmp_path / "tvsum")), "train", config
    )
    assert len(folders) == len(from_set) == 4
    for i in range(4):
        a, b = folders[i], from_set[i]
        # the UMT release is float16 on disk: the float16 set holds it exactly
        assert (
            np.array_equal(a["video_features"], b["video_features"]) and a["video_features"].shape[1] == 2048
        )
        assert np.array_equal(a["text_features"], b["text_features"]) and np.array_equal(
            a["text_pooled"], b["text_pooled"]
        )
        assert np.array_equal(a["saliency_target"], b["saliency_target"])


def test_convert_features_refuses_bad_input_in_one_line_and_writes_nothing(
    layout, feature_set, tmp_path, capsys
):
    from .test_hostile_input import refused

    stream = str(layout.video_feature_dirs[0])
    base = ["convert-features", "--layout", "moment_detr", "--video-dirs", stream]
    line = refused(rdmf_main, [*base, "--out", str(feature_set)], capsys, feature_set, expect="--out:")
    assert "exists" in line and str(feature_set) in line
    refused(
        rdmf_main,
        [*base, "--out", f"{stream}/set"],
        capsys,
        layout.video_feature_dirs[0],
        expect="--video-dirs",
    )
    missing = tmp_path / "nowhere"
    line = refused(
        rdmf_main,
        ["convert-features", "--layout", "tvsum", "--root", str(missing), "--out", str(tmp_path / "s")],
        capsys,
        tmp_path,
        expect="feature folder not found",
    )
    assert str(missing / "video_features") in line and not (tmp_path / "s").exists()
    bad = tmp_path / "nan"
    bad.mkdir()
    np.savez(bad / "v1.npz", features=np.array([[1.0, np.nan]], np.float32))
    line = refused(
        rdmf_main,
        [
            "convert-features",
            "--layout",
            "moment_detr",
            "--video-dirs",
            str(bad),
            "--out",
            str(tmp_path / "t"),
        ],
        capsys,
        bad,
        expect="NaN",
    )
    assert str(bad / "v1.npz") in line and not (tmp_path / "t").exists() and not list(tmp_path.glob(".t.*"))


def test_writing_a_set_never_touches_a_folder_beside_it(layout, tmp_path):
    """The set is filled in a new hidden folder: an input folder named like the old staging folder
    (``OUT.partial``) and any other folder beside the output keep their files."""
    stream = tmp_path / "set.partial"
    shutil.copytree(layout.video_feature_dirs[0], stream)
    keep = tmp_path / "keep.partial"
    keep.mkdir()
    (keep / "mine.txt").write_text("user data")
    before = sorted(path.name for path in stream.iterdir())
    argv = ["convert-features", "--layout", "moment_detr", "--out", str(tmp_path / "set")]
    assert rdmf_main([*argv, "--video-dirs", str(stream)]) == 0
    assert sorted(path.name for path in stream.iterdir()) == before
    assert (keep / "mine.txt").read_text() == "user data"
    assert (tmp_path / "set" / "README.md").is_file() and not list(tmp_path.glob(".set.*"))


def test_a_set_without_clip_lengths_is_read_as_folders_without_manifests_are(layout, tmp_path):
    argv = ["convert-features", "--layout", "moment_detr", "--out", str(tmp_path / "plain")]
    argv += ["--video-dirs", *map(str, layout.video_feature_dirs), "--text-dir", str(layout.text_feature_dir)]
    assert rdmf_main(argv) == 0
    assert FeatureSet(tmp_path / "plain").manifest["streams"]["clip"]["clip_length"] is None
    args = run_arguments(layout, tmp_path, feature_set=str(tmp_path / "plain"))
    assert len(build_dataset(args, "train", RDMFConfig(**TINY))) == 40


def test_two_folders_of_one_stream_name_are_refused(layout, tmp_path, capsys):
    from .test_hostile_input import refused

    twin = tmp_path / "other" / "clip"
    twin.mkdir(parents=True)
    argv = ["convert-features", "--layout", "moment_detr", "--out", str(tmp_path / "s")]
    argv += ["--video-dirs", str(layout.video_feature_dirs[0]), str(twin)]
    line = refused(rdmf_main, argv, capsys, tmp_path, expect="are both stream 'clip'")
    assert str(twin) in line


def test_youtube_highlights_from_its_set_equals_its_folders(shared_data, tmp_path):
    from transformers_rdmf.data import youtube_highlights_video_reader

    root = shared_data / "youtube_highlights"
    out = tmp_path / "yth"
    argv = ["convert-features", "--layout", "youtube_highlights", "--root", str(root), "--out", str(out)]
    assert rdmf_main([*argv, "--shard-rows", "200"]) == 0
    feature_set = FeatureSet(out)
    assert list(feature_set.manifest["streams"]) == [
        "i3d_rgb",
        "i3d_flow",
    ]  # no text: the query is the domain
    vids = sorted(feature_set.rows("i3d_rgb").index)
    folders = youtube_highlights_video_reader(root)
    from_set = feature_set.video_reader()
    for vid in vids[:: max(1, len(vids) // 5)]:
        rows = folders.streams[0].num_rows(vid)
        assert from_set.streams[0].num_rows(vid) == rows
        a, _ = folders.read(vid, rows)
        b, _ = from_set.read(vid, rows)
        assert np.array_equal(a, b), vid  # the release is float16: held exactly


def test_a_set_written_again_at_the_same_path_is_opened_afresh(feature_set, tmp_path):
    import shutil
    from types import SimpleNamespace

    from transformers_rdmf.training.data import open_feature_set

    copy = tmp_path / "set"
    shutil.copytree(feature_set, copy)
    args = SimpleNamespace(feature_set=str(copy))
    first = open_feature_set(args)
    assert open_feature_set(args) is first  # the train and eval splits share one
    card = copy / "README.md"
    written = copy / "README.md.partial"
    written.write_text(card.read_text())
    written.replace(card)  # written again, as the converter writes: a new file in its place
    again = open_feature_set(args)
    assert again is not first and again.manifest == first.manifest
