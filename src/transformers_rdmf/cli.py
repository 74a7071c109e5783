"""The ``rdmf`` command line.

``rdmf demo``: build a model from a named preset and run it on pre-extracted clip features.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from .configuration_rdmf import RDMFConfig, list_presets
from .modeling_rdmf import RDMFForMomentRetrieval
from .post_processing import post_process_highlights, post_process_moment_retrieval

EXAMPLE_FEATURES = Path(__file__).resolve().parents[2] / "examples" / "charades_clip_features.npz"


def load_clip_features(path: Path, key: str = "features") -> torch.Tensor:
    """One video's clip features from a ``.npz`` (array ``key``) or ``.npy``, L2-normalised per clip.

    Returns:
        ``(clips, dim)`` float32.
    """
    if not path.is_file():
        raise FileNotFoundError(f"--features: no file at {path}")
    data = np.load(path)
    if isinstance(data, np.lib.npyio.NpzFile):
        if key not in data:
            raise ValueError(f"--features: {path} has no array {key!r} (it has {sorted(data.files)})")
        data = data[key]
    features = torch.from_numpy(np.asarray(data, dtype=np.float32))
    if features.dim() != 2 or features.shape[0] == 0:
        raise ValueError(
            f"--features: {path} must hold a (clips, dim) array, got shape {tuple(features.shape)}"
        )
    return torch.nn.functional.normalize(features, dim=-1)


def stand_in_query_features(query: str, width: int, seed: int) -> torch.Tensor:
    """Seeded random token features, one per word: a placeholder for a text encoder's output."""
    generator = torch.Generator().manual_seed(seed)
    tokens = max(len(query.split()), 1)
    return torch.nn.functional.normalize(torch.randn(tokens, width, generator=generator), dim=-1)


def run_demo(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    config = RDMFConfig.from_preset(args.preset)
    features = load_clip_features(Path(args.features))
    if features.shape[1] != config.video_feature_dim:
        raise ValueError(
            f"--features: {args.features} has width {features.shape[1]}, preset {args.preset!r} expects "
            f"{config.video_feature_dim}"
        )
    model = RDMFForMomentRetrieval(config).eval()
    text = stand_in_query_features(args.query, config.text_feature_dim, args.seed)
    with torch.no_grad():
        outputs = model(features.unsqueeze(0), text.unsqueeze(0))
    duration = features.shape[0] * args.clip_length
    moments = post_process_moment_retrieval(outputs, [duration], top_k=args.top_k, nms_threshold=0.7)[0]
    saliency = post_process_highlights(outputs, args.clip_length)[0]
    print(
        f"preset {args.preset}: {sum(p.numel() for p in model.parameters()):,} parameters (untrained, seed {args.seed})"
    )
    print(f"features {args.features}: {features.shape[0]} clips x {features.shape[1]} ({duration:.1f} s)")
    print(f'query "{args.query}" (stand-in token features: no text encoder in this command)')
    print("top moments (seconds):")
    for rank, moment in enumerate(moments, 1):
        print(f"  {rank}. {moment['start']:6.2f} - {moment['end']:6.2f}  score {moment['score']:.4f}")
    print("saliency per clip: " + " ".join(f"{clip['saliency']:.2f}" for clip in saliency))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rdmf", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="forward pass of a preset's model on pre-extracted clip features")
    demo.add_argument(
        "--preset", default="clip_vit_b32", help=f"one of {list_presets()} or a preset JSON path"
    )
    demo.add_argument("--features", default=str(EXAMPLE_FEATURES), help="a .npz ('features' array) or .npy")
    demo.add_argument("--query", default="a person turns on the light")
    demo.add_argument("--clip-length", type=float, default=2.0, help="seconds per feature row")
    demo.add_argument("--top-k", type=int, default=5)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(handler=run_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"rdmf {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
