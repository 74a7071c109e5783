"""Feature sets: a corpus's pre-extracted features as a `datasets` dataset (parquet shards and a card).

A feature set is a folder (or a Hub dataset repository) holding one parquet config per stream:

- a video stream (``clip``, ``slowfast``, ``i3d_rgb``, ...): one row per video, ``id`` (the video id),
  ``features`` (the ``(clips, dim)`` array flattened, float16 or float32), ``shape`` (``[clips, dim]``)
  and ``clip_length`` (seconds per row);
- the ``text`` stream: one row per query (or per video, for TVSum's titles), ``id``, ``tokens``
  (``(tokens, dim)`` flattened), ``shape`` and ``pooled`` (``(dim,)`` or null);

and a ``README.md`` dataset card whose YAML lists the configs (so ``datasets.load_dataset(repo, "clip")``
works) and carries the manifest under ``rdmf_feature_set``: per stream its kind, key (``vid`` or ``qid``),
width, row count, clip length and, where the source had one, the extraction manifest (backbone, weights,
preprocessing); the library version and the array dtype. `feature_set_writer` writes sets.

`FeatureSet` opens one from a local folder or a Hub id (downloaded once with ``snapshot_download``) and
reads each stream through ``datasets.load_dataset`` (memory-mapped Arrow: a row is read when asked, so
memory does not grow with the set). Its readers are drop-in replacements for the folder readers: a
`FeatureSetStream` for `features.FeatureStream` inside a `VideoFeatureReader`, a `FeatureSetTextReader`
for `features.TextFeatureReader`; arrays come back float32 and L2-normalised per row, as from folders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .features import FeatureError, TextFeatures, VideoFeatureReader, _as_float32, check_feature_values

FEATURE_SET_FORMAT = "rdmf-feature-set/1"
CARD_KEY = "rdmf_feature_set"  # the manifest's key in the card's YAML
TEXT_STREAM = "text"


class FeatureSet:
    """A feature set, local or on the Hub, and readers for its streams.

    Args:
        path_or_repo: a folder holding the set's ``README.md`` and shards, or a Hub dataset id.
        revision: the Hub revision (branch, tag or commit); ignored for a folder.
        cache_dir: where ``datasets`` keeps its Arrow copy of the shards (its default cache when None).

    Raises:
        FeatureError: no card, a card without the manifest, or shards that disagree with it (naming the
            shard and row).
    """

    def __init__(self, path_or_repo: str | Path, revision: str | None = None, cache_dir: str | None = None):
        self.source = str(path_or_repo)
        self.folder = _local_folder(path_or_repo, revision)
        self.manifest = read_feature_set_manifest(self.folder)
        self.cache_dir = cache_dir
        self._streams: dict[str, _StreamRows] = {}

    @property
    def video_streams(self) -> list[str]:
        """The video streams' names, in the card's order (the order they are concatenated in by default)."""
        return [name for name, s in self.manifest["streams"].items() if s["kind"] == "video"]

    def stream_manifest(self, name: str) -> dict:
        streams = self.manifest["streams"]
        if name not in streams:
            raise FeatureError(
                f"feature set {self.source}: no stream {name!r} (it has: {', '.join(streams)})"
            )
        return streams[name]

    def rows(self, name: str) -> _StreamRows:
        """The stream's rows, opened (and checked) once."""
        if name not in self._streams:
            self._streams[name] = _StreamRows(self, name, self.stream_manifest(name), self.cache_dir)
        return self._streams[name]

    def video_reader(
        self, streams: Sequence[str] | None = None, max_row_difference: int = 1, normalize: bool = True
    ) -> VideoFeatureReader:
        """A `VideoFeatureReader` over the named video streams (all of them, in card order, when None)."""
        names = list(streams or self.video_streams)
        for name in names:
            if self.stream_manifest(name)["kind"] != "video":
                raise FeatureError(f"feature set {self.source}: stream {name!r} is not a video stream")
        return VideoFeatureReader(
            [FeatureSetStream(self.rows(name), normalize) for name in names], max_row_difference
        )

    def text_reader(self, dim: int | None = None, normalize: bool = True) -> FeatureSetTextReader:
        """A reader of the ``text`` stream, keyed by ``qid`` or ``vid`` as its manifest says."""
        return FeatureSetTextReader(self.rows(TEXT_STREAM), dim, normalize)


