"""The ``rdmf`` command line.

``rdmf predict``: a saved model (and processor) on a video file or its features and a query: prints the top
moments and writes a plot (PNG, PDF, SVG, ...) of the saliency over time with the moments shaded. For a
highlight-only checkpoint (``config.trained_heads`` without ``"moments"``) it prints and marks the top clips
instead. Videos longer than a window (``--window-clips``) run in overlapping windows (see :mod:`long_video`).
``rdmf extract-features``: clip features of your videos (and query features) in the loaders' layout.
``rdmf convert-features``: a feature folder as a parquet feature set (a ``datasets`` dataset with a card).
``rdmf app``: a web page (Gradio) over a checkpoint: a video (or features) and queries -> moments (docs/app.md).
"""

import argparse

from ..errors import OneLineParser, run_command, wants_debug
from ..long_video import DEFAULT_WINDOW_CLIPS
from .convert_features import add_convert_features_parser
from .extract_features import add_extract_features_parser
from .predict import run_predict


class FlagParser(OneLineParser):
    """An ``ArgumentParser`` whose ``--long-flag`` also answers to ``--long_flag``, as ``rdmf-train``'s flags
    (``HfArgumentParser``) answer to both spellings; sub-command parsers inherit it."""

    def add_argument(self, *names, **kwargs):
        underscored = [
            "--" + name[2:].replace("-", "_") for name in names if name.startswith("--") and "-" in name[2:]
        ]
        return super().add_argument(*names, *underscored, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = FlagParser(prog="rdmf", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser(
        "predict", help="a saved model on a video file (or its features) and a query"
    )
    predict.add_argument("--model", required=True, help="a folder with a saved model (and its processor)")
    predict.add_argument("--video", help="a video file (needs a model with backbones and a processor)")
    predict.add_argument(
        "--features",
        nargs="+",
        help="pre-extracted clip features instead (.npz 'features' array or .npy); several files are "
        "streams, each L2-normalised per clip, then concatenated (e.g. I3D rgb and flow)",
    )
    predict.add_argument("--query", required=True, help="the sentence to ground")
    predict.add_argument(
        "--text-features",
        help="the query's token features (.npz 'last_hidden_state'), for models without a text tower",
    )
    predict.add_argument("--clip-length", type=float, help="seconds per feature row with --features")
    predict.add_argument(
        "--duration", type=float, help="the video's duration with --features (default: clips x length)"
    )
    predict.add_argument(
        "--gt", type=float, nargs=2, metavar=("START", "END"), help="a ground-truth moment to draw"
    )
    predict.add_argument(
        "--top-k",
        type=int,
        default=None,
        help="moments (or top clips) to show; default 5, or fewer if the model proposes fewer",
    )
    predict.add_argument("--nms", type=float, default=0.7, help="NMS IoU threshold")
    predict.add_argument(
        "--output",
        default="rdmf_prediction.png",
        help="the plot to write, in the format its suffix names (.png, .pdf, .svg, ...)",
    )
    predict.add_argument("--json", help="also write the moments and saliency as JSON here")
    predict.add_argument("--overwrite", action="store_true", help="replace an existing --output or --json")
    predict.add_argument(
        "--window-clips",
        type=int,
        default=DEFAULT_WINDOW_CLIPS,
        help="longer videos run in overlapping windows of this many clips (docs/inference.md)",
    )
    predict.set_defaults(handler=run_predict)
    add_extract_features_parser(commands)
    add_convert_features_parser(commands)
    from ..app import add_app_parser  # here, not at the top: app imports commands.predict

    add_app_parser(commands)
    for command in commands.choices.values():  # after the command too: rdmf predict ... --debug
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    """``rdmf COMMAND ...``: one line and exit 2 on a usage error (`errors.run_command`), 0 when done."""
    args = build_parser().parse_args(argv)
    return run_command(f"rdmf {args.command}", lambda: args.handler(args), debug=wants_debug(argv))


__all__ = ["build_parser", "main"]
