"""Writing feature sets (see `feature_sets`): feature folders in any layout the loaders read, as parquet
shards with a dataset card, and their upload to the Hub.

Layouts (`source_streams`):

- ``moment_detr``: Moment-DETR / QD-DETR / CG-DETR / lighthouse folders, and this library's own
  ``rdmf extract-features`` output (the same layout, with ``rdmf_features.json`` manifests): one folder
  per video stream of ``{vid}.npz`` (``features``), a text folder of ``qid{qid}.npz``
  (``last_hidden_state``, ``pooler_output``). A stream is named by its manifest, else by its folder.
- ``tvsum``: the UMT release, ``video_features/{vid}_rgb.npy`` / ``_opt.npy`` (streams ``i3d_rgb``,
  ``i3d_flow``), ``audio_features/{vid}.npy`` (``audio``) and ``query_features/{vid}.npz`` (``text``,
  keyed by video: the title).
- ``youtube_highlights``: the UMT release, ``video_features/{vid}_rgb.npy`` / ``_opt.npy``; no text.

Arrays are stored as read (not normalised: the readers normalise, as they do for folders), in float16
(half the size; the rounding error is recorded per stream) or float32 (exact).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_folder
from ..errors import require_positive_integer, require_positive_seconds
from ..feature_manifest import read_manifest
from .feature_sets import CARD_KEY, FEATURE_SET_FORMAT, TEXT_STREAM
from .features import FeatureError, FeatureStream, TextFeatureReader

DTYPES = ("float16", "float32")
LAYOUTS = ("moment_detr", "tvsum", "youtube_highlights")


@dataclass
class SourceStream:
    """One stream of a feature folder, to be written as one config of a set.

    Attributes:
        name: the config's name (``clip``, ``i3d_rgb``, ``text``).
        kind: ``video`` or ``text``. key: what a row's id is (``vid`` or ``qid``).
        ids: the ids found, sorted. read: ``id -> (array (rows, dim), pooled (dim,) or None)``, as stored.
        facts: what the manifest records beside the rows (clip length, the extraction manifest).
    """

    name: str
    kind: str
    key: str
    ids: list[str]
    read: Callable[[str], tuple[np.ndarray, np.ndarray | None]]
    facts: dict = field(default_factory=dict)


def ids_matching(folder: Path, pattern: str) -> list[str]:
    """The ids of the files ``pattern`` (one ``{vid}`` or ``{qid}`` field) names in ``folder``, sorted."""
    field_name = "{vid}" if "{vid}" in pattern else "{qid}"
    prefix, suffix = pattern.split(field_name)
    if not folder.is_dir():
        raise FileNotFoundError(f"feature folder not found: {folder}")
    names = (p.name for p in folder.iterdir() if p.is_file())
    return sorted(n[len(prefix) : len(n) - len(suffix)] for n in names if n.startswith(prefix) and n.endswith(suffix) and len(n) > len(prefix) + len(suffix))  # fmt: skip


def video_source(name: str, stream: FeatureStream, facts: dict) -> SourceStream:
    raw = FeatureStream(stream.directory, stream.pattern, stream.key, stream.dim, normalize=False)
    return SourceStream(
        name, "video", "vid", ids_matching(Path(stream.directory), stream.pattern), lambda i: (raw.read(i), None), facts
    )  # fmt: skip


def text_source(folder: Path, pattern: str, key: str, token_key: str, pooled_key: str | None) -> SourceStream:
    reader = TextFeatureReader(folder, pattern, token_key, pooled_key, normalize=False)

    def read(identifier: str):
        text = reader.read({key: identifier})
        return text.tokens, text.pooled

    manifest = read_manifest(folder)
    facts = {"extraction": manifest} if manifest else {}
    return SourceStream(TEXT_STREAM, "text", key, ids_matching(folder, pattern), read, facts)


def moment_detr_streams(
    video_dirs: Sequence[str | Path], text_dir: str | Path | None, clip_length: float | None
) -> list[SourceStream]:
    streams, folders = [], {}
    for folder in map(Path, video_dirs):
        manifest = read_manifest(folder)
        name = (manifest or {}).get("stream") or folder.name
        if name in folders:
            raise ValueError(f"--video-dirs: {folders[name]} and {folder} are both stream {name!r}")
        folders[name] = folder
        recorded = (manifest or {}).get("clip_length")
        if clip_length is not None and recorded is not None and abs(recorded - clip_length) > 1e-9:
            raise ValueError(f"--clip-length {clip_length}: {folder}'s manifest says {recorded}")
        length = clip_length if clip_length is not None else recorded
        facts = {"clip_length": length, **({"extraction": manifest} if manifest else {})}
        streams.append(video_source(name, FeatureStream(folder), facts))
    if text_dir is not None:
        streams.append(
            text_source(Path(text_dir), "qid{qid}.npz", "qid", "last_hidden_state", "pooler_output")
        )
    return streams


def umt_streams(root: str | Path, text: bool, clip_length: float | None) -> list[SourceStream]:
    """TVSum (``text``) and YouTube Highlights: I3D rgb and flow, audio where present, TVSum's titles."""
    root = Path(root)
    facts = {"clip_length": clip_length, "backbone": "i3d"}
    streams = [
        video_source("i3d_rgb", FeatureStream(root / "video_features", "{vid}_rgb.npy", dim=1024), facts),
        video_source("i3d_flow", FeatureStream(root / "video_features", "{vid}_opt.npy", dim=1024), facts),
    ]
    if (root / "audio_features").is_dir():
        audio = FeatureStream(root / "audio_features", "{vid}.npy", dim=2048)
        streams.append(video_source("audio", audio, {"clip_length": clip_length, "backbone": "pann"}))
    if text:
        streams.append(text_source(root / "query_features", "{vid}.npz", "vid", "token", "text"))
    return streams


