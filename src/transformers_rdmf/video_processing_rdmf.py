"""RDMF video processor: a video file -> fixed-length clips -> normalised pixel tensors.

Decoding uses PyAV. A video is cut into clips of ``clip_length`` seconds (QVHighlights: 2 s) from its
start; each clip is represented by ``frames_per_clip`` frames, the frames *shown* at evenly spaced times
inside the clip (for one frame: the clip's centre), located by the container's own frame timestamps, so
variable frame rates and non-zero start times are handled. Only complete clips are kept (as the field's
pre-extracted features do: 15 clips for a 30.7 s video), except that a video shorter than one clip
gives one clip. Frames are then resized, centre-cropped and normalised with CLIP's mean and std.
"""

import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
from transformers import AutoVideoProcessor
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, PILImageResampling
from transformers.processing_utils import VideosKwargs
from transformers.video_processing_utils import BaseVideoProcessor, BatchFeature

from .configuration_rdmf import RDMFConfig

# Timestamps are rationals rounded to float: a time within this many seconds of a frame's start is at it.
TIME_TOLERANCE = 1e-6


@dataclass(frozen=True)
class VideoTimestamps:
    """The container's presentation timestamps of a video stream.

    Attributes:
        pts: ``(frames,)`` int64 presentation timestamps in ``time_base`` units, sorted.
        times: ``(frames,)`` float64 seconds from the stream's start.
        duration: seconds, the end of the last frame.
        declared_duration: seconds the container says the stream lasts (None when it does not say).
    """

    pts: np.ndarray
    times: np.ndarray
    duration: float
    declared_duration: float | None = None


@dataclass(frozen=True)
class ClipSampling:
    """Where the clips of a video lie and which frames represent them.

    Attributes:
        duration: the video's duration in seconds.
        clip_boundaries: ``(clips, 2)`` float64 ``[start, end)`` of each clip in seconds.
        frame_indices: ``(clips, frames_per_clip)`` int64 indices of the sampled frames (presentation order).
        frame_times: ``(clips, frames_per_clip)`` float64 the container's timestamps of those frames, seconds.
        frames_in_clip: ``(clips,)`` int64 how many of the video's frames start inside each clip.
    """

    duration: float
    clip_boundaries: np.ndarray
    frame_indices: np.ndarray
    frame_times: np.ndarray
    frames_in_clip: np.ndarray

    @property
    def num_clips(self) -> int:
        return len(self.clip_boundaries)


def _open_video(path: str | os.PathLike):
    """Open ``path`` with PyAV; errors name the ``videos`` argument. Returns ``(container, stream)``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"videos: no file at {path}")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise ValueError(f"videos: {path} is not a readable video ({error})") from error
    if not container.streams.video:
        empty = len(container.streams) == 0
        container.close()
        if empty:
            raise ValueError(
                f"videos: {path} has no frames (a zero-length video: the container holds no stream)"
            )
        raise ValueError(f"videos: {path} has no video stream")
    return container, container.streams.video[0]


def read_frame_timestamps(path: str | os.PathLike, clip_length: float = 2.0) -> VideoTimestamps:
    """The presentation timestamps of every frame of ``path``'s first video stream, from its packets (no decoding).

    A stream whose frames end more than ``clip_length`` seconds before the duration its container declares
    (a truncated file whose index sits at the front, say) gives a warning naming both durations: the
    frames that exist are used, and the clips are those of the shorter video.
    """
    container, stream = _open_video(path)
    with container:
        pts, durations = [], []
        try:
            for packet in container.demux(stream):
                if packet.pts is not None:
                    pts.append(packet.pts)
                    durations.append(packet.duration or 0)
        except av.error.FFmpegError as error:
            raise ValueError(f"videos: {path} could not be read ({error})") from error
        if not pts:
            raise ValueError(f"videos: {path} has no frames (a zero-length video)")
        order = np.argsort(pts, kind="stable")
        pts, durations = np.asarray(pts, dtype=np.int64)[order], np.asarray(durations, dtype=np.int64)[order]
        time_base = float(stream.time_base)
        start = stream.start_time if stream.start_time is not None else int(pts[0])
        declared = _declared_duration(container, stream)
    times = (pts - start) * time_base
    last_duration = durations[-1] if durations[-1] > 0 else _typical_interval(pts)
    duration = float(times[-1] + last_duration * time_base)
    if not duration > 0:
        raise ValueError(f"videos: {path} has no frames (a zero-length video)")
    if declared is not None and declared - duration > clip_length:
        warnings.warn(
            f"{path}: its frames end at {duration:.2f} s but the container says {declared:.2f} s (truncated "
            f"or damaged?); only the {duration:.2f} s that exist are used",
            stacklevel=2,
        )
    return VideoTimestamps(pts=pts, times=times, duration=duration, declared_duration=declared)


def _declared_duration(container, stream) -> float | None:
    """The stream's duration from its header in seconds, else the container's; None when neither says."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return container.duration / av.time_base if container.duration else None


