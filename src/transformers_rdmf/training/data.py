"""The datasets and loaders a run trains and evaluates on."""

from __future__ import annotations

from pathlib import Path

from ..configuration_rdmf import RDMFConfig
from ..dataset_specs import dataset_spec
from ..feature_manifest import (
    check_feature_folders,
)
from ..presets import read_preset
from .arguments import RDMFTrainingArguments


def build_dataset(
    args: RDMFTrainingArguments, split: str, config: RDMFConfig, trained_on: dict | None = None
):
    """A ``MomentFeatureDataset`` for ``split`` ("train" or "eval"), or None when the split has no data.

    Feature folders with a manifest (``rdmf extract-features``) must agree with ``config``'s widths, the
    clip length, and ``trained_on`` (a checkpoint's ``feature_manifest.json``).
    """
    from ..data import (
        DomainQueryEncoder,
        MomentFeatureDataset,
        TextFeatureReader,
        load_annotations,
        load_youtube_highlights,
        standard_video_reader,
        tvsum_text_reader,
        tvsum_video_reader,
        youtube_highlights_video_reader,
    )

    annotations_path = args.train_annotations if split == "train" else args.eval_annotations
    if args.feature_set is not None:
        video, text, set_clip_length = feature_set_readers(args, config, trained_on)
    if args.dataset == "youtube_highlights":
        annotations = load_youtube_highlights(
            args.data_root, "train" if split == "train" else "val", args.domain, splits_file=args.splits_file
        )
        if args.feature_set is None:
            video = youtube_highlights_video_reader(args.data_root)
        text = DomainQueryEncoder(dim=config.text_feature_dim)
    elif annotations_path is None:
        return None
    elif args.dataset == "tvsum":
        annotations = load_annotations(annotations_path, "tvsum", domain=args.domain)
        if args.feature_set is None:
            video = tvsum_video_reader(args.data_root, audio=tvsum_audio(args, config))
            text = tvsum_text_reader(args.data_root)
    else:
        if args.feature_set is None:
            clip_length = checked_clip_length(args, config, trained_on)
            video = standard_video_reader(args.video_feature_dirs)
            text = TextFeatureReader(args.text_feature_dir, dim=config.text_feature_dim)
        else:
            clip_length = set_clip_length
        annotations = load_annotations(annotations_path, args.dataset, clip_length=clip_length)
    if len(annotations) == 0:
        raise ValueError(
            f"{split} split of {args.dataset} is empty (domain={args.domain!r}, file={annotations_path})"
        )
    dataset = MomentFeatureDataset(annotations, video, text)
    dataset.check_lengths(args.max_clips)  # fails now, naming the file, rather than mid-epoch
    return dataset


def tvsum_audio(args: RDMFTrainingArguments, config: RDMFConfig) -> bool:
    """Whether a TVSum run reads the PANN audio stream: ``--audio`` when given, else the preset's
    ``features.audio``; the config's ``video_feature_dim`` must then be the streams' total width (the
    preset's ``video_streams``, plus its ``optional_streams`` with audio), or the run stops naming both."""
    features = read_preset(args.preset).get("features", {})
    audio = bool(features.get("audio", False)) if args.audio is None else args.audio
    streams = {**features.get("video_streams", {}), **(features.get("optional_streams", {}) if audio else {})}
    width = sum(streams.values())
    if streams and config.video_feature_dim != width:
        parts = " + ".join(f"{name} {dim}" for name, dim in streams.items())
        hint = "--set video_feature_dim=" + str(width)
        raise ValueError(
            f"video_feature_dim={config.video_feature_dim}, but the TVSum streams {'with' if audio else 'without'} "
            f"audio are {parts} = {width} wide: {hint}"
            + ("" if audio else ", or --audio for the audio stream")
        )
    return audio


