"""ANOVA by ordinary least squares over categorical factors, as the paper uses it for its
hyperparameters (Figure 5: "A two-way ANOVA using ordinary least square (OLS) regression model
confirms the statistical significance (p-value 7e-5 and 5e-3 for β and γ, respectively)"; Figure 6:
one factor, the manifold loss, p = 0.52).

The model is additive: y = intercept + Σ_factors effect(level) + ε, each factor coded with one
indicator column per level but the first. The paper reports one p-value per factor and no
interaction; without replicates of every combination an interaction term would leave no residual
to test against. Each factor's sum of squares is Type II: the rise in the residual sum of squares
when that factor alone is dropped from the full model, with degrees of freedom the rank it takes.
With a balanced design this equals the textbook n·Σ(level mean − grand mean)², and with one factor
it is the one-way ANOVA (scipy.stats.f_oneway).

  F = (SS_factor / df_factor) / (RSS_full / df_residual),  p = P(F(df_factor, df_residual) > F)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Hashable, Mapping, Sequence

import numpy as np
from scipy import stats as scipy_stats


@dataclass(frozen=True)
class AnovaRow:
    source: str         # a factor's name, or "residual"
    df: int
    sum_sq: float
    f: float            # NaN for the residual row
    p: float


def ols_anova(y: Sequence[float], factors: Mapping[str, Sequence[Hashable]]) -> list[AnovaRow]:
    """One row per factor, then the residual. Raises ValueError where the test is undefined: factors of
    the wrong length, a factor with one level, or no residual degrees of freedom left."""
    y = np.asarray(y, dtype=np.float64)
    if not factors:
        raise ValueError("no factors to test")
    indicators = {}
    for name, levels in factors.items():
        if len(levels) != len(y):
            raise ValueError(f"factor {name!r} has {len(levels)} values for {len(y)} observations")
        indicators[name] = _indicators(levels)
        if indicators[name].shape[1] == 0:
            raise ValueError(f"factor {name!r} has one level only: nothing to compare")
    rss, rank = _fit(_design(indicators.values(), len(y)), y)
    df_residual = len(y) - rank
    if df_residual < 1:
        raise ValueError(f"{len(y)} observations leave no residual degrees of freedom for {rank} parameters")
    # A residual of rounding size against the spread of y is a perfect fit: F is unbounded
    perfect = rss <= 1e-12 * float(((y - y.mean()) ** 2).sum())
    rows = []
    for name in factors:
        rss_without, rank_without = _fit(_design([m for other, m in indicators.items() if other != name], len(y)), y)
        df, sum_sq = rank - rank_without, max(rss_without - rss, 0.0)
        rows.append(AnovaRow(name, df, sum_sq, *_f_test(sum_sq, df, rss, df_residual, perfect)))
    rows.append(AnovaRow("residual", df_residual, rss, math.nan, math.nan))
    return rows


def _indicators(levels: Sequence[Hashable]) -> np.ndarray:
    """One 0/1 column per level but the first (sorted): treatment coding."""
    distinct = sorted(set(levels), key=repr)
    return np.array([[float(value == level) for level in distinct[1:]] for value in levels]).reshape(len(levels), -1)


def _design(blocks, n: int) -> np.ndarray:
    return np.hstack([np.ones((n, 1)), *blocks])


def _fit(design: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """(residual sum of squares, rank of the design) of the least-squares fit."""
    coefficients, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ coefficients
    return float(residuals @ residuals), int(rank)


def _f_test(sum_sq: float, df: int, rss: float, df_residual: int, perfect: bool) -> tuple[float, float]:
    if df == 0:                         # the factor is confounded with the others: nothing of its own to test
        return math.nan, math.nan
    if perfect:
        return (math.inf, 0.0) if sum_sq > 0 else (math.nan, math.nan)
    f = (sum_sq / df) / (rss / df_residual)
    return f, float(scipy_stats.f.sf(f, df, df_residual))