def _typical_interval(pts: np.ndarray) -> float:
    return float(np.median(np.diff(pts))) if len(pts) > 1 else 0.0


def plan_clips(times: np.ndarray, duration: float, clip_length: float, frames_per_clip: int) -> ClipSampling:
    """Cut ``[0, duration)`` into clips and pick the frames that represent each.

    Args:
        times: ``(frames,)`` sorted frame timestamps in seconds.
        duration: the video's duration in seconds.
        clip_length: seconds per clip.
        frames_per_clip: frames sampled per clip, at times ``start + (j + 0.5) * length / frames_per_clip``;
            the frame chosen for a time is the one shown then (the last frame starting at or before it).
    """
    num_clips = max(1, math.floor((duration + TIME_TOLERANCE) / clip_length))
    starts = np.arange(num_clips, dtype=np.float64) * clip_length
    ends = np.minimum(starts + clip_length, duration)
    offsets = (np.arange(frames_per_clip) + 0.5) / frames_per_clip
    targets = starts[:, None] + offsets[None, :] * (ends - starts)[:, None]  # (clips, frames_per_clip)
    shown_by = times - TIME_TOLERANCE  # a frame is shown from its start on
    indices = np.clip(np.searchsorted(shown_by, targets, side="right") - 1, 0, len(times) - 1)
    started_by = times + TIME_TOLERANCE  # a frame starting at a clip boundary belongs to the clip after it
    frames_in_clip = np.searchsorted(started_by, ends) - np.searchsorted(started_by, starts)
    return ClipSampling(
        duration=duration,
        clip_boundaries=np.stack([starts, ends], axis=1),
        frame_indices=indices.astype(np.int64),
        frame_times=times[indices],
        frames_in_clip=frames_in_clip.astype(np.int64),
    )


def iter_wanted_frames(path: str | os.PathLike, wanted: set[int]) -> Iterator[tuple[int, np.ndarray]]:
    """Decode ``path`` once, yielding ``(pts, (height, width, 3) uint8 RGB)`` for the first frame at each
    presentation timestamp in ``wanted``, in decoding order. Stopping early closes the container."""
    container, stream = _open_video(path)
    stream.thread_type = "AUTO"
    seen: set[int] = set()
    with container:
        try:
            for frame in container.decode(stream):
                if frame.pts in wanted and frame.pts not in seen:
                    seen.add(frame.pts)
                    yield frame.pts, frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as error:
            raise ValueError(f"videos: {path} could not be decoded ({error})") from error


def decode_frames(path: str | os.PathLike, wanted_pts: np.ndarray) -> dict[int, np.ndarray]:
    """Decode ``path`` once and keep the frames whose presentation timestamp is in ``wanted_pts``.

    Returns:
        ``{pts: (height, width, 3) uint8 RGB}``.
    """
    wanted = set(int(p) for p in wanted_pts)
    frames = {}
    for pts, image in iter_wanted_frames(path, wanted):
        frames[pts] = image
        if len(frames) == len(wanted):
            break
    missing = wanted - frames.keys()
    if missing:
        raise ValueError(f"videos: {path}: the decoder returned no frame at pts {sorted(missing)[:5]}")
    return frames


def decode_video_clips(
    path: str | os.PathLike, clip_length: float = 2.0, frames_per_clip: int = 1
) -> tuple[torch.Tensor, ClipSampling]:
    """Decode the frames that represent each clip of ``path``.

    Returns:
        ``(frames, sampling)``: ``frames`` ``(clips * frames_per_clip, 3, height, width)`` uint8, clip-major.
    """
    stamps = read_frame_timestamps(path, clip_length)
    sampling = plan_clips(stamps.times, stamps.duration, clip_length, frames_per_clip)
    wanted = stamps.pts[sampling.frame_indices.reshape(-1)]
    decoded = decode_frames(path, wanted)
    frames = np.stack([decoded[int(p)] for p in wanted])
    return torch.from_numpy(frames).permute(0, 3, 1, 2), sampling


