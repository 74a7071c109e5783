"""Feature manifests: what produced a folder of features, so training and inference cannot mix them up.

``rdmf extract-features`` writes ``rdmf_features.json`` into every folder it fills (one per video stream,
one for the query text). It records the backbone, its weights, the feature width, the clip length and
the frames sampled per clip, and, per video, its clip count and duration. A model trained on such
features keeps their signatures in ``feature_manifest.json`` beside its weights; features whose manifest
disagrees with the model (or with a preset's clip length and widths) are refused with a
`FeatureManifestError` that names both values.

Folders without a manifest (features from elsewhere) are accepted as before: nothing to compare.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .atomic import atomic_write_json

MANIFEST_NAME = "rdmf_features.json"
MODEL_MANIFEST_NAME = "feature_manifest.json"
MANIFEST_FORMAT = "rdmf-features/1"
# What must agree between the features a model was trained on and the features it is given.
SIGNATURE_FIELDS = ("backbone", "weights", "feature_dim", "clip_length", "frames_per_clip", "preprocessing")
TEXT_SIGNATURE_FIELDS = ("backbone", "weights", "feature_dim")


class FeatureManifestError(ValueError):
    """Features whose manifest disagrees with what the model (or the extraction run) expects."""


def read_manifest(folder: str | Path) -> dict | None:
    """The manifest of a feature folder, or None when the folder has none."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise FeatureManifestError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise FeatureManifestError(f"{path}: not an {MANIFEST_FORMAT} manifest")
    return manifest


def signature(manifest: Mapping) -> dict:
    """The fields of a manifest that must agree between training and inference features."""
    fields = TEXT_SIGNATURE_FIELDS if manifest.get("kind") == "text" else SIGNATURE_FIELDS
    return {name: manifest.get(name) for name in fields}


# Float fields (clip_length) that differ by less than this agree (a JSON round trip, 2 / 3 written twice).
FLOAT_TOLERANCE = 1e-9


def differences(found: Mapping, expected: Mapping, expected_by: str) -> list[str]:
    """``"field: A in the features, B expected by X"`` for each field of ``expected`` that ``found`` disagrees on."""
    lines = []
    for name, wanted in expected.items():
        have = found.get(name)
        if wanted is None or have == wanted:
            continue
        if (
            isinstance(wanted, float)
            and isinstance(have, (int, float))
            and abs(have - wanted) < FLOAT_TOLERANCE
        ):
            continue
        lines.append(f"{name}: {have!r} in the features, {wanted!r} expected by {expected_by}")
    return lines


def require_agreement(found: Mapping, expected: Mapping, where: str, expected_by: str) -> None:
    """Raise `FeatureManifestError` listing every disagreement of ``found`` (read at ``where``) with ``expected``."""
    lines = differences(found, expected, expected_by)
    if lines:
        raise FeatureManifestError(f"{where}: " + "; ".join(lines))


def require_total_width(widths: Sequence[int], video_feature_dim: int, where: str, expected_by: str) -> None:
    """The streams' widths must add up to the model's ``video_feature_dim``; else an error naming both."""
    if sum(widths) != video_feature_dim:
        raise FeatureManifestError(
            f"{where}: feature_dim {' + '.join(map(str, widths))} = {sum(widths)} in the features, "
            f"{video_feature_dim} expected by {expected_by} (video_feature_dim)"
        )


def model_feature_signatures(video_dirs: Sequence[str | Path], text_dir: str | Path | None) -> dict | None:
    """What a model trained on these folders records in ``feature_manifest.json`` (None: no manifests)."""
    videos = [read_manifest(folder) for folder in video_dirs]
    text = read_manifest(text_dir) if text_dir is not None else None
    if all(m is None for m in videos) and text is None:
        return None
    return {
        "video_streams": [None if m is None else {"stream": m.get("stream"), **signature(m)} for m in videos],
        "text": None if text is None else signature(text),
    }


def write_model_feature_signatures(
    model_dir: str | Path, video_dirs: Sequence[str | Path], text_dir: str | Path | None
) -> None:
    """Save the training features' signatures beside a saved model (nothing when they have no manifest)."""
    signatures = model_feature_signatures(video_dirs, text_dir)
    if signatures is not None:
        atomic_write_json(Path(model_dir) / MODEL_MANIFEST_NAME, signatures)


def read_model_feature_signatures(model_dir: str | Path) -> dict | None:
    path = Path(model_dir) / MODEL_MANIFEST_NAME
    return json.loads(path.read_text()) if path.is_file() else None


def check_feature_folders(
    video_dirs: Iterable[str | Path],
    text_dir: str | Path | None = None,
    *,
    video_feature_dim: int | None = None,
    text_feature_dim: int | None = None,
    clip_length: float | None = None,
    trained_on: Mapping | None = None,
    expected_by: str = "the model",
) -> dict | None:
    """Check the manifests of feature folders against a model's config and the features it was trained on.

    Args:
        video_dirs: the video stream folders, in concatenation order.
        text_dir: the query feature folder, if any.
        video_feature_dim, text_feature_dim: the model's input widths (``RDMFConfig``); with every stream
            carrying a manifest, the streams' widths must add up to ``video_feature_dim``.
        clip_length: seconds per clip the model expects (a preset's, a processor's, ``--clip-length``).
        trained_on: the model's ``feature_manifest.json`` (see `write_model_feature_signatures`).
        expected_by: how errors name the expectation ("the model in DIR", "preset X").

    Returns:
        The clip length the manifests agree on (None when no folder has a manifest).

    Raises:
        FeatureManifestError: naming the folder, the field, the features' value and the expected one.
    """
    video_dirs = [Path(folder) for folder in video_dirs]
    manifests = [read_manifest(folder) for folder in video_dirs]
    trained_streams = list((trained_on or {}).get("video_streams") or [])
    for index, (folder, manifest) in enumerate(zip(video_dirs, manifests)):
        if manifest is None:
            continue
        where = f"video features in {folder} ({MANIFEST_NAME})"
        require_agreement(manifest, {"clip_length": clip_length}, where, expected_by)
        if index < len(trained_streams) and trained_streams[index] is not None:
            expected = {k: v for k, v in trained_streams[index].items() if k != "stream"}
            require_agreement(manifest, expected, where, f"{expected_by} (trained on these features)")
    if manifests and all(m is not None for m in manifests) and video_feature_dim is not None:
        where = f"video features in {', '.join(map(str, video_dirs))} ({MANIFEST_NAME})"
        require_total_width([m["feature_dim"] for m in manifests], video_feature_dim, where, expected_by)
    _check_text_folder(text_dir, text_feature_dim, (trained_on or {}).get("text"), expected_by)
    return agreed_clip_length(zip(map(str, video_dirs), manifests), "video feature streams")


