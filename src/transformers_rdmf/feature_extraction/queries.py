"""`extract_query_features`: the queries of a jsonl through CLIP's text tower."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..atomic import atomic_write_json
from ..data.annotations import AnnotationError, read_jsonl
from ..feature_manifest import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
)
from .encoders import TextEncoder
from .files import ExtractionReport, _open_stream_manifest, feature_file_is_complete, write_npz_atomically

logger = logging.getLogger(__name__)


def read_queries(path: str | os.PathLike) -> list[tuple[str, str]]:
    """``(qid, query)`` pairs of a jsonl (the annotation format: one object a line with ``qid`` and ``query``)."""
    pairs, seen = [], set()
    for where, record in read_jsonl(path):
        for name, kinds in (("qid", (int, str)), ("query", (str,))):
            if name not in record:
                raise where.error(name, "missing field")
            if not isinstance(record[name], kinds) or isinstance(record[name], bool):
                raise where.error(
                    name, f"expected {' or '.join(k.__name__ for k in kinds)}, got {record[name]!r}"
                )
        qid, query = str(record["qid"]), record["query"].strip()
        if not query:
            raise where.error("query", "the query is empty")
        if any(character in qid for character in ("/", "\\", "\0")):
            raise where.error(
                "qid", f"expected an id without path separators (it names qid{{qid}}.npz), got {qid!r}"
            )
        if qid in seen:
            raise AnnotationError(where.path, where.line, "qid", f"duplicate qid {qid!r}")
        seen.add(qid)
        pairs.append((qid, query))
    if not pairs:
        raise AnnotationError(
            path, None, None, 'no queries (expected one JSON object a line: {"qid": ..., "query": ...})'
        )
    return pairs


def extract_query_features(
    queries: str | os.PathLike,
    out_dir: str | os.PathLike,
    encoder: TextEncoder,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> ExtractionReport:
    """Write ``out_dir/qid{qid}.npz`` with ``last_hidden_state`` ``(tokens, dim)`` and ``pooler_output`` ``(dim,)``.

    Args:
        queries: a jsonl with ``qid`` and ``query`` per line (an annotation file works as is).
        encoder: `clip_text_encoder`.
    """
    pairs = read_queries(queries)
    out_dir = Path(out_dir)
    expected = {
        "format": MANIFEST_FORMAT,
        "kind": "text",
        "layout": "qid{qid}.npz with 'last_hidden_state' (tokens, feature_dim) and 'pooler_output' (feature_dim,)",
        "backbone": encoder.backbone,
        "weights": encoder.weights,
        "feature_dim": int(encoder.feature_dim),
    }
    manifest = _open_stream_manifest(out_dir, expected)
    encoder.model.to(device)
    report = ExtractionReport()
    todo = []
    for qid, query in pairs:
        path = out_dir / f"qid{qid}.npz"
        if feature_file_is_complete(path, "last_hidden_state", None, encoder.feature_dim):
            report.skipped.append(qid)
        else:
            (report.redone if path.exists() else report.written).append(qid)
            todo.append((qid, query))
    for start in tqdm(range(0, len(todo), batch_size), desc="queries", disable=not progress):
        chunk = todo[start : start + batch_size]
        for (qid, _), (tokens, pooled) in zip(chunk, encoder.encode([q for _, q in chunk])):
            write_npz_atomically(out_dir / f"qid{qid}.npz", last_hidden_state=tokens, pooler_output=pooled)
            manifest["queries"][qid] = int(tokens.shape[0])
        atomic_write_json(out_dir / MANIFEST_NAME, manifest)
    return report