def checked_clip_length(
    args: RDMFTrainingArguments, config: RDMFConfig, trained_on: dict | None
) -> float | None:
    """The clip length of a moment dataset's features, after checking their manifests (if any) agree."""
    wanted = args.clip_length or (
        None if args.dataset == "custom" else dataset_spec(args.dataset).clip_length
    )
    found = check_feature_folders(
        args.video_feature_dirs,
        args.text_feature_dir,
        video_feature_dim=config.video_feature_dim,
        text_feature_dim=config.text_feature_dim,
        clip_length=wanted,
        trained_on=trained_on,
        expected_by=f"the model (preset {args.preset!r}, --dataset {args.dataset}, --clip_length {wanted})",
    )
    return wanted or found


def open_feature_set(args: RDMFTrainingArguments):
    """The run's `data.FeatureSet`, opened once per path and card: the train and eval splits share it,
    and a set written again at the same path (a newer ``README.md``) is opened afresh."""
    from ..data.feature_sets import FeatureSet

    card = Path(args.feature_set) / "README.md"
    stamp = card.stat() if card.is_file() else None
    key = (args.feature_set, stamp and (stamp.st_ino, stamp.st_mtime_ns, stamp.st_size))
    if key not in _OPEN_SETS:
        _OPEN_SETS.clear()  # keeps only the latest: a run reads one set
        _OPEN_SETS[key] = FeatureSet(args.feature_set)
    return _OPEN_SETS[key]


_OPEN_SETS: dict = {}


def feature_set_streams(args: RDMFTrainingArguments, config: RDMFConfig | None = None) -> list[str]:
    """The video streams a run reads from its feature set: ``--feature_set_streams``, else the dataset's."""
    if args.feature_set_streams:
        return list(args.feature_set_streams)
    if args.dataset in ("tvsum", "youtube_highlights"):
        audio = args.dataset == "tvsum" and config is not None and tvsum_audio(args, config)
        return ["i3d_rgb", "i3d_flow"] + (["audio"] if audio else [])
    return open_feature_set(args).video_streams


def feature_set_readers(args: RDMFTrainingArguments, config: RDMFConfig, trained_on: dict | None):
    """``(video reader, text reader or None, clip length)`` over the run's feature set, after
    `feature_manifest.check_feature_set`; the clip length is ``--clip_length``, the dataset's, or the set's."""
    from ..feature_manifest import check_feature_set

    feature_set, streams = open_feature_set(args), feature_set_streams(args, config)
    wanted = args.clip_length or (
        None if args.dataset == "custom" else dataset_spec(args.dataset).clip_length
    )
    found = check_feature_set(
        feature_set,
        streams,
        video_feature_dim=config.video_feature_dim,
        text_feature_dim=None if args.dataset == "youtube_highlights" else config.text_feature_dim,
        clip_length=wanted,
        trained_on=trained_on,
        expected_by=f"the model (preset {args.preset!r}, --dataset {args.dataset})",
    )
    video = feature_set.video_reader(streams)
    text = None if args.dataset == "youtube_highlights" else feature_set.text_reader(config.text_feature_dim)
    return video, text, wanted or found


def write_training_feature_signatures(model_dir, args: RDMFTrainingArguments, config: RDMFConfig) -> None:
    """Beside a saved model, the signatures of the features it was trained on (folders or a feature set)."""
    from ..atomic import atomic_write_json
    from ..feature_manifest import MODEL_MANIFEST_NAME, feature_set_signatures, write_model_feature_signatures

    if args.feature_set is None:
        write_model_feature_signatures(model_dir, args.video_feature_dirs, args.text_feature_dir)
        return
    streams = feature_set_streams(args, config)
    signatures = feature_set_signatures(open_feature_set(args), streams, args.dataset != "youtube_highlights")
    atomic_write_json(Path(model_dir) / MODEL_MANIFEST_NAME, signatures)


def build_loader(dataset, args: RDMFTrainingArguments, shuffle: bool):
    from ..data import MomentRetrievalCollator, build_dataloader

    return build_dataloader(
        dataset,
        args.batch_size,
        shuffle=shuffle,
        seed=args.seed,
        num_workers=args.num_workers,
        collate_fn=MomentRetrievalCollator(max_clips=args.max_clips),
    )
