"""Shared fixtures.

Real data (annotations, conformance predictions, TVSum / YouTube Highlights features, the example
video) is found through the one fixture ``shared_data``: ``$RDMF_DATA_DIR`` when set, else
``../shared/data`` beside the checkout. Where it is absent, tests that need it skip with the
reason, except under ``CI=true`` where its absence is a failure.
"""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    env = os.environ.get("RDMF_DATA_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = _shared_data_dir()
    if not (path / "README.md").is_file():
        reason = f"real data not found at {path} (set RDMF_DATA_DIR to its folder)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