def sample_decoded_clips(
    video: dict, clip_length: float = 2.0, frames_per_clip: int = 1
) -> tuple[torch.Tensor, ClipSampling]:
    """`decode_video_clips` for a video you decoded yourself: ``{"frames": (n, H, W, 3) uint8,
    "timestamps": (n,) seconds, ascending, "duration": seconds (optional: the last frame's start plus the
    typical frame interval)}``. The clips are planned on the timestamps exactly as for a file.

    Returns:
        ``(frames, sampling)``: ``frames`` ``(clips * frames_per_clip, 3, H, W)`` uint8, clip-major.
    """
    if not isinstance(video, dict) or "frames" not in video or "timestamps" not in video:
        raise ValueError('videos: a decoded video is a dict with "frames" (n, H, W, 3) and "timestamps" (n,)')
    frames = torch.as_tensor(np.asarray(video["frames"]))
    times = np.asarray(video["timestamps"], dtype=np.float64)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
        raise ValueError(
            f"videos: frames must be (n, H, W, 3) uint8, got {tuple(frames.shape)} {frames.dtype}"
        )
    if times.shape != (frames.shape[0],) or not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
        raise ValueError(
            f"videos: timestamps must be {frames.shape[0]} finite, strictly increasing seconds, one per frame"
        )
    start = times - times[0]
    duration = video.get("duration")
    if duration is None:
        duration = float(start[-1] + (np.median(np.diff(start)) if len(start) > 1 else clip_length))
    sampling = plan_clips(start, float(duration), clip_length, frames_per_clip)
    chosen = frames[torch.from_numpy(sampling.frame_indices.reshape(-1))]
    return chosen.permute(0, 3, 1, 2).contiguous(), sampling


def iter_clip_frames(
    path: str | os.PathLike, pts: np.ndarray, sampling: ClipSampling, clips_per_batch: int
) -> Iterator[torch.Tensor]:
    """Decode ``path`` once, yielding the sampled frames of ``clips_per_batch`` clips at a time.

    Only the frames still needed by a clip not yet yielded are kept, so memory is one batch of clips
    whatever the video's length.

    Args:
        pts: ``(frames,)`` the stream's presentation timestamps (`read_frame_timestamps`).
        sampling: the clip plan (`plan_clips`) over those frames.

    Yields:
        ``(clips_in_batch * frames_per_clip, 3, height, width)`` uint8, clip-major, in clip order.
    """
    wanted = pts[sampling.frame_indices]  # (clips, frames_per_clip)
    wanted_set = set(wanted.reshape(-1).tolist())
    kept: dict[int, np.ndarray] = {}
    next_clip, batch = 0, []
    for frame_pts, image in iter_wanted_frames(path, wanted_set):
        kept[frame_pts] = image
        while next_clip < len(wanted) and all(int(p) in kept for p in wanted[next_clip]):
            batch.extend(kept[int(p)] for p in wanted[next_clip])
            next_clip += 1
            if next_clip < len(wanted):
                oldest_needed = int(wanted[next_clip:].min())
                kept = {p: f for p, f in kept.items() if p >= oldest_needed}
            if len(batch) == clips_per_batch * wanted.shape[1]:
                yield torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2)
                batch = []
        if next_clip == len(wanted):
            break
    if next_clip < len(wanted):
        missing = sorted(int(p) for p in wanted[next_clip:].reshape(-1) if int(p) not in kept)
        raise ValueError(f"videos: {path}: the decoder returned no frame at pts {missing[:5]}")
    if batch:
        yield torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2)


def preprocess_frames(
    video_processor: "RDMFVideoProcessor", frames: torch.Tensor, frames_per_clip: int
) -> torch.Tensor:
    """Resize, crop and normalise decoded frames as ``video_processor`` does for whole videos.

    Args:
        frames: ``(clips * frames_per_clip, 3, H, W)`` uint8, clip-major.

    Returns:
        ``(clips, frames_per_clip, 3, h, w)`` float32.
    """
    pixels = BaseVideoProcessor.preprocess(video_processor, [frames], do_sample_frames=False)
    return pixels["pixel_values_videos"][0].unflatten(0, (-1, frames_per_clip))


class RDMFVideoProcessorKwargs(VideosKwargs, total=False):
    """``VideosKwargs`` plus the clip layout."""

    clip_length: float
    frames_per_clip: int


