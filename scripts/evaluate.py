"""Evaluate a checkpoint on a dataset split: predictions (QVHighlights submission format) + official metrics.

    python scripts/evaluate.py --checkpoint runs/qvh/best --output_dir runs/qvh/eval \
        --dataset qvhighlights --eval_annotations highlight_val_release.jsonl \
        --video_feature_dirs features/clip features/slowfast --text_feature_dir features/clip_text
"""

import sys

from transformers_rdmf.training import evaluate_main

if __name__ == "__main__":
    sys.exit(evaluate_main())