def read_feature_set_manifest(folder: str | Path) -> dict:
    """The manifest in a feature set's card (``README.md``), checked for its format and streams."""
    from huggingface_hub import DatasetCard

    card_path = Path(folder) / "README.md"
    if not card_path.is_file():
        raise FeatureError(f"{folder}: not a feature set (no README.md dataset card)")
    manifest = DatasetCard.load(card_path).data.to_dict().get(CARD_KEY)
    if not isinstance(manifest, dict) or manifest.get("format") != FEATURE_SET_FORMAT:
        raise FeatureError(f"{card_path}: no {CARD_KEY} manifest of format {FEATURE_SET_FORMAT}")
    if not isinstance(manifest.get("streams"), dict) or not manifest["streams"]:
        raise FeatureError(f"{card_path}: {CARD_KEY}.streams lists no stream")
    return manifest


def _local_folder(path_or_repo: str | Path, revision: str | None) -> Path:
    """A local folder as is; a Hub dataset id downloaded (once, into the Hub cache) and its snapshot folder."""
    path = Path(path_or_repo)
    if path.is_dir():
        return path
    if path.exists() or str(path_or_repo).count("/") != 1:
        raise FeatureError(f"feature set {path_or_repo}: neither a folder nor a Hub dataset id (user/name)")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(str(path_or_repo), repo_type="dataset", revision=revision))
    except Exception as error:  # offline, unknown repo, bad revision: the Hub's many error types
        raise FeatureError(
            f"feature set {path_or_repo}: no such folder, and the Hub dataset could not be fetched "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
        ) from None


def shard_files(folder: Path, name: str) -> list[Path]:
    """A stream's parquet shards, sorted: the order of its rows."""
    return sorted((folder / name).glob("*.parquet"))


