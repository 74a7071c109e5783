"""Video decoding and clip sampling: the real example video against its container's own timestamps."""

import av
import numpy as np
import pytest
import torch
from transformers import AutoVideoProcessor

from transformers_rdmf.video_processing_rdmf import (
    RDMFVideoProcessor,
    decode_frames,
    decode_video_clips,
    plan_clips,
    read_frame_timestamps,
)


def container_frame_times(path) -> np.ndarray:
    """Every decoded frame's own timestamp (``frame.time``), in presentation order."""
    with av.open(str(path)) as container:
        return np.array([frame.time for frame in container.decode(video=0)])


def write_video(path, num_frames: int, fps: int = 5, size=(64, 48), codec: str = "mpeg4"):
    """A synthetic video whose frame ``i`` is uniformly grey at level ``20 * i``."""
    container = av.open(str(path), "w")
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
    container.start_encoding()
    for i in range(num_frames):
        image = np.full((size[1], size[0], 3), (20 * i) % 256, dtype=np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


@pytest.fixture(scope="module")
def charades(shared_data):
    return shared_data / "examples" / "charades.mp4"


def test_charades_gives_15_clips_of_2s_on_the_containers_frame_timestamps(charades):
    decoded_times = container_frame_times(charades)
    assert len(decoded_times) == 460  # 30.7 s at 15000/1001 fps

    stamps = read_frame_timestamps(charades)
    np.testing.assert_allclose(stamps.times, decoded_times, atol=1e-9)
    assert stamps.duration == pytest.approx(460 * 1001 / 15000)  # end of the last frame: 30.697 s

    frames, sampling = decode_video_clips(charades, clip_length=2.0, frames_per_clip=1)
    assert sampling.num_clips == 15  # the last 0.7 s is not a whole clip
    np.testing.assert_allclose(sampling.clip_boundaries, [[2 * i, 2 * i + 2] for i in range(15)])
    assert frames.shape == (15, 3, 270, 480) and frames.dtype == torch.uint8

    # each clip's frames are those starting in [2i, 2i + 2): 30 each at 14.985 fps, 450 before 30 s
    starts_in = [((decoded_times >= a) & (decoded_times < b)).sum() for a, b in sampling.clip_boundaries]
    assert sampling.frames_in_clip.tolist() == starts_in == [30] * 15
    # the sampled frame is the one shown at the clip's centre, with its container timestamp
    for clip, (start, end) in enumerate(sampling.clip_boundaries):
        shown = np.searchsorted(decoded_times, (start + end) / 2, side="right") - 1
        assert sampling.frame_indices[clip, 0] == shown
        assert sampling.frame_times[clip, 0] == pytest.approx(decoded_times[shown], abs=1e-9)
        assert start <= sampling.frame_times[clip, 0] < end
    assert sampling.frame_indices[:, 0].tolist() == [14 + 30 * i for i in range(15)]


def test_several_frames_per_clip_are_evenly_spaced_inside_the_clip(charades):
    _, sampling = decode_video_clips(charades, clip_length=2.0, frames_per_clip=4)
    decoded_times = container_frame_times(charades)
    assert sampling.frame_indices.shape == (15, 4)
    targets = sampling.clip_boundaries[:, :1] + np.array([0.25, 0.75, 1.25, 1.75])
    expected = np.searchsorted(decoded_times, targets, side="right") - 1
    np.testing.assert_array_equal(sampling.frame_indices, expected)
    assert np.all(np.diff(sampling.frame_indices, axis=1) > 0)


def test_sampled_pixels_are_the_frames_at_the_planned_indices(tmp_path):
    video = write_video(tmp_path / "grey.mp4", num_frames=12, fps=5)  # 2.4 s
    frames, sampling = decode_video_clips(video, clip_length=1.0, frames_per_clip=2)
    assert sampling.num_clips == 2
    # clip 0 samples t=0.25, 0.75 -> frames 1, 3; clip 1 samples t=1.25, 1.75 -> frames 6, 8
    assert sampling.frame_indices.tolist() == [[1, 3], [6, 8]]
    grey_levels = frames[:, 0].float().mean(dim=(1, 2))
    torch.testing.assert_close(grey_levels, torch.tensor([20.0, 60.0, 120.0, 160.0]), atol=3, rtol=0)


def test_plan_of_a_video_shorter_than_one_clip_is_one_clip():
    times = np.arange(6) * 0.2  # 1.2 s
    sampling = plan_clips(times, duration=1.2, clip_length=2.0, frames_per_clip=1)
    np.testing.assert_allclose(sampling.clip_boundaries, [[0.0, 1.2]])
    assert sampling.frame_indices.tolist() == [[3]]  # shown at 0.6 s
    assert sampling.frames_in_clip.tolist() == [6]


def test_processor_outputs_normalised_clip_pixels_and_round_trips(charades, tmp_path):
    processor = RDMFVideoProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    out = processor(str(charades))
    assert out["pixel_values"].shape == (1, 15, 1, 3, 32, 32)
    assert out["pixel_mask"].tolist() == [[1] * 15]
    assert out["durations"].tolist() == pytest.approx([30.697], abs=1e-3)
    assert -2 < float(out["pixel_values"].mean()) < 2  # CLIP-normalised, not 0..255

    processor.save_pretrained(tmp_path)
    loaded = AutoVideoProcessor.from_pretrained(tmp_path)
    assert type(loaded) is RDMFVideoProcessor and loaded.size == processor.size
    assert loaded.to_dict() == processor.to_dict()  # the settings, written and read back: exact
    # another instance resizing and normalising the same decoded frames: float32 rounding at most, while
    # a setting not restored (size, crop, resample, mean, std) moves pixels by far more than 1e-5
    torch.testing.assert_close(
        loaded(str(charades))["pixel_values"], out["pixel_values"], atol=1e-6, rtol=1e-5
    )


def test_a_batch_of_videos_is_padded_with_a_clip_mask(charades, tmp_path):
    short = write_video(tmp_path / "short.mp4", num_frames=25, fps=5)  # 5 s -> 2 clips
    processor = RDMFVideoProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    out = processor([str(charades), short])
    assert out["pixel_values"].shape == (2, 15, 1, 3, 16, 16)
    assert out["pixel_mask"].sum(dim=1).tolist() == [15, 2]
    assert torch.all(out["pixel_values"][1, 2:] == 0)  # padding: exact zeros


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing.mp4", "videos: no file at"),
        (
            lambda tmp: (tmp / "text.mp4").write_text("not a video") and tmp / "text.mp4",
            "is not a readable video",
        ),
        (lambda tmp: write_video(tmp / "empty.mp4", num_frames=0), "zero-length video"),
    ],
    ids=["missing", "not-a-video", "zero-length"],
)
def test_bad_videos_raise_naming_the_argument(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        RDMFVideoProcessor()(str(path))


def test_bad_clip_layout_raises():
    with pytest.raises(ValueError, match="clip_length: expected a positive"):
        RDMFVideoProcessor(clip_length=0)
    with pytest.raises(ValueError, match="frames_per_clip: expected a positive integer"):
        RDMFVideoProcessor(frames_per_clip=0)
    with pytest.raises(ValueError, match="videos: expected a video file path"):
        RDMFVideoProcessor()([])


def test_a_video_decoded_by_the_caller_gives_the_files_pixels(charades):
    """Frames and timestamps you decoded yourself (another decoder, a camera) plan the same clips."""
    stamps = read_frame_timestamps(charades)
    decoded = decode_frames(charades, stamps.pts)
    frames = np.stack([decoded[int(p)] for p in stamps.pts])  # (n, H, W, 3) uint8, presentation order
    processor = RDMFVideoProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    from_file = processor(str(charades), frames_per_clip=2)
    given = {"frames": frames, "timestamps": stamps.times + 7.0, "duration": stamps.duration}  # any origin
    from_arrays = processor([given, str(charades)], frames_per_clip=2)
    # the same frames through the same operations: exact
    assert torch.equal(from_arrays["pixel_values"][0], from_file["pixel_values"][0])
    assert torch.equal(from_arrays["pixel_values"][1], from_file["pixel_values"][0])
    assert from_arrays["durations"].tolist() == [stamps.duration, stamps.duration]
    np.testing.assert_array_equal(
        from_arrays["clip_sampling"][0].frame_indices, from_file["clip_sampling"][0].frame_indices
    )
    with pytest.raises(ValueError, match="timestamps must be 460 finite, strictly increasing seconds"):
        processor({"frames": frames, "timestamps": stamps.times[::-1]})
    with pytest.raises(ValueError, match=r"frames must be \(n, H, W, 3\) uint8"):
        processor({"frames": frames.astype(np.float32), "timestamps": stamps.times})
