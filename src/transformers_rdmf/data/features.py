"""Readers for pre-extracted video and text features in the layouts the field publishes.

- Moment-DETR / QD-DETR / CG-DETR / lighthouse (QVHighlights, Charades-STA, ActivityNet): one folder
  per video stream holding ``{vid}.npz`` with ``features`` (clips, D) (e.g. CLIP 512, SlowFast 2304),
  and one text folder holding ``qid{qid}.npz`` with ``last_hidden_state`` (tokens, 512) and
  optionally ``pooler_output`` (512,).
- TVSum (UMT release): ``video_features/{vid}_rgb.npy`` and ``{vid}_opt.npy`` (I3D, 1024 each),
  ``audio_features/{vid}.npy`` (PANN, 2048), ``query_features/{vid}.npz`` with ``token`` (tokens, 512)
  and ``text`` (1, 512) for the video title.
- YouTube Highlights (UMT release): ``video_features/{vid}_rgb.npy`` and ``{vid}_opt.npy``; no text.
  Its query is the domain name: `DomainQueryEncoder` turns it into one one-hot token.

Reading is lazy: one video or query per call, ``.npy`` memory-mapped, so the corpus is never in
memory. Arrays are cast to float32 and, by default, L2-normalised per row before concatenation.
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .annotations import YOUTUBE_HIGHLIGHTS_DOMAINS


class FeatureError(ValueError):
    """A feature file with the wrong shape, width or length, or without the expected array."""


def l2_normalize(array: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Divide each row of (rows, D) by its L2 norm (rows of zeros stay zero)."""
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    return array / np.maximum(norms, eps)


def _require_file(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"feature file not found: {path}")
    return path


# what numpy and zipfile raise on an empty, truncated or corrupt .npy / .npz (or one holding pickled objects)
UNREADABLE = (EOFError, ValueError, OSError, zipfile.BadZipFile, zipfile.LargeZipFile)


def unreadable(path: Path, error: Exception) -> FeatureError:
    reason = str(error) or type(error).__name__
    return FeatureError(f"{path}: not a readable {path.suffix or 'numpy'} file ({reason})")


def read_array(path: str | Path, key: str | None = None) -> np.ndarray:
    """One array from a ``.npy`` (memory-mapped) or from the ``key`` entry of a ``.npz``.

    Raises:
        FeatureError: no ``key`` in the archive, or a file numpy cannot read (empty, truncated, corrupt).
    """
    path = _require_file(Path(path))
    try:
        if path.suffix == ".npy":
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as archive:
                if key not in archive.files:
                    raise FeatureError(f"{path}: no array {key!r} (found: {', '.join(archive.files)})")
                array = archive[key]
    except FeatureError:
        raise
    except UNREADABLE as error:
        raise unreadable(path, error) from None
    if array.dtype.kind not in "fiu":  # complex, boolean, strings: no feature is made of them
        raise FeatureError(
            f"{path}: an array of dtype {array.dtype}; expected real numbers (float16 or float32)"
        )
    return array


def read_array_shape(path: str | Path, key: str | None = None) -> tuple[int, ...]:
    """The shape of what `read_array` would return, reading only the file header."""
    path = _require_file(Path(path))
    try:
        return _array_shape(path, key)
    except FeatureError:
        raise
    except UNREADABLE as error:
        raise unreadable(path, error) from None


def _array_shape(path: Path, key: str | None) -> tuple[int, ...]:
    if path.suffix == ".npy":
        return np.load(path, mmap_mode="r").shape
    with zipfile.ZipFile(path) as archive:
        if f"{key}.npy" not in archive.namelist():
            found = ", ".join(name.removesuffix(".npy") for name in archive.namelist())
            raise FeatureError(f"{path}: no array {key!r} (found: {found})")
        with archive.open(f"{key}.npy") as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, _ = np.lib.format.read_array_header_1_0(member)
            else:
                shape, _, _ = np.lib.format.read_array_header_2_0(member)
    return shape


def check_feature_values(array: np.ndarray, path: str | Path) -> None:
    """Refuse an array of no rows, or with rows holding NaN or infinity (every output would be made up); warn of
    constant rows (all zero, say: a failed extraction), with their count, since they carry no information about their clip.

    Args:
        array: ``(rows, dim)``.
    """
    rows = array.shape[0]
    if rows == 0:
        raise FeatureError(f"{path}: no rows; expected one feature row per clip")
    finite = np.isfinite(array).all(axis=-1)
    if not finite.all():
        raise FeatureError(f"{path}: {int((~finite).sum())} of {rows} rows hold NaN or infinity")
    constant = int((array.max(axis=-1) == array.min(axis=-1)).sum()) if array.size else 0
    if constant:
        warnings.warn(
            f"{path}: {constant} of {rows} rows are constant (all zero?); they carry nothing about their clips",
            stacklevel=2,
        )