class RDMFVideoProcessor(BaseVideoProcessor):
    r"""Turns video files into the ``pixel_values`` and ``pixel_mask`` of :class:`RDMFForMomentRetrieval`.

    Args:
        clip_length (`float`, defaults to 2.0): seconds per clip (QVHighlights: 2).
        frames_per_clip (`int`, defaults to 1): frames sampled per clip (the backbone averages their embeddings).
        size, crop_size, resample, image_mean, image_std, ...: as any transformers video processor; the
            defaults are CLIP's (shortest edge 224, bicubic, centre crop 224, OpenAI CLIP mean and std).
    """

    _auto_class = "AutoVideoProcessor"  # save_pretrained writes its auto_map and copies this file
    valid_kwargs = RDMFVideoProcessorKwargs
    model_input_names = ["pixel_values", "pixel_mask"]
    resample = PILImageResampling.BICUBIC
    image_mean = OPENAI_CLIP_MEAN
    image_std = OPENAI_CLIP_STD
    size = {"shortest_edge": 224}
    crop_size = {"height": 224, "width": 224}
    do_resize = True
    do_center_crop = True
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True
    do_sample_frames = False
    clip_length = 2.0
    frames_per_clip = 1

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        _check_clip_layout(self.clip_length, self.frames_per_clip)

    def preprocess(
        self, videos, clip_length: float | None = None, frames_per_clip: int | None = None, **kwargs
    ):
        """Decode, sample, resize and normalise a batch of videos.

        Args:
            videos: a path to a video file, a video you decoded (``{"frames": (n, H, W, 3) uint8,
                "timestamps": (n,) seconds}``, see `sample_decoded_clips`), or a list of either.
            clip_length, frames_per_clip: override the processor's values.
            **kwargs: the usual video-processing options (``size``, ``do_normalize``, ...).

        Returns:
            A `BatchFeature` with ``pixel_values`` ``(batch, clips, frames_per_clip, 3, height, width)``
            float32 (videos padded to the longest with zeros), ``pixel_mask`` ``(batch, clips)`` (1 = real clip),
            ``durations`` ``(batch,)`` seconds, and ``clip_sampling``: one :class:`ClipSampling` per video.
        """
        clip_length = self.clip_length if clip_length is None else clip_length
        frames_per_clip = self.frames_per_clip if frames_per_clip is None else frames_per_clip
        _check_clip_layout(clip_length, frames_per_clip)
        kwargs.pop("return_tensors", None)
        decoded = [
            sample_decoded_clips(video, clip_length, frames_per_clip)
            if isinstance(video, dict)
            else decode_video_clips(video, clip_length, frames_per_clip)
            for video in _as_videos(videos)
        ]
        frames = super().preprocess([f for f, _ in decoded], do_sample_frames=False, **kwargs)
        samplings = [s for _, s in decoded]
        pixel_values, pixel_mask = _pad_clips(frames["pixel_values_videos"], samplings, frames_per_clip)
        return BatchFeature(
            data={
                "pixel_values": pixel_values,
                "pixel_mask": pixel_mask,
                "durations": torch.tensor([s.duration for s in samplings], dtype=torch.float64),
                "clip_sampling": samplings,
            }
        )


def _check_clip_layout(clip_length, frames_per_clip) -> None:
    if not (isinstance(clip_length, (int, float)) and clip_length > 0):
        raise ValueError(f"clip_length: expected a positive number of seconds, got {clip_length!r}")
    if not (isinstance(frames_per_clip, int) and frames_per_clip >= 1):
        raise ValueError(f"frames_per_clip: expected a positive integer, got {frames_per_clip!r}")


def _as_videos(videos) -> list:
    """One video (a path or a decoded dict) or a non-empty list of them, as a list."""
    one = (str, os.PathLike, dict)
    if isinstance(videos, one):
        return [videos]
    if isinstance(videos, (list, tuple)) and videos and all(isinstance(v, one) for v in videos):
        return list(videos)
    raise ValueError(
        "videos: expected a video file path, a decoded video ({'frames', 'timestamps'}) or a non-empty list "
        f"of them, got {type(videos).__name__}"
    )


def _pad_clips(videos, samplings: list[ClipSampling], frames_per_clip: int):
    """Per-video ``(clips * frames_per_clip, 3, h, w)`` -> ``(batch, max_clips, frames_per_clip, 3, h, w)`` and the mask."""
    max_clips = max(s.num_clips for s in samplings)
    first = videos[0]
    pixel_values = first.new_zeros((len(videos), max_clips, frames_per_clip, *first.shape[1:]))
    pixel_mask = torch.zeros(len(videos), max_clips, dtype=torch.long)
    for row, (video, sampling) in enumerate(zip(videos, samplings)):
        pixel_values[row, : sampling.num_clips] = video.reshape(
            sampling.num_clips, frames_per_clip, *video.shape[1:]
        )
        pixel_mask[row, : sampling.num_clips] = 1
    return pixel_values, pixel_mask


AutoVideoProcessor.register(RDMFConfig, RDMFVideoProcessor, exist_ok=True)

__all__ = [
    "ClipSampling",
    "RDMFVideoProcessor",
    "decode_video_clips",
    "sample_decoded_clips",
    "iter_clip_frames",
    "preprocess_frames",
    "plan_clips",
    "read_frame_timestamps",
]