def source_streams(
    layout: str,
    *,
    root: str | Path | None = None,
    video_dirs: Sequence[str | Path] = (),
    text_dir: str | Path | None = None,
    clip_length: float | None = None,
) -> list[SourceStream]:
    """The streams of a feature folder in ``layout`` (see the module docstring)."""
    if clip_length is not None:
        require_positive_seconds("--clip-length", clip_length)
    if layout == "moment_detr":
        if not video_dirs:
            raise ValueError("--video-dirs: the moment_detr layout needs at least one video feature folder")
        return moment_detr_streams(video_dirs, text_dir, clip_length)
    if layout not in LAYOUTS:
        raise ValueError(f"--layout: expected one of {', '.join(LAYOUTS)}, got {layout!r}")
    if root is None:
        raise ValueError(f"--root: the {layout} layout needs the dataset's folder")
    default_length = 2.0 if layout == "tvsum" else None  # TVSum's UMT features: one row per 2 s
    length = clip_length if clip_length is not None else default_length
    return umt_streams(root, text=layout == "tvsum", clip_length=length)


def write_feature_set(
    streams: Sequence[SourceStream],
    out: str | Path,
    *,
    layout: str,
    dtype: str = "float16",
    shard_rows: int = 500,
    progress: bool = True,
) -> dict:
    """Write ``streams`` as a feature set in ``out``, a new folder: filled as a new hidden folder beside it
    (`atomic.atomic_folder`), then renamed, so a failure leaves nothing and no other folder is touched.

    Returns:
        The manifest the card carries.

    Raises:
        FeatureError: a file of another width than its stream's first, values float16 cannot hold,
            NaN or infinity (naming the file).
        FileExistsError: ``out`` exists (a set is never written over anything).
    """
    from tqdm.auto import tqdm

    if Path(out).exists():
        raise FileExistsError(f"--out: {out} exists; give a new folder")
    if dtype not in DTYPES:
        raise ValueError(f"--dtype: expected one of {', '.join(DTYPES)}, got {dtype!r}")
    require_positive_integer("--shard-rows", shard_rows)
    manifest = {"format": FEATURE_SET_FORMAT, "layout": layout, "dtype": dtype, "streams": {}}
    manifest["library_version"] = _library_version()

    def fill(staging: Path) -> None:  # a new hidden sibling of ``out``
        for stream in streams:
            rows = tqdm(stream.ids, desc=stream.name, unit="row", disable=not progress)
            manifest["streams"][stream.name] = _write_stream(
                stream, rows, staging / stream.name, dtype, shard_rows
            )
        write_card(staging, manifest)

    atomic_folder(out, fill)
    return manifest


