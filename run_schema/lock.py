"""One training process per run folder at a time."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from armada.errors import ArmadaError
from armada.files import held


class RunBusy(ArmadaError):
    """Another process is training this run folder right now."""


@contextmanager
def exclusive(out: Path):
    """Hold `out` for this training process (the main one; the others follow it): a second process
    that asks for the same folder, another `armada run` or `armada distill --resume`, is refused at
    once instead of interleaving its epochs with ours. The kernel drops the lock however the holder
    ends; a folder made only to hold the lock is removed again."""
    if int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)

    def refuse() -> None:
        raise RunBusy(f"{out} is being trained by another process right now; wait for it to end "
                      "(it resumes where it stops), or choose another --out")

    try:
        with held(out, refuse):
            yield
    finally:
        if made and not any(out.iterdir()):
            out.rmdir()
