"""Files replaced whole, locks held while one process writes, names made safe for file names and files hashed:
the helpers both on-disk formats share (armada.cache_schema, armada.run_schema) and the stages that name or
fingerprint files (a teacher's weights, a student's GGUF).

A file or folder others read is built beside its final path under a hidden `.NAME.partial` name and
renamed into place, so a reader sees the old one or the new one, never half of either. A partial
left by a killed writer is removed by the next writer of the same path.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from armada.errors import ArmadaError


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


def check_writable_folder(folder: str | os.PathLike, what: str) -> None:
    """Refuse, before any work, an output folder (made later if missing) that cannot be written: one that is a
    file or sits under one, or where this user may not write. `what` names the option it came from ("--out")."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == folder else f"sits under {existing}, which is a file"
        raise ArmadaError(f"{what} {folder}: {where}, not a folder; choose another path")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise ArmadaError(f"{what} {folder}: {existing} cannot be written to ({e.strerror}); choose a folder you may "
                          "write to, or change its permissions") from None


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


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def folder_sha256(folder: Path) -> dict[str, str]:
    """sha256 of every file of a local model folder (hidden ones left out), by relative path."""
    return {path.relative_to(folder).as_posix(): file_sha256(path)
            for path in sorted(folder.rglob("*"))
            if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)}
