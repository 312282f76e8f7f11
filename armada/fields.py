"""A setting's field: its default, the range its value must lie in and its help, written once on it (config
dataclasses, teacher families' and objectives' settings; commands make their options' help of it)."""

from __future__ import annotations

from dataclasses import field


def setting(default, *, low=None, high=None, above=None, doc="", example=None):
    """A field whose value must lie in [low, high] (and be > above); `doc` says what it is, `example` shows a
    value (commands make their options' help of both: armada.commands.options)."""
    return field(default=default, metadata={"low": low, "high": high, "above": above, "doc": doc, "example": example})
