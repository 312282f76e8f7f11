"""Files replaced whole, locks held while one process writes, and names made safe for file names: the
helpers both on-disk formats share (armada.cache_schema, armada.run_schema) and the stages that name folders.

A file or folder others read is built beside its final path under a hidden `.NAME.partial` name and
renamed into place, so a reader sees the old one or the new one, never half of either. A partial
left by a killed writer is removed by the next writer of the same path.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


def partial_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """Yields the partial path to build a file or a folder in; when the block ends without an error it
    replaces `path` (a folder replaces a folder), else it is removed."""
    partial = partial_path(path)
    _remove(partial)
    try:
        yield partial
        if partial.is_dir():
            _remove(path)              # os.replace cannot put a folder over a non-empty one
        os.replace(partial, path)
    finally:
        _remove(partial)


def write_atomically(path: Path, content: str | bytes, *, sync: bool = False) -> None:
    """Replace `path` whole with `content`; `sync`: on the disk before the rename (a marker must never
    outlive the data it vouches for after a power cut)."""
    with replacing(path) as partial:
        with open(partial, "wb") as f:
            f.write(content.encode("utf-8") if isinstance(content, str) else content)
            if sync:
                f.flush()
                os.fsync(f.fileno())


@contextmanager
def held(path: Path, busy: Callable[[], None]) -> Iterator[None]:
    """Hold the exclusive lock of `path` (a folder, or a lock file made if missing) while the block runs.
    When another process holds it, `busy()` is called: it raises to refuse, or returns to wait for the
    lock. The kernel drops the lock however the holder ends, so a killed process never leaves it held."""
    handle = os.open(path, os.O_RDONLY if path.is_dir() else os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            busy()
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def task_slug(task: str) -> str:
    """A task name as it stands in folder and file names (caches, run folders, evaluation files):
    "glue/cola" → "glue_cola", "file:mine" → "file_mine"."""
    return task.replace("/", "_").replace(":", "_")


def file_slug(name: str) -> str:
    """Any name made safe for a file name, readably: "HuggingFaceTB/SmolLM2 135M" → "HuggingFaceTB-SmolLM2-135M"."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "unnamed"
