"""Answers read from generated text, the way LLM-Adapters' evaluation reads them.

Matches `extract_answer` (commonsense_evaluate.py), `extract_answer_number` and
`extract_answer_letter` (evaluate.py) of AGI-Edgerunners/LLM-Adapters (Hu et al. 2023), the
source of the paper's reasoning numbers (Table 4):

- options (answer1..5, solution1/2, option1/2, true/false, and AQuA's letters A-E): the option
  that occurs first in the stripped text, case-sensitive and with no word boundaries, so
  "Answer: (D)" reads as "A" (the capital A of "Answer"), "True" is no answer, and "answer12"
  reads as "answer1". Nothing found is the empty answer, which is wrong.
- numbers: commas deleted, then the last match of `-?\\d+\\.?\\d*` ("1,234.5." reads 1234.5,
  "3-4" reads -4); correct when within 0.001 of the gold number. Nothing found is wrong (theirs
  is `inf`; ours is None).

Their code reads the text after "### Response:" of the decoded sequence; ours is given the
generated continuation, which is that text.
"""

from __future__ import annotations

import re
from typing import Sequence

from armada.errors import ArmadaError

NUMBER = re.compile(r"-?\d+\.?\d*")
TOLERANCE = 1e-3


def first_option(text: str, options: Sequence[str]) -> str:
    """The option word that occurs first in `text`; "" when none does."""
    found = re.search("|".join(re.escape(o) for o in options), text.strip())
    return found.group(0) if found else ""


def last_number(text: str) -> float | None:
    """The last number in `text`, commas ignored; None when there is none."""
    numbers = NUMBER.findall(text.replace(",", ""))
    return float(numbers[-1]) if numbers else None


def extract(answer_format: str, text: str, options: Sequence[str] = ()) -> str | float | None:
    """The answer in generated `text`: an option word ("" if none) or a number (None if none)."""
    if answer_format == "option":
        if not options:
            raise ArmadaError("the 'option' answer format needs the task's option words")
        return first_option(text, options)
    if answer_format == "number":
        return last_number(text)
    raise ArmadaError(f"unknown answer format {answer_format!r}; answers are read as 'option' words or a 'number'")


def is_correct(answer_format: str, prediction: str | float | None, gold: str | float) -> bool:
    if answer_format == "number":
        return prediction is not None and abs(float(gold) - prediction) <= TOLERANCE
    return prediction == gold
