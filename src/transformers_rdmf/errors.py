"""One error boundary for every command: a library error becomes one line naming the file or flag, exit 2.

``rdmf``, ``rdmf-train``, ``rdmf-evaluate``, the QVHighlights metrics CLI and ``scripts/publish.py`` run
their work through `run_command`. What a user can cause (a bad flag, a missing, truncated or corrupt file,
a config field of the wrong type, a metric input that breaks the format) is a *usage error*: printed as
``PROG: error: MESSAGE`` on one line, exit status 2, no traceback. Anything else is a bug and keeps its
traceback. ``--debug`` shows the traceback of a usage error too. Standard library only (the metrics CLI
imports no torch).
"""

import argparse
import math
import sys
import traceback
import warnings
from collections.abc import Callable


def usage_errors() -> tuple[type[BaseException], ...]:
    """The exception types a user's input can cause, including the optional libraries' own.

    ``ValueError`` covers ``json.JSONDecodeError``, ``MetricInputError`` and the library's own checks;
    ``OSError`` covers missing, unreadable and unwritable paths; safetensors' ``SafetensorError`` is a
    truncated or corrupt weights file; huggingface_hub's ``StrictDataclassError`` is a config field of
    the wrong type or value (``--set dropout=abc``).
    """
    found: list[type[BaseException]] = [ValueError, OSError]
    for module, name in (
        ("safetensors", "SafetensorError"),
        ("huggingface_hub.errors", "StrictDataclassError"),
    ):
        loaded = sys.modules.get(module)  # only a library already in use can have raised its error
        if loaded is not None and hasattr(loaded, name):
            found.append(getattr(loaded, name))
    return tuple(found)


def one_line(error: BaseException) -> str:
    """The error's message on one line (strict-dataclass and JSON errors span several)."""
    text = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    return text or type(error).__name__


def run_command(prog: str, work: Callable[[], int | None], debug: bool = False) -> int:
    """Run ``work()``; a usage error prints ``PROG: error: ...`` (with the traceback when ``debug``) and
    returns 2. Warnings print as ``PROG: warning: ...``. Returns ``work()``'s status (None counts as 0)."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{prog}: warning: {one_line(message)}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            status = work()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if not isinstance(error, usage_errors()):
            raise
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {one_line(error)}", file=sys.stderr)
        return 2
    return 0 if status is None else status


def require_positive_integer(name: str, value: int) -> None:
    """Refuse a count below 1, naming the flag or argument ``name``."""
    if value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value}")


def require_positive_seconds(name: str, value: float) -> None:
    """Refuse a duration that is not a finite number above 0 (NaN, inf, 0, negative)."""
    require_positive_number(name, value, "a positive number of seconds")


def require_positive_number(name: str, value: float, meaning: str) -> None:
    """Refuse a value that is not a finite number above 0, naming ``name`` and what it is (``meaning``)."""
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected {meaning}, got {value}")


def require_score(name: str, value: float) -> None:
    """Refuse a metric value (mAP, in percent) that is not a finite number in [0, 100]."""
    if not (math.isfinite(value) and 0 <= value <= 100):
        raise ValueError(f"{name}: expected a score in [0, 100], got {value}")


def wants_debug(argv: list[str] | None) -> bool:
    """Whether ``--debug`` is among the arguments (checked before parsing, which may itself fail)."""
    return "--debug" in (sys.argv[1:] if argv is None else argv)


def exit_with_one_line(parser: argparse.ArgumentParser, message: str):
    """What a usage error prints instead of argparse's usage block: ``PROG: error: MESSAGE``; exit 2."""
    parser.exit(2, f"{parser.prog}: error: {one_line(message)}\n")


def usage_error_in_one_line(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Make this ``parser`` instance (one made by a library, such as ``HfArgumentParser``) answer a bad flag
    in one line (`exit_with_one_line`); its sub-command parsers, if any, are not changed."""
    parser.error = lambda message: exit_with_one_line(parser, message)
    return parser


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` answering a bad flag in one line (`exit_with_one_line`); sub-command parsers made
    by ``add_subparsers`` are of the same class."""

    def error(self, message: str):
        exit_with_one_line(self, message)


__all__ = [
    "OneLineParser",
    "one_line",
    "run_command",
    "usage_error_in_one_line",
    "usage_errors",
    "wants_debug",
]
