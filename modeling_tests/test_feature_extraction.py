"""Feature extraction on a real video with tiny random backbones: layout, resumption, manifests."""

import json
import shutil

import numpy as np
import pytest
import torch

from transformers_rdmf import RDMFConfig, RDMFModel, RDMFVideoProcessor
from transformers_rdmf.data import (
    AnnotationError,
    MomentFeatureDataset,
    TextFeatureReader,
    load_annotations,
    standard_video_reader,
)
from transformers_rdmf.feature_extraction import (
    VideoEncoder,
    clip_image_encoder,
    clip_text_encoder,
    extract_query_features,
    extract_video_features,
    iter_clip_frames,
    swin3d_encoder,
    timm_encoder,
)
from transformers_rdmf.feature_manifest import (
    MANIFEST_NAME,
    FeatureManifestError,
    check_feature_folders,
    model_feature_signatures,
)
from transformers_rdmf.modeling_rdmf import RDMFClipVideoBackbone
from transformers_rdmf.video_processing_rdmf import decode_video_clips, plan_clips, read_frame_timestamps

from .test_video_backbones import TIMM_MODEL, tiny_clip_config, tiny_tokenizer

CHARADES_CLIPS = 15  # 30.7 s in whole 2 s clips
TINY_SWIN = dict(
    patch_size=[2, 4, 4], embed_dim=8, depths=[1, 1], num_heads=[1, 1], window_size=[2, 4, 4], image_size=32
)


def tiny_swin():
    return swin3d_encoder(shortest_edge=36, **TINY_SWIN)


@pytest.fixture(scope="module")
def video(shared_data):
    return shared_data / "examples" / "charades.mp4"


@pytest.fixture(scope="module")
def extracted(video, tmp_path_factory):
    """charades.mp4 through a tiny CLIP vision tower and a tiny video Swin, 2 frames per 2 s clip."""
    out = tmp_path_factory.mktemp("features")
    torch.manual_seed(0)
    encoders = [clip_image_encoder(config=tiny_clip_config()), tiny_swin()]
    report = extract_video_features(
        [video], out, encoders, clip_length=2.0, frames_per_clip=2, batch_size=4, progress=False
    )
    return out, encoders, report


def test_files_are_in_the_loaders_layout_with_one_row_per_clip(extracted, tmp_path):
    out, encoders, report = extracted
    assert report.written == ["charades"] and not report.skipped
    reader = standard_video_reader([out / "clip", out / "swin3d_t"], dims=[16, 16])
    assert reader.check_length("charades", CHARADES_CLIPS) == CHARADES_CLIPS
    features, rows = reader.read("charades", CHARADES_CLIPS)
    assert features.shape == (CHARADES_CLIPS, 32) and rows == (CHARADES_CLIPS, CHARADES_CLIPS)
    np.testing.assert_allclose(np.linalg.norm(features[:, :16], axis=1), 1.0, rtol=1e-5)
    manifest = json.loads((out / "clip" / MANIFEST_NAME).read_text())
    assert manifest["backbone"] == "clip" and manifest["weights"] == "random"
    assert (manifest["feature_dim"], manifest["clip_length"], manifest["frames_per_clip"]) == (16, 2.0, 2)
    assert manifest["videos"]["charades"]["clips"] == CHARADES_CLIPS
    # an annotation row for the video and a query read through the dataset
    annotation = tmp_path / "a.jsonl"
    row = {"qid": 1, "query": "a person opens the door", "vid": "charades", "duration": 30.7}
    annotation.write_text(json.dumps({**row, "relevant_windows": [[4, 10]]}) + "\n")
    (tmp_path / "text").mkdir()
    np.savez(tmp_path / "text" / "qid1.npz", last_hidden_state=np.ones((3, 8), np.float32))
    dataset = MomentFeatureDataset(
        load_annotations(annotation, "charades_sta", clip_length=2.0),
        reader,
        TextFeatureReader(tmp_path / "text"),
    )
    assert dataset[0]["video_features"].shape == (CHARADES_CLIPS, 32)


def test_streamed_frames_equal_the_processor_decoder(video):
    stamps = read_frame_timestamps(video)
    sampling = plan_clips(stamps.times, stamps.duration, 2.0, 2)
    streamed = torch.cat(list(iter_clip_frames(video, stamps.pts, sampling, clips_per_batch=4)))
    whole, _ = decode_video_clips(video, 2.0, 2)
    assert torch.equal(streamed, whole)  # exact: uint8 frames of one decoder, no float arithmetic


def test_clip_features_equal_the_models_own_backbone_on_the_processors_pixels(video, tmp_path):
    config = RDMFConfig(
        video_backbone="clip", clip_config=tiny_clip_config(), video_feature_dim=16, text_feature_dim=16,
        hidden_size=16, num_attention_heads=2,
    )  # fmt: skip
    model = RDMFModel(config).eval()
    encoder = clip_image_encoder(config=tiny_clip_config())
    encoder.module = RDMFClipVideoBackbone(encoder=model.video_backbone.encoder)  # the model's own tower
    extract_video_features([video], tmp_path, [encoder], frames_per_clip=2, batch_size=6, progress=False)
    processor = RDMFVideoProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, frames_per_clip=2
    )
    pixels = processor(str(video))
    with torch.no_grad():
        expected, _ = model.embed_video(pixels["pixel_values"], pixels["pixel_mask"], None)
    features = torch.nn.functional.normalize(
        torch.from_numpy(np.load(tmp_path / "clip" / "charades.npz")["features"]), dim=-1
    )
    torch.testing.assert_close(features, expected[0], atol=1e-5, rtol=1e-4)


