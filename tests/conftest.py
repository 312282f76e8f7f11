"""Test-wide settings.

HF_HUB_OFFLINE makes a hub look-up fail at once instead of after ~25 s of retries on this offline
machine; the code under test is the same path a user with internet runs.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import signal  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

TASK_FILES = Path(__file__).resolve().parent / "fixtures" / "data"

# Under pytest-xdist (`make test` runs `-n auto`) the workers share the cores: each gets its share as torch threads,
# as `armada run` gives its training processes, for OpenMP threads that outnumber the cores spin against each other.
# Processes a test starts are not affected (they choose their own threads as a user's would).
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    import torch  # noqa: E402

    from armada.pipeline import threads_each  # noqa: E402

    torch.set_num_threads(threads_each(int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))

# A shell starts a background job (`make test &`) with SIGINT ignored, and a child inherits an ignored signal:
# the Ctrl-C tests' processes would never see theirs. Python's own handler is reset to the default in a child.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def armada_cache(tmp_path_factory) -> Path:
    """What armada derives once per machine (a GGUF student's dequantised copy) goes to a folder of this session,
    never to the user's ~/.cache/armada; subprocesses inherit it."""
    folder = tmp_path_factory.mktemp("armada-cache")
    os.environ["ARMADA_CACHE"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def task_files() -> Path:
    """A few rows of each published layout (GLUE, SuperGLUE, Dolly, the reasoning sets), committed with the tests:
    the folders mirror the real data folder, file for file (tests/fixtures/data/README.md says which rows)."""
    return TASK_FILES


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A SeaweedFS S3 server on loopback ports, started once per session (tests/s3_server.py)."""
    from s3_server import start

    server = start(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
    """The server's AWS settings in this test's environment (none of the machine's own)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    return s3_server


def pytest_collection_modifyitems(items):
    """Tests marked `slow` (each over 10 s) go first: with `-n`, a long test that starts last keeps one worker busy
    after the others have finished."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
