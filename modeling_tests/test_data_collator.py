"""The collator's padding, masks and labels, the max_clips cut, and the seeded, shardable DataLoader."""

import logging

import numpy as np
import pytest
import torch

from transformers_rdmf.data import (
    MomentFeatureDataset,
    MomentRetrievalCollator,
    build_dataloader,
    load_annotations,
    tvsum_text_reader,
    tvsum_video_reader,
)

BATCH_KEYS = {"video_features", "video_mask", "text_features", "text_mask", "labels", "meta"}


def make_item(num_clips, num_tokens, windows=(), duration=None, clip_length=2.0, offset=0.0):
    duration = duration or num_clips * clip_length
    windows = np.asarray(windows, dtype=np.float64).reshape(-1, 2)
    spans = np.stack([windows.mean(1) / duration, (windows[:, 1] - windows[:, 0]) / duration], 1)
    target = np.zeros(num_clips, dtype=np.float32)
    for start, end in windows:
        target[int(start // clip_length) : int(np.ceil(end / clip_length))] = 1.0
    return {
        "video_features": offset + 1 + np.arange(num_clips * 2, dtype=np.float32).reshape(num_clips, 2),
        "text_features": offset + 1 + np.arange(num_tokens * 3, dtype=np.float32).reshape(num_tokens, 3),
        "text_pooled": None,
        "spans": spans.astype(np.float32),
        "saliency_target": target,
        "saliency_scores": np.stack([target * 4, target * 3, target * 2], 1),
        "meta": {
            "dataset": "synthetic",
            "qid": f"q{num_clips}",
            "vid": f"v{num_clips}",
            "query": "a query",
            "domain": "",
            "duration": duration,
            "clip_length": clip_length,
            "windows": windows.tolist(),
            "num_clips": num_clips,
            "label_clips_dropped": 0,
            "feature_rows_dropped": 0,
        },
    }


def test_padding_values_masks_and_labels():
    short = make_item(3, 2, windows=[[0.0, 2.0], [4.0, 6.0]])
    long = make_item(5, 4, offset=100.0)
    batch = MomentRetrievalCollator()([short, long])
    assert set(batch) == BATCH_KEYS
    video, text = batch["video_features"], batch["text_features"]
    assert video.dtype == torch.float32 and video.shape == (2, 5, 2)
    assert text.dtype == torch.float32 and text.shape == (2, 4, 3)
    torch.testing.assert_close(video[0, :3], torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    assert torch.equal(video[0, 3:], torch.zeros(2, 2))
    torch.testing.assert_close(video[1], torch.from_numpy(long["video_features"]))
    assert torch.equal(text[0, 2:], torch.zeros(2, 3)) and text[1, 3, 2].item() == 112.0
    assert batch["video_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["text_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    first, second = batch["labels"]
    assert set(first) == {"spans", "saliency"}
    assert first["spans"].dtype == torch.float32
    torch.testing.assert_close(first["spans"], torch.tensor([[1 / 6, 2 / 6], [5 / 6, 2 / 6]]))
    assert second["spans"].shape == (0, 2)
    assert first["saliency"].tolist() == [1.0, 0.0, 1.0, 0.0, 0.0]
    assert second["saliency"].tolist() == [0.0] * 5
    meta = batch["meta"][0]
    assert (meta["qid"], meta["vid"], meta["num_clips"], meta["duration"], meta["clip_length"]) == (
        "q3",
        "v3",
        3,
        6.0,
        2.0,
    )
    assert meta["clips_cut"] == 0 and meta["span_duration"] == 6.0 and meta["query"] == "a query"
    assert meta["saliency_scores"].tolist() == [[4.0, 3.0, 2.0], [0.0, 0.0, 0.0], [4.0, 3.0, 2.0]]


def test_max_clips_cuts_counts_and_warns(caplog):
    collator = MomentRetrievalCollator(max_clips=4)
    cut_item = make_item(6, 2, windows=[[2.0, 6.0], [6.0, 10.0], [9.0, 12.0]])  # 12 s, 2 s clips
    with caplog.at_level(logging.WARNING):
        batch = collator([cut_item, make_item(3, 2)])
    assert (collator.videos_cut, collator.clips_cut) == (1, 2)
    assert "max_clips=4 cut 1 video(s) (2 clips)" in caplog.text
    assert batch["video_features"].shape == (2, 4, 2) and batch["video_mask"].tolist()[0] == [1, 1, 1, 1]
    meta = batch["meta"][0]
    assert (meta["clips_cut"], meta["num_clips"], meta["span_duration"], meta["duration"]) == (
        2,
        4,
        8.0,
        12.0,
    )
    # Kept: the first 8 s; [6, 10] is clipped to [6, 8] and [9, 12] (past 8 s) is dropped.
    assert meta["windows"] == [[2.0, 6.0], [6.0, 8.0]]
    torch.testing.assert_close(batch["labels"][0]["spans"], torch.tensor([[0.5, 0.5], [0.875, 0.25]]))
    assert batch["labels"][0]["saliency"].tolist() == [0.0, 1.0, 1.0, 1.0]
    assert meta["saliency_scores"].shape == (4, 3)
    collator([make_item(7, 1)])
    assert (collator.videos_cut, collator.clips_cut) == (2, 5)


def test_feature_widths_must_agree_within_a_batch():
    item = make_item(3, 2)
    other = {**make_item(3, 2), "video_features": np.ones((3, 5), dtype=np.float32)}
    with pytest.raises(ValueError, match=r"video feature widths differ within the batch: \[2, 5\]"):
        MomentRetrievalCollator()([item, other])


@pytest.fixture(scope="module")
def tvsum_dataset(shared_data):
    root = shared_data / "tvsum"
    annotations = load_annotations(root / "tvsum_train_release.jsonl", "tvsum")
    return MomentFeatureDataset(annotations, tvsum_video_reader(root), tvsum_text_reader(root))


def _qids(loader):
    return [meta["qid"] for batch in loader for meta in batch["meta"]]


def test_same_seed_same_order_and_different_seed_different_order(tvsum_dataset):
    first = _qids(build_dataloader(tvsum_dataset, batch_size=8, seed=3))
    assert sorted(first) == sorted(tvsum_dataset.annotations["qid"])
    assert _qids(build_dataloader(tvsum_dataset, batch_size=8, seed=3)) == first
    assert _qids(build_dataloader(tvsum_dataset, batch_size=8, seed=4)) != first
    assert _qids(build_dataloader(tvsum_dataset, batch_size=8, shuffle=False)) == list(
        tvsum_dataset.annotations["qid"]
    )
    workers = build_dataloader(tvsum_dataset, batch_size=8, seed=3, num_workers=2)
    assert _qids(workers) == first


def test_real_batch_reaches_the_model_contract(tvsum_dataset):
    batch = next(iter(build_dataloader(tvsum_dataset, batch_size=4, shuffle=False)))
    lengths = [tvsum_dataset.annotations[i]["num_clips"] for i in range(4)]
    assert batch["video_features"].shape == (4, max(lengths), 2048)
    assert batch["video_mask"].sum(1).tolist() == lengths
    for labels, length in zip(batch["labels"], lengths):
        assert labels["spans"].shape == (0, 2)
        assert labels["saliency"].shape == (max(lengths),) and labels["saliency"][length:].abs().sum() == 0
        assert 0 <= labels["saliency"].min() and labels["saliency"].max() <= 1


def test_accelerate_prepares_and_shards_the_loader(tvsum_dataset):
    from accelerate import Accelerator
    from accelerate.data_loader import prepare_data_loader

    loader = build_dataloader(tvsum_dataset, batch_size=4, seed=5)
    prepared = Accelerator(cpu=True).prepare(loader)
    assert sorted(_qids(prepared)) == sorted(tvsum_dataset.annotations["qid"])
    shards = [
        _qids(
            prepare_data_loader(
                build_dataloader(tvsum_dataset, batch_size=4, seed=5),
                num_processes=2,
                process_index=rank,
                put_on_device=False,
            )
        )
        for rank in (0, 1)
    ]
    assert len(shards[0]) == len(shards[1]) == 20
    assert set(shards[0]).isdisjoint(shards[1]) and len(set(shards[0]) | set(shards[1])) == 40


def test_batches_built_in_workers_equal_those_built_in_the_main_process(tvsum_dataset):
    main = next(iter(build_dataloader(tvsum_dataset, batch_size=6, seed=1)))
    worker = next(iter(build_dataloader(tvsum_dataset, batch_size=6, seed=1, num_workers=1)))
    for key in ("video_features", "video_mask", "text_features", "text_mask"):
        assert worker[key].dtype == main[key].dtype
    # the masks are integers: exact
    assert torch.equal(worker["video_mask"], main["video_mask"])
    assert torch.equal(worker["text_mask"], main["text_mask"])
    # the features are L2-normalised in each process: a norm's float32 sum may round differently there
    # (an ulp or two of a unit vector); another example or padding would differ by far more than 1e-6
    for key in ("video_features", "text_features"):
        torch.testing.assert_close(
            worker[key], main[key], atol=1e-7, rtol=1e-6, msg=lambda m, k=key: f"{k}: {m}"
        )
    for ours, theirs in zip(worker["labels"], main["labels"]):
        # the targets are copied from the annotations, no arithmetic: exact
        assert torch.equal(ours["saliency"], theirs["saliency"])
