"""Train RDMF with Accelerate (same as the `rdmf-train` command). See docs/training.md.

    accelerate launch scripts/train.py --preset qvhighlights_clip_slowfast --output_dir runs/qvh \
        --train_annotations highlight_train_release.jsonl --eval_annotations highlight_val_release.jsonl \
        --video_feature_dirs features/clip features/slowfast --text_feature_dir features/clip_text
"""

import sys

from transformers_rdmf.training import train_main

if __name__ == "__main__":
    sys.exit(train_main())
