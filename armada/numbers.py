"""The one check of a numeric setting, wherever it is read (a pipeline file, `--set`, a flag, a [teachers.*]
table): a finite number inside its bounds. NaN slips past every `<`/`>` comparison and infinity past a
lower bound, so finiteness is checked first and on its own."""

from __future__ import annotations

import math


def number_fault(value, *, low=None, high=None, above=None) -> str | None:
    """Why `value` cannot be a setting bounded by [low, high] (and > above), in words; None where it can."""
    bounds = " and ".join(s for s in (low is not None and f">= {low}", high is not None and f"<= {high}",
                                      above is not None and f"> {above}") if s)
    if isinstance(value, float) and not math.isfinite(value):
        return "it must be a finite number" + (f" {bounds}" if bounds else "")
    if (low is not None and value < low) or (high is not None and value > high) or (above is not None and value <= above):
        return f"it must be {bounds}"
    return None
