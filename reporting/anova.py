"""ANOVA by ordinary least squares over categorical factors, as the paper uses it for its
hyperparameters (Figure 5: "A two-way ANOVA using ordinary least square (OLS) regression model
confirms the statistical significance (p-value 7e-5 and 5e-3 for β and γ, respectively)"; Figure 6:
one factor, the manifold loss, p = 0.52), fitted by statsmodels (`ols` and `anova_lm(typ=2)`).

The model is additive: y = intercept + Σ_factors effect(level) [+ effect(block)] + ε, each factor
treatment-coded. The paper reports one p-value per factor and no interaction; without replicates of
every combination an interaction term would leave no residual to test against. Each factor's sum of
squares is Type II: the rise in the residual sum of squares when that factor alone is dropped from
the full model. With a balanced design this equals the textbook n·Σ(level mean − grand mean)², and
with one factor it is the one-way ANOVA (scipy.stats.f_oneway).

A block (the seed) is a factor that is not tested for itself: runs of one seed share their data
order and initialisation, so their improvements move together, and leaving that out puts the seed's
variation into the residual every factor is tested against. The report prints the fit without the
block (what the paper describes) and with it.

  F = (SS_factor / df_factor) / (RSS_full / df_residual),  p = P(F(df_factor, df_residual) > F)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Hashable, Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class AnovaRow:
    source: str         # a factor's name, the block's, or "residual"
    df: int
    sum_sq: float
    f: float            # NaN for the residual row, and for a factor confounded with the others
    p: float


def ols_anova(y: Sequence[float], factors: Mapping[str, Sequence[Hashable]],
              block: tuple[str, Sequence[Hashable]] | None = None) -> list[AnovaRow]:
    """One row per factor, then the block's (`block` = (name, levels)), then the residual. Raises ValueError
    where the test is undefined: factors of the wrong length, a factor with one level, or no residual
    degrees of freedom left."""
    import pandas as pd
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    y = np.asarray(y, dtype=np.float64)
    if not factors:
        raise ValueError("no factors to test")
    terms = dict(factors) | (dict([block]) if block is not None else {})
    for name, levels in terms.items():
        if len(levels) != len(y):
            raise ValueError(f"factor {name!r} has {len(levels)} values for {len(y)} observations")
        if len(set(levels)) < 2:
            raise ValueError(f"factor {name!r} has one level only: nothing to compare")
    # Columns by position: a factor's name need not be a formula identifier. Levels as their repr, so that
    # 0.5 and "0.5" stay apart and every level is a category, whatever its type.
    columns = {f"f{i}": [repr(v) for v in levels] for i, levels in enumerate(terms.values())}
    model = ols("y ~ " + " + ".join(f"C({c})" for c in columns), pd.DataFrame({"y": y, **columns})).fit()
    if model.df_resid < 1:
        raise ValueError(f"{len(y)} observations leave no residual degrees of freedom for {int(model.df_model) + 1} "
                         "parameters")
    with warnings.catch_warnings():     # a perfect fit divides by a zero residual: F is then inf or undefined
        warnings.simplefilter("ignore", RuntimeWarning)
        table = anova_lm(model, typ=2)
    rounding = 1e-12 * float(((y - y.mean()) ** 2).sum())     # sums of squares this small are zero but for rounding
    perfect = model.ssr <= rounding
    rows = []
    for name, column in zip(terms, columns):
        line = table.loc[f"C({column})"]
        df, sum_sq = _rank_of(model, column), max(float(line["sum_sq"]), 0.0)
        if df == int(line["df"]) and not perfect:
            f, p = float(line["F"]), float(line["PR(>F)"])
        else:
            f, p = _edge_case(sum_sq > rounding, df)
        rows.append(AnovaRow(name, df, sum_sq, f, p))
    rows.append(AnovaRow("residual", int(model.df_resid), float(model.ssr), math.nan, math.nan))
    return rows


def _rank_of(model, column: str) -> int:
    """The degrees of freedom a term adds to the others: 0 where it is confounded with them."""
    design = model.model.exog
    names = model.model.exog_names
    mine = [i for i, n in enumerate(names) if n.startswith(f"C({column})")]
    rest = [i for i in range(len(names)) if i not in mine]
    return int(np.linalg.matrix_rank(design) - np.linalg.matrix_rank(design[:, rest]))


def _edge_case(has_effect: bool, df: int) -> tuple[float, float]:
    """(F, p) where anova_lm's are not the test: a term confounded with the others has nothing of its own to test;
    against a perfect fit (a residual of rounding size) any effect is infinitely significant, and none is undefined."""
    if df == 0:
        return math.nan, math.nan
    return (math.inf, 0.0) if has_effect else (math.nan, math.nan)
