"""Statistics over seeds: mean ± sd, deltas against the undistilled baseline, and the paper's
one-sided paired t-test (§5.1: H1 = the variant scores higher than undistilled; one pair per
(task, seed) cell, the two runs sharing a seed sharing data order and head initialisation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Hashable, Mapping

import numpy as np
from scipy import stats as scipy_stats


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    sd: float           # sample sd (ddof=1); NaN with fewer than two seeds, where it is undefined
    max: float          # the best seed: how the paper's Table 2 reports


def summarize(values) -> Summary:
    values = np.asarray(list(values), dtype=float)
    if len(values) == 0:
        raise ValueError("no values to summarize")
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
    return Summary(len(values), float(np.mean(values)), sd, float(np.max(values)))


@dataclass(frozen=True)
class Delta:
    mean: float
    sd: float           # sd of the per-seed differences; NaN when unpaired or a single pair
    pairs: int          # seeds present on both sides; 0 = no common seed, `mean` is a difference of means


def delta(variant: Mapping[int, float], baseline: Mapping[int, float]) -> Delta:
    """Variant minus baseline, seed by seed where both have the seed, else as a difference of means."""
    if not variant or not baseline:
        raise ValueError("a delta needs scores on both sides")
    common = sorted(set(variant) & set(baseline))
    if not common:
        return Delta(summarize(variant.values()).mean - summarize(baseline.values()).mean, math.nan, 0)
    differences = summarize(variant[s] - baseline[s] for s in common)
    return Delta(differences.mean, differences.sd, len(common))


@dataclass(frozen=True)
class PairedTest:
    pairs: int
    mean_difference: float
    t: float            # NaN when the test is undefined (fewer than two pairs, or every difference equal)
    p: float
    reason: str = ""    # why t and p are undefined, for the report


def paired_t_test(variant: Mapping[Hashable, float], baseline: Mapping[Hashable, float],
                  alternative: str = "greater") -> PairedTest:
    """Paired t-test over the keys both have, e.g. (task, seed): one-sided, H1 "variant > baseline", by default;
    `alternative="two-sided"` where neither side is the one expected to win (two teachers, say)."""
    keys = sorted(set(variant) & set(baseline), key=repr)
    a = np.array([variant[k] for k in keys], dtype=float)
    b = np.array([baseline[k] for k in keys], dtype=float)
    if len(keys) < 2:
        mean = float(np.mean(a - b)) if keys else math.nan
        return PairedTest(len(keys), mean, math.nan, math.nan, f"{len(keys)} paired cell(s): the test needs at least 2")
    differences = a - b
    if np.all(differences == differences[0]):
        return PairedTest(len(keys), float(differences[0]), math.nan, math.nan, "every paired difference is the same: no variance to test")
    result = scipy_stats.ttest_rel(a, b, alternative=alternative)
    return PairedTest(len(keys), float(np.mean(differences)), float(result.statistic), float(result.pvalue))