def _as_float32(array: np.ndarray, normalize: bool) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    return l2_normalize(array) if normalize else array


@dataclass(frozen=True)
class FeatureStream:
    """One per-clip feature stream: one file per video, ``directory / pattern.format(vid=...)``.

    Attributes:
        directory: the folder of this stream's files.
        pattern: file name template; ``{vid}`` is the video id (``.npz`` or ``.npy``).
        key: the array's name inside a ``.npz`` (ignored for ``.npy``).
        dim: expected width; None accepts any.
        normalize: L2-normalise each clip's row.
    """

    directory: Path
    pattern: str = "{vid}.npz"
    key: str = "features"
    dim: int | None = None
    normalize: bool = True

    def path_for(self, vid: str) -> Path:
        return Path(self.directory) / self.pattern.format(vid=vid)

    def _checked(self, shape: tuple[int, ...], path: Path) -> None:
        if len(shape) != 2:
            raise FeatureError(f"{path}: expected a (clips, dim) array, got shape {shape}")
        if self.dim is not None and shape[1] != self.dim:
            raise FeatureError(f"{path}: feature width {shape[1]}, expected {self.dim}")

    def num_rows(self, vid: str) -> int:
        """Row count of this video's array, from the file header only."""
        path = self.path_for(vid)
        shape = read_array_shape(path, self.key)
        self._checked(shape, path)
        return shape[0]

    def read(self, vid: str) -> np.ndarray:
        """(clips, dim) float32."""
        path = self.path_for(vid)
        array = read_array(path, self.key)
        self._checked(array.shape, path)
        array = np.asarray(array, dtype=np.float32)
        check_feature_values(array, path)
        return _as_float32(array, self.normalize)


class VideoFeatureReader:
    """Reads a video's streams, reconciles their lengths with the labels and concatenates them.

    Args:
        streams: the feature streams, concatenated in this order along the feature axis.
        max_row_difference: a stream whose row count differs from the labels' clip count by at most
            this many rows is truncated (with the labels) to the shorter; more is a `FeatureError`.
    """

    def __init__(self, streams: Sequence[FeatureStream], max_row_difference: int = 1):
        if not streams:
            raise ValueError("VideoFeatureReader needs at least one FeatureStream")
        self.streams = tuple(streams)
        self.max_row_difference = max_row_difference

    @property
    def dim(self) -> int | None:
        """Concatenated width Dv, when every stream declares its ``dim``."""
        dims = [stream.dim for stream in self.streams]
        return None if None in dims else sum(dims)

    def reconciled_length(self, vid: str, row_counts: Sequence[int], num_labels: int) -> int:
        """The common length of labels and streams, or a `FeatureError` when they differ too much."""
        for stream, rows in zip(self.streams, row_counts):
            if abs(rows - num_labels) > self.max_row_difference:
                raise FeatureError(
                    f"video {vid!r}: {stream.path_for(vid)} has {rows} rows but the labels have "
                    f"{num_labels} clips (at most {self.max_row_difference} row(s) difference is truncated)"
                )
        return min(num_labels, *row_counts)

    def check_length(self, vid: str, num_labels: int) -> int:
        """`reconciled_length` from the file headers, without reading the arrays."""
        return self.reconciled_length(vid, [stream.num_rows(vid) for stream in self.streams], num_labels)

    def read(self, vid: str, num_labels: int) -> tuple[np.ndarray, tuple[int, ...]]:
        """(L, Dv) float32 with L = `reconciled_length`, and each stream's row count before truncation."""
        arrays = [stream.read(vid) for stream in self.streams]
        row_counts = tuple(array.shape[0] for array in arrays)
        length = self.reconciled_length(vid, row_counts, num_labels)
        return np.concatenate([array[:length] for array in arrays], axis=1), row_counts


@dataclass(frozen=True)
class TextFeatures:
    """``tokens`` (N, Dt) float32 and ``pooled`` (Dt,) float32 or None."""

    tokens: np.ndarray
    pooled: np.ndarray | None = None