def feature_set_stream_signature(stream: Mapping) -> dict:
    """What must agree for one stream of a feature set (`data.feature_sets`): its extraction manifest's
    signature where the source had one, else the facts the set records (backbone, width, clip length)."""
    extraction = stream.get("extraction")
    if extraction:
        return signature(extraction)
    fields = TEXT_SIGNATURE_FIELDS if stream.get("kind") == "text" else SIGNATURE_FIELDS
    return {name: stream.get(name) for name in fields}


def feature_set_signatures(feature_set, video_streams: Sequence[str], text: bool) -> dict:
    """What a model trained on these streams of a feature set records in ``feature_manifest.json``."""
    return {
        "video_streams": [
            {"stream": name, **feature_set_stream_signature(feature_set.stream_manifest(name))}
            for name in video_streams
        ],
        "text": feature_set_stream_signature(feature_set.stream_manifest("text")) if text else None,
        "feature_set": feature_set.source,
    }


def check_feature_set(
    feature_set,
    video_streams: Sequence[str],
    *,
    video_feature_dim: int | None = None,
    text_feature_dim: int | None = None,
    clip_length: float | None = None,
    trained_on: Mapping | None = None,
    expected_by: str = "the model",
) -> float | None:
    """`check_feature_folders` for the streams of a feature set (`data.FeatureSet`): each stream's manifest
    against the clip length and the features the model was trained on, the widths against the config.

    Returns:
        The clip length the streams agree on (None when none records one).

    Raises:
        FeatureManifestError: naming the set, the stream, the field, the set's value and the expected one.
    """
    streams = [feature_set.stream_manifest(name) for name in video_streams]
    trained_streams = list((trained_on or {}).get("video_streams") or [])
    for index, (name, stream) in enumerate(zip(video_streams, streams)):
        where = f"feature set {feature_set.source}, stream {name!r}"
        if stream.get("clip_length") is not None:  # a set converted without one is read as folders are
            require_agreement(stream, {"clip_length": clip_length}, where, expected_by)
        if index < len(trained_streams) and trained_streams[index] is not None:
            expected = {k: v for k, v in trained_streams[index].items() if k != "stream"}
            found = feature_set_stream_signature(stream)
            require_agreement(found, expected, where, f"{expected_by} (trained on these features)")
    if video_feature_dim is not None:
        where = f"feature set {feature_set.source}, streams {', '.join(video_streams)}"
        require_total_width(
            [stream["feature_dim"] for stream in streams], video_feature_dim, where, expected_by
        )
    if text_feature_dim is not None:
        text = feature_set.stream_manifest("text")
        where = f"feature set {feature_set.source}, stream 'text'"
        require_agreement(text, {"feature_dim": text_feature_dim}, where, expected_by)
        trained_text = (trained_on or {}).get("text")
        if trained_text is not None:
            found = feature_set_stream_signature(text)
            require_agreement(found, trained_text, where, f"{expected_by} (trained on these features)")
    return agreed_clip_length(zip(video_streams, streams), f"feature set {feature_set.source}: streams")


def _check_text_folder(text_dir, text_feature_dim, trained_text, expected_by: str) -> None:
    manifest = read_manifest(text_dir) if text_dir is not None else None
    if manifest is None:
        return
    where = f"text features in {text_dir} ({MANIFEST_NAME})"
    require_agreement(manifest, {"feature_dim": text_feature_dim}, where, expected_by)
    if trained_text is not None:
        require_agreement(manifest, trained_text, where, f"{expected_by} (trained on these features)")


def agreed_clip_length(named: Iterable[tuple[str, Mapping | None]], what: str) -> float | None:
    """The clip length the streams that record one agree on (None when none does), from
    ``(name, manifest or None)`` pairs; ``what`` starts the error ("video feature streams")."""
    known = [(name, m["clip_length"]) for name, m in named if m and m.get("clip_length") is not None]
    lengths = [length for _, length in known]
    if lengths and max(lengths) - min(lengths) >= FLOAT_TOLERANCE:
        described = ", ".join(f"{name}: {length}" for name, length in known)
        raise FeatureManifestError(f"{what} disagree on clip_length ({described})")
    return lengths[0] if lengths else None


__all__ = [
    "MANIFEST_NAME",
    "MODEL_MANIFEST_NAME",
    "FeatureManifestError",
    "agreed_clip_length",
    "check_feature_folders",
    "check_feature_set",
    "feature_set_signatures",
    "read_manifest",
    "read_model_feature_signatures",
    "signature",
    "write_model_feature_signatures",
]
