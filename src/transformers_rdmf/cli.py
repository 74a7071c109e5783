"""The ``rdmf`` command line (``python -m transformers_rdmf.cli``); the commands live in :mod:`commands`."""

import sys

from .commands import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
