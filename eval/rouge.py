"""RougeL for instruction sets, with the maintained `rouge-score` package.

As MiniLLM scores Dolly and SInst (LMOps minillm/rouge_metric.py, whose default path is the
English one): `RougeScorer(["rougeL"], use_stemmer=True)` with the package's own tokenizer
(lowercased, runs of [a-z0-9] only, Porter stemming of words over 3 letters), the F-measure of
the prediction against each reference, the best reference per example, the mean over examples.
MiniLLM's GPT-2 tokenizer path is for cross-lingual sets only and is not used for these. The
package drops every character outside [a-z0-9], so a prediction in another script scores 0.
Scores here are fractions; the report shows them ×100, the paper's scale.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence


@lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(prediction: str, references: Sequence[str]) -> float:
    """The best RougeL F-measure of `prediction` over its references."""
    if not references:
        raise ValueError("RougeL needs at least one reference")
    return max(_scorer().score(target=reference, prediction=prediction)["rougeL"].fmeasure for reference in references)