def test_a_second_run_skips_and_a_truncated_file_is_redone(extracted, video, tmp_path):
    out, encoders, _ = extracted
    work = tmp_path / "out"
    shutil.copytree(out, work)
    path = work / "swin3d_t" / "charades.npz"
    before, stamp = np.load(path)["features"], path.stat().st_mtime_ns
    again = extract_video_features([video], work, encoders, frames_per_clip=2, batch_size=4, progress=False)
    assert again.skipped == ["charades"] and not again.written and path.stat().st_mtime_ns == stamp

    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # an interrupted copy
    redone = extract_video_features([video], work, encoders, frames_per_clip=2, batch_size=4, progress=False)
    assert redone.redone == ["charades"] and redone.written == ["charades"]
    np.testing.assert_allclose(np.load(path)["features"], before, rtol=1e-5, atol=1e-6)

    np.savez(path, features=before[:-1])  # readable, one row short of the clip plan
    assert extract_video_features([video], work, encoders, frames_per_clip=2, progress=False).redone == [
        "charades"
    ]
    assert np.load(path)["features"].shape == (CHARADES_CLIPS, 16)


def test_extracting_into_a_folder_made_with_other_settings_is_refused(extracted, video):
    out, encoders, _ = extracted
    with pytest.raises(FeatureManifestError, match=r"clip_length: 2\.0 in the features, 1\.0 expected"):
        extract_video_features([video], out, encoders[:1], clip_length=1.0, frames_per_clip=2, progress=False)


def test_loading_features_that_disagree_with_the_model_names_both_values(extracted):
    out, _, _ = extracted
    streams = [out / "clip", out / "swin3d_t"]
    assert check_feature_folders(streams, video_feature_dim=32, clip_length=2.0) == 2.0
    with pytest.raises(
        FeatureManifestError, match=r"clip_length: 2\.0 in the features, 1\.0 expected by preset x"
    ):
        check_feature_folders(streams, clip_length=1.0, expected_by="preset x")
    with pytest.raises(
        FeatureManifestError, match=r"feature_dim 16 \+ 16 = 32 in the features, 2816 expected"
    ):
        check_feature_folders(streams, video_feature_dim=2816)
    trained_on = model_feature_signatures(streams, None)
    trained_on["video_streams"][0]["backbone"] = "timm:resnet50"
    with pytest.raises(
        FeatureManifestError, match=r"backbone: 'clip' in the features, 'timm:resnet50' expected"
    ):
        check_feature_folders(streams, trained_on=trained_on)


def test_a_timm_image_model_by_name(video, tmp_path):
    encoder = timm_encoder(TIMM_MODEL, pretrained=False)
    assert isinstance(encoder, VideoEncoder) and encoder.backbone == f"timm:{TIMM_MODEL}"
    extract_video_features([video], tmp_path, [encoder], batch_size=8, progress=False)
    features = np.load(tmp_path / f"timm_{TIMM_MODEL}" / "charades.npz")["features"]
    assert features.shape == (CHARADES_CLIPS, encoder.feature_dim)


@pytest.mark.parametrize("qid", ["/../../escaped", "a/b", "..\\x"])
def test_a_qid_that_would_leave_the_output_folder_is_refused_before_anything_is_written(qid, tmp_path):
    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        json.dumps({"qid": 1, "query": "a dog"}) + "\n" + json.dumps({"qid": qid, "query": "x"}) + "\n"
    )
    encoder = clip_text_encoder(config=tiny_clip_config(), tokenizer=tiny_tokenizer())
    with pytest.raises(AnnotationError) as refusal:
        extract_query_features(queries, tmp_path / "text", encoder, progress=False)
    assert f"{queries}, line 2" in str(refusal.value) and "qid" in str(refusal.value)
    assert "path separators" in str(refusal.value)
    assert not (tmp_path / "text").exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        "queries.jsonl"
    ]


def test_an_empty_query_file_or_video_list_is_refused(tmp_path):
    from transformers_rdmf.feature_extraction.videos import list_videos

    queries = tmp_path / "queries.jsonl"
    queries.write_text("\n")
    encoder = clip_text_encoder(config=tiny_clip_config(), tokenizer=tiny_tokenizer())
    with pytest.raises(AnnotationError, match=rf"{queries}: no queries \(expected one JSON object a line"):
        extract_query_features(queries, tmp_path / "text", encoder, progress=False)
    listed = tmp_path / "videos.txt"
    listed.write_text("\n\n")
    with pytest.raises(ValueError, match=rf"--videos: {listed} lists no videos"):
        list_videos(listed)
    assert not (tmp_path / "text").exists()


def test_query_features_in_the_moment_detr_text_layout(tmp_path):
    queries = tmp_path / "queries.jsonl"
    rows = [{"qid": 7, "query": "a man opens the door"}, {"qid": "8", "query": "a woman sits"}]
    queries.write_text("".join(json.dumps(r) + "\n" for r in rows))
    encoder = clip_text_encoder(config=tiny_clip_config(), tokenizer=tiny_tokenizer())
    report = extract_query_features(queries, tmp_path / "text", encoder, progress=False)
    assert report.written == ["7", "8"]
    text = TextFeatureReader(tmp_path / "text", dim=16).read({"qid": "7"})
    assert text.tokens.shape == (7, 16) and text.pooled.shape == (16,)  # [BOS] 5 words [EOS]
    assert extract_query_features(queries, tmp_path / "text", encoder, progress=False).skipped == ["7", "8"]
    queries.write_text('{"qid": 9}\n')
    with pytest.raises(ValueError, match=r"queries\.jsonl, line 1, field 'query': missing field"):
        extract_query_features(queries, tmp_path / "text", encoder, progress=False)