def _library_version() -> str:
    from .. import __version__

    return __version__


def _schema(kind: str, dtype: str):
    import pyarrow as pa

    values = pa.list_(pa.float16() if dtype == "float16" else pa.float32())
    columns = [
        ("id", pa.string()),
        ("tokens" if kind == "text" else "features", values),
        ("shape", pa.list_(pa.int32())),
    ]
    columns.append(("pooled", values) if kind == "text" else ("clip_length", pa.float32()))
    return pa.schema(columns)


MAX_SHARD_VALUES = 2**30  # parquet list offsets are int32: a shard is cut before it holds more values


class _ShardWriter:
    """Rows of one stream gathered into columnar arrays and written a shard at a time (``shard_rows`` rows,
    or fewer when they would exceed `MAX_SHARD_VALUES`); shards are renamed ``train-K-of-N`` at the end."""

    def __init__(self, folder: Path, kind: str, dtype: str, shard_rows: int):
        self.folder, self.kind, self.dtype, self.shard_rows = folder, kind, dtype, shard_rows
        self.schema = _schema(kind, dtype)
        self.written: list[Path] = []
        self._clear()

    def _clear(self) -> None:
        self.ids, self.arrays, self.shapes, self.extra = [], [], [], []
        self.values = 0

    def add(self, identifier: str, array: np.ndarray, extra) -> None:
        if self.ids and (len(self.ids) == self.shard_rows or self.values + array.size > MAX_SHARD_VALUES):
            self.flush()
        self.ids.append(identifier)
        self.arrays.append(array.reshape(-1))
        self.shapes.append(list(array.shape))
        self.extra.append(extra)
        self.values += array.size

    def flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.ids:
            return
        offsets = np.concatenate([[0], np.cumsum([len(a) for a in self.arrays])]).astype(np.int32)
        values = pa.array(np.concatenate(self.arrays))
        columns = {
            "id": pa.array(self.ids, pa.string()),
            "tokens" if self.kind == "text" else "features": pa.ListArray.from_arrays(
                pa.array(offsets), values
            ),
            "shape": pa.array(self.shapes, pa.list_(pa.int32())),
        }
        if self.kind == "text":
            columns["pooled"] = pa.array(self.extra, self.schema.field("pooled").type)
        else:
            columns["clip_length"] = pa.array(self.extra, pa.float32())
        path = self.folder / f"part-{len(self.written):05d}.parquet"
        pq.write_table(pa.table(columns, schema=self.schema), path)
        self.written.append(path)
        self._clear()

    def close(self) -> None:
        self.flush()
        for index, path in enumerate(self.written):
            path.rename(self.folder / f"train-{index:05d}-of-{len(self.written):05d}.parquet")


def _write_stream(stream: SourceStream, ids, folder: Path, dtype: str, shard_rows: int) -> dict:
    """One stream's shards; returns its manifest entry (width, rows, the largest rounding error)."""
    if not stream.ids:
        raise FeatureError(f"stream {stream.name!r}: no feature files found")
    folder.mkdir()
    writer = _ShardWriter(folder, stream.kind, dtype, shard_rows)
    dim, rounding = None, 0.0
    for identifier in ids:
        array, pooled = stream.read(identifier)
        dim = int(array.shape[1]) if dim is None else dim
        if array.shape[1] != dim:
            raise FeatureError(
                f"stream {stream.name!r}, id {identifier!r}: width {array.shape[1]}, the stream's is {dim}"
            )
        stored, error = _stored(array, dtype, stream.name, identifier)
        rounding = max(rounding, error)
        if stream.kind == "text":
            extra = (
                None
                if pooled is None
                else _stored(pooled.reshape(1, -1), dtype, stream.name, identifier)[0].reshape(-1)
            )
        else:
            extra = stream.facts.get("clip_length")
        writer.add(identifier, stored, extra)
    writer.close()
    return {
        "kind": stream.kind,
        "key": stream.key,
        "feature_dim": dim,
        "rows": len(stream.ids),
        "max_rounding_error": float(rounding),
        **stream.facts,
    }


