"""Decoding that runs ahead of the backbones: a few threads decode the next videos while one is encoded.

`decode_ahead` yields the videos in their given order. Video ``j`` is decoded by thread ``j % threads``
(each thread takes its videos in order), into a bounded queue of frame batches, so memory stays at
``threads * depth`` batches of clips however long the videos are. PyAV and torch release the GIL while
they work, so threads are enough: no process pool, no copies of the frames between processes.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..video_processing_rdmf import ClipSampling, iter_clip_frames, plan_clips, read_frame_timestamps

_END = object()  # after a video's last batch


@dataclass
class PlannedVideo:
    """One video, as `decode_ahead` yields it.

    Attributes:
        vid, path: the video's id and file.
        sampling: its clip plan; None when it could not be read (then ``error`` says why).
        todo: what ``needs(vid, sampling)`` returned (the encoders still to run); empty: nothing decoded.
        batches: ``(clips * frames_per_clip, 3, h, w)`` uint8 frame batches, in clip order (see
            `iter_clip_frames`); iterate it once, before asking for the next video.
        error: the reason the video was skipped, or None.
    """

    vid: str
    path: Path
    sampling: ClipSampling | None
    todo: list = field(default_factory=list)
    batches: Iterator[torch.Tensor] = iter(())
    error: str | None = None


class _Decoder(threading.Thread):
    """Decodes every ``threads``-th video from ``first`` into its own bounded queue."""

    def __init__(self, pairs, first, threads, plan, needs, batch_size, depth, stop):
        super().__init__(daemon=True, name=f"rdmf-decode-{first}")
        self.pairs = pairs[first::threads]
        self.plan, self.needs, self.batch_size = plan, needs, batch_size
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.stop = stop
        self.seconds = 0.0

    def put(self, item) -> bool:
        """Queue ``item``; False when the consumer has stopped (then this thread ends)."""
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        for vid, path in self.pairs:
            try:
                if not self.decode_one(vid, path):
                    return
            except BaseException as error:  # a bug: handed to the consumer, which raises it
                self.put(("fatal", error))
                return

    def decode_one(self, vid: str, path: Path) -> bool:
        start = time.perf_counter()
        try:
            stamps, sampling = self.plan(path)
        except (ValueError, OSError) as error:  # unreadable, or gone since listed: reported, the others run
            self.seconds += time.perf_counter() - start
            return self.put(("error", str(error))) and self.put(_END)
        todo = self.needs(vid, sampling)
        if not self.put(("plan", (sampling, todo))):
            return False
        if todo:
            batches = iter_clip_frames(path, stamps.pts, sampling, self.batch_size)
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                except (ValueError, OSError) as error:  # undecodable past some point
                    self.seconds += time.perf_counter() - start
                    return self.put(("error", str(error))) and self.put(_END)
                self.seconds += time.perf_counter() - start
                if not self.put(("batch", batch)):
                    return False
                start = time.perf_counter()
        self.seconds += time.perf_counter() - start
        return self.put(_END)


def clip_plan(clip_length: float, frames_per_clip: int) -> Callable:
    """``path -> (timestamps, sampling)``: the container's frame timestamps and the clip plan over them."""

    def plan(path):
        stamps = read_frame_timestamps(path, clip_length)
        return stamps, plan_clips(stamps.times, stamps.duration, clip_length, frames_per_clip)

    return plan


class DecodeAhead:
    """Iterate `PlannedVideo` s in order while ``threads`` threads decode ahead (see the module docstring).

    Args:
        pairs: ``(vid, path)`` in order.
        plan: ``path -> (timestamps, sampling)`` (`clip_plan`); a ``ValueError`` skips the video.
        needs: ``(vid, sampling) -> todo``; frames are decoded only when ``todo`` is not empty.
        batch_size: clips per frame batch. depth: batches each thread may hold ahead.

    ``decode_seconds`` is the threads' summed time; ``wait_seconds`` the consumer's time waiting on them.
    Use as a context manager: leaving it (a failure included) stops the threads.
    """

    def __init__(
        self,
        pairs: Sequence[tuple[str, Path]],
        plan: Callable,
        needs: Callable,
        batch_size: int,
        threads: int = 1,
        depth: int = 2,
    ):
        if threads < 1:
            raise ValueError(f"decode threads: expected a positive integer, got {threads}")
        self.pairs = list(pairs)
        self.stop = threading.Event()
        self.decoders = [
            _Decoder(self.pairs, i, threads, plan, needs, batch_size, depth, self.stop)
            for i in range(min(threads, max(1, len(self.pairs))))
        ]
        self.wait_seconds = 0.0

    def __enter__(self) -> DecodeAhead:
        self._start()
        return self

    def _start(self) -> None:
        for decoder in self.decoders:
            if decoder.ident is None:
                decoder.start()

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for decoder in self.decoders:
            decoder.join()

    @property
    def decode_seconds(self) -> float:
        return sum(decoder.seconds for decoder in self.decoders)

    def _get(self, decoder: _Decoder):
        """The decoder's next item; a decoder that died without a word is a ``RuntimeError``, not a hang."""
        start = time.perf_counter()
        while True:
            try:
                item = decoder.queue.get(timeout=1.0)
                break
            except queue.Empty:
                if not decoder.is_alive() and decoder.queue.empty():
                    raise RuntimeError(f"{decoder.name} stopped before handing over its next video") from None
        self.wait_seconds += time.perf_counter() - start
        if isinstance(item, tuple) and item[0] == "fatal":
            raise item[1]
        return item

    def __iter__(self) -> Iterator[PlannedVideo]:
        self._start()
        for index, (vid, path) in enumerate(self.pairs):
            decoder = self.decoders[index % len(self.decoders)]
            kind, value = self._get(decoder)
            if kind == "error":
                self._get(decoder)  # its end marker
                yield PlannedVideo(vid, path, None, error=value)
                continue
            sampling, todo = value
            video = PlannedVideo(vid, path, sampling, todo, self._batches(decoder))
            yield video
            for _ in video.batches:  # what the consumer left unread (all of it when todo is empty)
                pass

    def _batches(self, decoder: _Decoder) -> Iterator[torch.Tensor]:
        """One video's batches; a decoding failure part-way raises ``ValueError`` with its reason."""
        while True:
            item = self._get(decoder)
            if item is _END:
                return
            kind, value = item
            if kind == "error":
                self._get(decoder)  # its end marker
                raise ValueError(value)
            yield value


__all__ = ["DecodeAhead", "PlannedVideo", "clip_plan"]
