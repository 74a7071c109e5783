"""Feature extraction over several processes (accelerate launch, gloo on CPU), decoding ahead in threads,
byte-reproducible files, mixed precision."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from transformers_rdmf.feature_extraction import extract_video_features, iter_clip_frames, timm_encoder
from transformers_rdmf.feature_extraction.decoding import DecodeAhead, clip_plan
from transformers_rdmf.feature_extraction.files import write_npz
from transformers_rdmf.feature_extraction.videos import shard_of
from transformers_rdmf.feature_manifest import MANIFEST_NAME

REPO = Path(__file__).resolve().parents[1]
CHARADES_CLIPS = 15


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory):
    """Three readable videos (a, b: charades.mp4; c: its first 12 s) and one broken file, in one folder."""
    import av

    folder = tmp_path_factory.mktemp("corpus")
    source = shared_data / "examples" / "charades.mp4"
    shutil.copy(source, folder / "a.mp4")
    shutil.copy(source, folder / "b.mp4")
    (folder / "c_broken.mp4").write_bytes(b"no video here")
    with av.open(str(source)) as reader, av.open(str(folder / "d.mp4"), "w") as writer:
        stream_in = reader.streams.video[0]
        stream_out = writer.add_stream_from_template(stream_in)
        for packet in reader.demux(stream_in):
            if packet.dts is None or packet.pts is None:
                continue
            if packet.pts * stream_in.time_base > 12 and packet.is_keyframe:
                break
            packet.stream = stream_out
            writer.mux(packet)
    return folder


def extract_command(videos: Path, out: Path, processes: int) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(processes)]
    launcher += ["--multi_gpu"] if processes > 1 else ["--cpu"]  # no GPU: gloo, as the training test
    launcher += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    # --quiet: from accelerate 1.16 on, the 1-process launcher re-raises a non-zero exit with the tail of
    # the command's stderr, which would list each failure twice; stderr is then the command's own
    launcher += ["--quiet"]
    argv = ["-m", "transformers_rdmf.cli", "extract-features", "--videos", str(videos), "--out", str(out)]
    argv += ["--backbones", "timm:test_resnet", "--random-weights", "--batch-size", "4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([*launcher, *argv], env=env, capture_output=True, text=True, timeout=600)


def test_two_processes_write_the_same_files_byte_for_byte_and_list_the_failure(corpus, tmp_path):
    runs = {n: extract_command(corpus, tmp_path / f"out{n}", n) for n in (1, 2)}
    for result in runs.values():
        assert result.returncode == 1, result.stderr[-3000:]  # the broken video: reported, not fatal
        failures = [line for line in result.stderr.splitlines() if ": failed: " in line]
        assert len(failures) == 1 and failures[0].startswith("rdmf extract-features: failed: c_broken: ")
        # no traceback comes from this library
        frames = [line for line in result.stderr.splitlines() if line.strip().startswith('File "')]
        assert not [line for line in frames if "transformers_rdmf" in line], result.stderr[-3000:]
        assert "videos: 3 written" in result.stdout and "1 failed" in result.stdout
    one, two = tmp_path / "out1" / "timm_test_resnet", tmp_path / "out2" / "timm_test_resnet"
    names = sorted(path.name for path in one.iterdir())
    assert names == ["a.npz", "b.npz", "d.npz", MANIFEST_NAME]
    assert sorted(path.name for path in two.iterdir()) == names  # no per-process leftovers
    for name in names:
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    manifest = json.loads((two / MANIFEST_NAME).read_text())
    assert list(manifest["videos"]) == ["a", "b", "d"] and manifest["videos"]["a"]["clips"] == CHARADES_CLIPS
    assert 6 <= manifest["videos"]["d"]["clips"] < CHARADES_CLIPS  # cut at the first keyframe past 12 s
    # a second 2-process run resumes: everything complete is skipped, nothing rewritten
    stamps = {name: (two / name).stat().st_mtime_ns for name in names if name.endswith(".npz")}
    again = extract_command(corpus, tmp_path / "out2", 2)
    assert again.returncode == 1 and "0 written" in again.stdout and "3 already complete" in again.stdout
    assert {name: (two / name).stat().st_mtime_ns for name in stamps} == stamps


def test_the_split_is_deterministic_balanced_and_covers_every_video():
    pairs = [(str(i), i) for i in range(7)]
    shards = [shard_of(pairs, rank, 3) for rank in range(3)]
    assert [len(shard) for shard in shards] == [3, 2, 2]
    assert sorted(item for shard in shards for item in shard) == pairs
    assert shards == [shard_of(pairs, rank, 3) for rank in range(3)]


def test_decoding_ahead_in_threads_gives_the_decoders_frames_in_order(corpus):
    pairs = [(name, corpus / f"{name}.mp4") for name in ("a", "c_broken", "d", "b")]
    plan = clip_plan(2.0, 2)
    with DecodeAhead(pairs, plan, lambda vid, sampling: [0], batch_size=3, threads=2, depth=1) as decoded:
        seen = [(video.vid, video.error, [batch.clone() for batch in video.batches]) for video in decoded]
    assert [vid for vid, _, _ in seen] == ["a", "c_broken", "d", "b"]
    assert seen[1][1] is not None and "c_broken.mp4" in seen[1][1] and seen[1][2] == []
    for vid, error, batches in seen[:1] + seen[2:]:
        stamps, sampling = plan(corpus / f"{vid}.mp4")
        expected = list(iter_clip_frames(corpus / f"{vid}.mp4", stamps.pts, sampling, 3))
        assert error is None and len(batches) == len(expected)
        for got, want in zip(batches, expected):
            assert torch.equal(got, want)  # exact: the same uint8 frames of the same decoder
    assert decoded.decode_seconds > 0


def test_a_video_nothing_is_needed_for_is_not_decoded(corpus):
    pairs = [("a", corpus / "a.mp4"), ("b", corpus / "b.mp4")]
    with DecodeAhead(pairs, clip_plan(2.0, 1), lambda vid, sampling: [], batch_size=4) as decoded:
        videos = [(video.vid, video.sampling.num_clips, list(video.batches)) for video in decoded]
    assert videos == [("a", CHARADES_CLIPS, []), ("b", CHARADES_CLIPS, [])]


def test_npz_files_are_byte_reproducible_and_read_like_numpys(tmp_path):
    features = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    write_npz(tmp_path / "a.npz", features=features, other=np.arange(4))
    write_npz(tmp_path / "b.npz", features=features, other=np.arange(4))
    np.savez(tmp_path / "numpy.npz", features=features, other=np.arange(4))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as ours, np.load(tmp_path / "numpy.npz") as theirs:
        assert ours.files == theirs.files
        for key in ours.files:
            assert np.array_equal(ours[key], theirs[key]) and ours[key].dtype == theirs[key].dtype


def test_bf16_backbones_stay_close_to_float32_and_the_manifest_says_so(corpus, tmp_path):
    torch.manual_seed(0)
    encoder = timm_encoder("test_resnet", pretrained=False)
    videos = [corpus / "d.mp4"]
    extract_video_features(videos, tmp_path / "fp32", [encoder], batch_size=4, progress=False)
    extract_video_features(
        videos, tmp_path / "bf16", [encoder], batch_size=4, progress=False, mixed_precision="bf16"
    )
    full = np.load(tmp_path / "fp32" / "timm_test_resnet" / "d.npz")["features"]
    half = np.load(tmp_path / "bf16" / "timm_test_resnet" / "d.npz")["features"]
    assert half.dtype == np.float32 and half.shape == full.shape
    assert not np.array_equal(half, full)  # bf16 did run
    cosine = (half * full).sum(1) / np.linalg.norm(half, axis=1) / np.linalg.norm(full, axis=1)
    assert cosine.min() > 0.99  # bf16 keeps 8 bits of mantissa: rows agree in direction to 1%
    manifests = [
        json.loads((tmp_path / p / "timm_test_resnet" / MANIFEST_NAME).read_text()) for p in ("fp32", "bf16")
    ]
    assert [m["mixed_precision"] for m in manifests] == ["no", "bf16"]


def test_a_video_gone_since_listing_is_reported_and_a_bug_is_raised_not_hung(corpus):
    pairs = [("a", corpus / "a.mp4"), ("gone", corpus / "gone.mp4"), ("b", corpus / "b.mp4")]
    plan = clip_plan(2.0, 1)

    def plan_or_vanish(path):
        if path.name == "gone.mp4":
            raise FileNotFoundError(f"videos: no file at {path}")
        return plan(path)

    decoded = DecodeAhead(pairs, plan_or_vanish, lambda vid, sampling: [], batch_size=4, threads=2)
    seen = [(video.vid, video.error) for video in decoded]  # iterated without `with`: threads start anyway
    decoded.__exit__(None, None, None)
    assert [vid for vid, _ in seen] == ["a", "gone", "b"] and "gone.mp4" in seen[1][1]
    assert seen[0][1] is None and seen[2][1] is None

    def broken(path):
        raise RuntimeError("a bug in planning")

    with pytest.raises(RuntimeError, match="a bug in planning"):
        with DecodeAhead(pairs, broken, lambda vid, sampling: [], batch_size=4) as decoded:
            list(decoded)


def test_resuming_with_another_precision_is_refused(corpus, tmp_path):
    from transformers_rdmf.feature_manifest import FeatureManifestError

    torch.manual_seed(0)
    encoder = timm_encoder("test_resnet", pretrained=False)
    extract_video_features([corpus / "d.mp4"], tmp_path, [encoder], batch_size=4, progress=False)
    with pytest.raises(FeatureManifestError, match=r"mixed_precision: 'no' in the features, 'bf16' expected"):
        extract_video_features(
            [corpus / "d.mp4"], tmp_path, [encoder], progress=False, mixed_precision="bf16"
        )