class TextFeatureReader:
    """Per-query token features: ``directory / pattern.format(qid=..., vid=..., domain=...)``.

    Args:
        directory: the text feature folder.
        pattern: file name template (Moment-DETR layout: ``qid{qid}.npz``; TVSum: ``{vid}.npz``).
        key: the token array, (N, Dt) or (1, N, Dt).
        pooled_key: the pooled array, read when present, (Dt,) or (1, Dt); None to skip.
        dim: expected width Dt; None accepts any.
        normalize: L2-normalise each token (and the pooled vector).
    """

    def __init__(
        self,
        directory: str | Path,
        pattern: str = "qid{qid}.npz",
        key: str = "last_hidden_state",
        pooled_key: str | None = "pooler_output",
        dim: int | None = None,
        normalize: bool = True,
    ):
        self.directory, self.pattern, self.key = Path(directory), pattern, key
        self.pooled_key, self.dim, self.normalize = pooled_key, dim, normalize

    def path_for(self, example: Mapping) -> Path:
        fields = {name: example.get(name, "") for name in ("qid", "vid", "domain")}
        return self.directory / self.pattern.format(**fields)

    def read(self, example: Mapping) -> TextFeatures:
        path = _require_file(self.path_for(example))
        try:
            with np.load(path, allow_pickle=False) as archive:
                if self.key not in archive.files:
                    raise FeatureError(f"{path}: no array {self.key!r} (found: {', '.join(archive.files)})")
                tokens = archive[self.key]
                pooled = archive[self.pooled_key] if self.pooled_key in archive.files else None
        except FeatureError:
            raise
        except UNREADABLE as error:
            raise unreadable(path, error) from None
        if tokens.dtype.kind not in "fiu" or (pooled is not None and pooled.dtype.kind not in "fiu"):
            raise FeatureError(
                f"{path}: an array of dtype {tokens.dtype}; expected real numbers (float16 or float32)"
            )
        if tokens.ndim == 3 and tokens.shape[0] == 1:
            tokens = tokens[0]
        if tokens.ndim != 2 or tokens.shape[0] == 0:
            raise FeatureError(f"{path}: expected '{self.key}' of shape (tokens, dim), got {tokens.shape}")
        if self.dim is not None and tokens.shape[1] != self.dim:
            raise FeatureError(f"{path}: text feature width {tokens.shape[1]}, expected {self.dim}")
        if pooled is not None:
            pooled = _as_float32(pooled.reshape(-1), self.normalize)
        return TextFeatures(_as_float32(tokens, self.normalize), pooled)


class DomainQueryEncoder:
    """Text features for queries that are a category name (YouTube Highlights' domains).

    There is no text feature release for YouTube Highlights, and its query is one word from a closed
    set, so the query becomes a single token: the one-hot vector of the domain's index in ``domains``,
    zero-padded to ``dim`` (to match a model's text width). The model's text projection of a one-hot
    token is a learned embedding per domain. To use real text embeddings of the domain names instead,
    write one ``{domain}.npz`` per domain with ``last_hidden_state`` and use
    ``TextFeatureReader(folder, pattern="{domain}.npz")``.
    """

    def __init__(self, domains: Sequence[str] = YOUTUBE_HIGHLIGHTS_DOMAINS, dim: int | None = None):
        self.domains = tuple(domains)
        self.dim = dim if dim is not None else len(self.domains)
        if self.dim < len(self.domains):
            raise ValueError(f"dim {self.dim} is smaller than the {len(self.domains)} domains")

    def read(self, example: Mapping) -> TextFeatures:
        name = example.get("domain") or example.get("query")
        if name not in self.domains:
            raise FeatureError(
                f"query {example.get('qid')!r}: unknown domain {name!r}; known: {self.domains}"
            )
        token = np.zeros((1, self.dim), dtype=np.float32)
        token[0, self.domains.index(name)] = 1.0
        return TextFeatures(token, token[0])


def standard_video_reader(
    directories: Sequence[str | Path], dims: Sequence[int | None] | None = None, max_row_difference: int = 1
) -> VideoFeatureReader:
    """Moment-DETR layout: one folder per stream, ``{vid}.npz`` with ``features`` (e.g. CLIP then SlowFast)."""
    dims = dims if dims is not None else [None] * len(directories)
    streams = [FeatureStream(Path(folder), dim=dim) for folder, dim in zip(directories, dims, strict=True)]
    return VideoFeatureReader(streams, max_row_difference)


def _i3d_streams(folder: Path) -> list[FeatureStream]:
    return [
        FeatureStream(folder, "{vid}_rgb.npy", dim=1024),
        FeatureStream(folder, "{vid}_opt.npy", dim=1024),
    ]


def tvsum_video_reader(
    root: str | Path, audio: bool = False, max_row_difference: int = 1
) -> VideoFeatureReader:
    """TVSum: I3D rgb + optical flow (2048), plus PANN audio (4096 in all) when ``audio``."""
    streams = _i3d_streams(Path(root) / "video_features")
    if audio:
        streams.append(FeatureStream(Path(root) / "audio_features", "{vid}.npy", dim=2048))
    return VideoFeatureReader(streams, max_row_difference)


def tvsum_text_reader(root: str | Path) -> TextFeatureReader:
    """TVSum: CLIP tokens of the video title, ``query_features/{vid}.npz`` (``token``, ``text``)."""
    return TextFeatureReader(
        Path(root) / "query_features", "{vid}.npz", key="token", pooled_key="text", dim=512
    )


def youtube_highlights_video_reader(root: str | Path, max_row_difference: int = 1) -> VideoFeatureReader:
    """YouTube Highlights: I3D rgb + optical flow (2048)."""
    return VideoFeatureReader(_i3d_streams(Path(root) / "video_features"), max_row_difference)
