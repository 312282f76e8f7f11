"""Test-wide settings.

HF_HUB_OFFLINE makes a hub look-up fail at once instead of after ~25 s of retries on this offline
machine; the code under test is the same path a user with internet runs.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real GLUE/SuperGLUE/generative files beside the repository (../shared/data)."""
    if not SHARED_DATA.is_dir():
        raise RuntimeError(f"{SHARED_DATA} is missing: the tests need ../shared/data beside the repository")
    return SHARED_DATA