def _stored(array: np.ndarray, dtype: str, name: str, identifier: str) -> tuple[np.ndarray, float]:
    """The array in ``dtype`` and the largest absolute change that made; refuses values it cannot hold, an
    array of no rows."""
    if array.shape[0] == 0:
        raise FeatureError(f"stream {name!r}, id {identifier!r}: no rows; expected one feature row per clip")
    source = np.asarray(array, dtype=np.float32)
    stored = source.astype(dtype)
    if not np.isfinite(stored).all():
        hint = "; use --dtype float32" if dtype == "float16" and np.isfinite(source).all() else ""
        raise FeatureError(f"stream {name!r}, id {identifier!r}: NaN or values beyond {dtype}'s range{hint}")
    return stored, float(np.abs(stored.astype(np.float32) - source).max()) if source.size else 0.0


def write_card(folder: Path, manifest: dict) -> None:
    """The set's ``README.md``: YAML with one parquet config per stream and the manifest, and a short body."""
    from huggingface_hub import DatasetCard, DatasetCardData

    configs = [
        {"config_name": name, "data_files": [{"split": "train", "path": f"{name}/*.parquet"}]}
        for name in manifest["streams"]
    ]
    data = DatasetCardData(
        configs=configs,
        tags=["video-moment-retrieval", "highlight-detection", "rdmf", "video-features"],
        **{CARD_KEY: manifest},
    )
    card = DatasetCard.from_template(
        data, template_str=_CARD_TEMPLATE, streams_table=_streams_table(manifest)
    )
    card.save(folder / "README.md")


def _streams_table(manifest: dict) -> str:
    lines = ["| stream | kind | rows | width | clip length (s) | backbone |", "|---|---|---|---|---|---|"]
    for name, s in manifest["streams"].items():
        backbone = (s.get("extraction") or {}).get("backbone") or s.get("backbone") or "-"
        lines.append(
            f"| {name} | {s['kind']} (by {s['key']}) | {s['rows']} | {s['feature_dim']} | {s.get('clip_length') or '-'} | {backbone} |"
        )
    return "\n".join(lines)


_CARD_TEMPLATE = """---
{{ card_data }}
---

# Pre-extracted video features

Features for video moment retrieval and highlight detection, one parquet config per stream, written by
`rdmf convert-features` of [transformers_rdmf](https://github.com/transformers-rdmf). Arrays are stored
flattened beside their `shape`, not normalised.

{{ streams_table }}

```python
from transformers_rdmf.data import FeatureSet

features = FeatureSet("this/repo")           # or a local folder
video = features.video_reader()              # every video stream, concatenated, L2-normalised per row
text = features.text_reader()
```

or with `datasets` alone: `load_dataset("this/repo", "<stream>", split="train")`.
"""


def push_feature_set(
    folder: str | Path, repo_id: str, *, private: bool = False, token: str | None = None, api=None
) -> str:
    """Upload a written feature set to the Hub dataset ``repo_id`` (created when absent); returns its URL."""
    from huggingface_hub import HfApi

    api = api or HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(
        repo_id=repo_id, repo_type="dataset", folder_path=str(folder), commit_message="Upload feature set"
    )
    return f"https://huggingface.co/datasets/{repo_id}"


__all__ = [
    "DTYPES",
    "LAYOUTS",
    "SourceStream",
    "push_feature_set",
    "source_streams",
    "write_card",
    "write_feature_set",
]
