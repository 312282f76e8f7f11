"""One module per group of `armada` commands, each with a register(app) function. Commands parse their
arguments and call the stages; they decide nothing about tasks, folders or limits."""

from __future__ import annotations

from typing import Any, Mapping


def load_pipeline(path: str | None = None, sets: list[str] = (), flags: Mapping[str, Any] | None = None):
    """A pipeline file as every command reads it: armada.config.load, with the checks of the parts the
    stages own ([teachers.*]: armada.extract)."""
    from armada import config
    from armada.extract.registry import check_teacher_tables

    return config.load(path, sets, flags, checks=[check_teacher_tables])