class _StreamRows:
    """One stream's rows: the `datasets.Dataset` (memory-mapped), an ``id -> row`` index, and where each
    row came from (shard file, row in it) for error messages. Checks every row's shape on opening."""

    def __init__(self, feature_set: FeatureSet, name: str, manifest: Mapping, cache_dir: str | None):
        import datasets

        self.name, self.manifest = name, manifest
        self.shards = shard_files(feature_set.folder, name)
        if not self.shards:
            raise FeatureError(f"feature set {feature_set.source}: stream {name!r} has no shard in {name}/")
        self.where = f"feature set {feature_set.source}, stream {name!r}"
        self.dataset = datasets.load_dataset(
            "parquet", data_files={"train": [str(p) for p in self.shards]}, split="train", cache_dir=cache_dir
        )
        self.array_column = "tokens" if manifest["kind"] == "text" else "features"
        self.starts = np.cumsum([0] + [_parquet_rows(path) for path in self.shards])
        self.index = self._index_ids()
        self._check_shapes()
        columns = [self.array_column, "shape"] + (["pooled"] if manifest["kind"] == "text" else [])
        self.numpy = self.dataset.with_format("numpy", columns=columns)

    def locate(self, row: int) -> str:
        """``shard file, row k`` of a global row."""
        shard = int(np.searchsorted(self.starts, row, side="right")) - 1
        return f"{self.shards[shard]}, row {row - self.starts[shard]}"

    def _index_ids(self) -> dict[str, int]:
        index: dict[str, int] = {}
        for row, identifier in enumerate(self.dataset["id"]):
            if identifier is None or identifier == "":
                raise FeatureError(f"{self.locate(row)}: no id")
            if identifier in index:
                raise FeatureError(
                    f"{self.locate(row)}: id {identifier!r} again (first at {self.locate(index[identifier])})"
                )
            index[identifier] = row
        return index

    def _check_shapes(self) -> None:
        """Every row: ``shape`` is ``[rows, dim]`` with the manifest's dim, and the array holds rows * dim values."""
        import pyarrow.compute as pc

        table = self.dataset.data
        lengths = pc.list_value_length(table.column(self.array_column)).to_numpy(zero_copy_only=False)
        dim = self.manifest["feature_dim"]
        for row, (shape, length) in enumerate(zip(table.column("shape").to_pylist(), lengths)):
            if shape is None or len(shape) != 2 or shape[1] != dim or shape[0] < 1:
                raise FeatureError(
                    f"{self.locate(row)}: shape {shape}, expected [rows, {dim}] ({self.where})"
                )
            if length != shape[0] * shape[1]:
                raise FeatureError(
                    f"{self.locate(row)}: {self.array_column!r} has {length} values, shape {shape} says "
                    f"{shape[0] * shape[1]} ({self.where})"
                )

    def row_of(self, identifier: str) -> int:
        if identifier not in self.index:
            raise FeatureError(
                f"{self.where}: no row with id {identifier!r} ({len(self.index)} rows in {self.name}/)"
            )
        return self.index[identifier]

    def read(self, identifier: str) -> tuple[np.ndarray, np.ndarray | None, str]:
        """``(array (rows, dim) float32, pooled (dim,) or None, where it was read)``."""
        row = self.row_of(identifier)
        record = self.numpy[row]
        array = np.asarray(record[self.array_column], dtype=np.float32).reshape(tuple(record["shape"]))
        pooled = record.get("pooled")
        pooled = None if pooled is None else np.asarray(pooled, dtype=np.float32).reshape(-1)
        return array, pooled, self.locate(row)


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


class FeatureSetStream:
    """A video stream of a feature set, with the interface of `features.FeatureStream` (``dim``,
    ``path_for``, ``num_rows``, ``read``), so a `VideoFeatureReader` takes it as it takes a folder."""

    def __init__(self, rows: _StreamRows, normalize: bool = True):
        self.rows, self.normalize = rows, normalize
        self.dim = int(rows.manifest["feature_dim"])

    def path_for(self, vid: str) -> str:
        """Where the video's row lies (errors name it)."""
        return self.rows.locate(self.rows.row_of(vid))

    def num_rows(self, vid: str) -> int:
        return int(self.rows.dataset.data.column("shape")[self.rows.row_of(vid)].as_py()[0])

    def read(self, vid: str) -> np.ndarray:
        """(clips, dim) float32, L2-normalised per row unless ``normalize`` is False."""
        array, _, where = self.rows.read(vid)
        check_feature_values(array, where)
        return _as_float32(array, self.normalize)


class FeatureSetTextReader:
    """The ``text`` stream of a feature set, with the interface of `features.TextFeatureReader`."""

    def __init__(self, rows: _StreamRows, dim: int | None = None, normalize: bool = True):
        self.rows, self.normalize = rows, normalize
        self.key = rows.manifest.get("key", "qid")
        if dim is not None and rows.manifest["feature_dim"] != dim:
            raise FeatureError(
                f"{rows.where}: text feature width {rows.manifest['feature_dim']}, expected {dim}"
            )

    def read(self, example: Mapping) -> TextFeatures:
        tokens, pooled, where = self.rows.read(str(example[self.key]))
        check_feature_values(tokens, where)
        pooled = None if pooled is None else _as_float32(pooled, self.normalize)
        return TextFeatures(_as_float32(tokens, self.normalize), pooled)


__all__ = [
    "CARD_KEY",
    "FEATURE_SET_FORMAT",
    "FeatureSet",
    "FeatureSetStream",
    "FeatureSetTextReader",
    "read_feature_set_manifest",
    "shard_files",
]
