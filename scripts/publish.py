"""Turn a trained RDMF checkpoint and its metrics JSON into a Hub repository folder, and push it.

    python scripts/publish.py CHECKPOINT_DIR METRICS_JSON OUTPUT_DIR [--preset NAME] [--dataset NAME]
        [--split SPLIT] [--training_command "..."] [--repo_id USER/NAME] [--push] [--private]

The folder holds the weights (safetensors), config.json, the modeling files for trust_remote_code,
processor files, eval_results.json and a model card README.md whose model-index holds every metric.
Every input is checked before anything is written. See docs/hub.md.
"""

import argparse
import sys

from transformers_rdmf.errors import OneLineParser, run_command
from transformers_rdmf.hub import DATASETS, check_space_dir, publish_checkpoint, push_folder, write_space


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "checkpoint_dir", help="what save_pretrained wrote (config.json, model.safetensors, ...)"
    )
    parser.add_argument("metrics", help="the metrics JSON of the checkpoint's evaluation")
    parser.add_argument("output_dir", help="the repository folder to write")
    parser.add_argument("--preset", help="preset name or path (default: the checkpoint's preset.json)")
    parser.add_argument(
        "--dataset", choices=sorted(DATASETS), help="training dataset (default: the preset's)"
    )
    parser.add_argument(
        "--split", help="split the metrics were computed on (default: the dataset's usual one)"
    )
    parser.add_argument("--training_command", help="default: training_args.json's 'command'")
    parser.add_argument(
        "--model_name", help="name in the card and its model-index (default: the repo's name)"
    )
    parser.add_argument("--license", help="the card's license (default: the training data's)")
    parser.add_argument("--repo_id", help="Hub repository, e.g. user/rdmf-qvhighlights")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output_dir")
    parser.add_argument("--push", action="store_true", help="create the repository and upload the folder")
    parser.add_argument("--private", action="store_true", help="with --push: create a private repository")
    parser.add_argument("--token", help="Hub token (default: the logged-in one)")
    parser.add_argument(
        "--space", help="also write a folder here that runs as a Gradio Space (rdmf app on this checkpoint)"
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.push and not args.repo_id:
        parser.error("--push needs --repo_id")

    def work() -> None:
        if args.space:  # before the repository folder is written
            paths = {
                "CHECKPOINT": args.checkpoint_dir,
                "METRICS": args.metrics,
                "OUTPUT_DIR": args.output_dir,
            }
            check_space_dir(args.space, paths, overwrite=args.overwrite)
        folder = publish_checkpoint(
            args.checkpoint_dir,
            args.metrics,
            args.output_dir,
            preset=args.preset,
            dataset=args.dataset,
            split=args.split,
            training_command=args.training_command,
            model_name=args.model_name,
            repo_id=args.repo_id,
            license=args.license,
            overwrite=args.overwrite,
        )
        print(f"wrote {folder}")
        if args.space:
            print(f"wrote {write_space(folder, args.space, overwrite=args.overwrite)} (a Gradio Space)")
        if args.push:
            commit = push_folder(folder, args.repo_id, private=args.private or None, token=args.token)
            print(f"pushed to {getattr(commit, 'commit_url', args.repo_id)}")

    return run_command("publish.py", work, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
