"""The paper's §6 measures and the OLS ANOVA on inputs small enough to work by hand."""

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from armada.reporting.anova import ols_anova
from armada.reporting.paper_measures import (centroid_distances, centroid_separation, distance_reduction, loss_t_test,
                                        scenarios, sensitivity, task_losses)


def test_task_losses_are_the_training_loss_per_example():
    # softmax([0, ln 3]) = (1/4, 3/4): −ln(3/4) for class 1, −ln(1/4) for class 0
    logits = np.array([[0.0, math.log(3)], [0.0, math.log(3)]])
    assert task_losses("classification", logits, np.array([1, 0])) == pytest.approx([math.log(4 / 3), math.log(4)])
    assert task_losses("regression", np.array([[2.5], [0.0]]), np.array([1.0, 0.5])) == pytest.approx([2.25, 0.25])
    rng = np.random.default_rng(0)
    choices, answers = rng.normal(size=(5, 3)), np.array([0, 2, 1, 1, 0])
    expected = torch.nn.functional.cross_entropy(torch.tensor(choices), torch.tensor(answers), reduction="none")
    assert task_losses("multiple_choice", choices, answers) == pytest.approx(expected.numpy())


def test_loss_t_test_is_paired_two_sided_and_positive_when_the_loss_without_is_higher():
    # d = without − with = (1, 2, 3): mean 2, sd 1, t = 2 / (1/√3) = 2√3. With 2 degrees of freedom the
    # t CDF is 1/2 + t / (2√(2 + t²)), so p = 1 − 2√3/√14 (two-sided).
    test = loss_t_test(np.array([3.0, 4.0, 5.0]), np.array([2.0, 2.0, 2.0]))
    assert (test.n, test.mean_without, test.mean_with) == (3, 4.0, 2.0)
    assert test.t == pytest.approx(2 * math.sqrt(3))
    assert test.p == pytest.approx(1 - 2 * math.sqrt(3) / math.sqrt(14))
    assert loss_t_test(np.array([2.0, 2.0, 2.0]), np.array([3.0, 4.0, 5.0])).t == pytest.approx(-2 * math.sqrt(3))


def test_loss_t_test_says_why_it_is_undefined():
    assert "at least 2" in loss_t_test(np.array([1.0]), np.array([0.0])).reason
    same = loss_t_test(np.array([1.0, 2.0]), np.array([0.0, 1.0]))
    assert math.isnan(same.t) and "no variance" in same.reason
    with pytest.raises(ValueError, match="one value per example"):
        loss_t_test(np.zeros(3), np.zeros(2))


def test_scenarios_follow_the_papers_error_analysis():
    labels = np.array([0, 1, 0, 1])
    distilled = np.array([0, 1, 1, 0])          # right, right, wrong, wrong
    undistilled = np.array([1, 1, 0, 0])        # wrong, right, right, wrong
    assert scenarios(labels, distilled, undistilled).tolist() == [1, 0, 2, 0]


def test_cosine_distance_to_the_gold_class_centroid():
    # class 0: (1, 0) and (0, 1), centroid (½, ½) at 45° from each: 1 − cos 45°; class 1 alone: its own centroid
    embeddings = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    labels = np.array([0, 0, 1])
    assert centroid_distances(embeddings, labels) == pytest.approx([1 - 1 / math.sqrt(2), 1 - 1 / math.sqrt(2), 0.0])
    assert centroid_separation(embeddings, labels) == pytest.approx(0.0)       # (½, ½) and (2, 2): one direction
    opposite = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    assert centroid_separation(opposite, labels) == pytest.approx(2.0)
    assert math.isnan(centroid_separation(embeddings, np.array([0, 0, 0])))


def test_distance_reduction_reads_as_table_14s_percent_change():
    assert round(distance_reduction(0.097, 0.001)) == 99          # Table 14's first row
    assert round(distance_reduction(0.073, 0.016)) == 78
    assert distance_reduction(0.5, 0.75) == pytest.approx(-50.0)


def test_sensitivity_is_the_variance_ratio_whatever_the_normalisation():
    sigmas, scores = np.array([0.0, 1.0, 2.0, 5.0]), np.array([80.0, 78.0, 77.0, 70.0])
    # Var(σ) = (4 + 1 + 0 + 9)/4 = 3.5; Var(score) = (3.75² + 1.75² + 0.75² + 6.25²)/4 = 14.1875
    assert sensitivity(sigmas, scores) == pytest.approx(14.1875 / 3.5)
    assert sensitivity(sigmas, scores) == pytest.approx(np.var(scores, ddof=1) / np.var(sigmas, ddof=1))
    assert math.isnan(sensitivity(np.array([1.0, 1.0]), np.array([3.0, 4.0])))


def test_two_way_anova_hand_worked():
    # A balanced 2 × 2 with 2 replicates; cell means a1b1 2, a1b2 5, a2b1 6, a2b2 9 (additive), ±1 within.
    y = [1, 3, 4, 6, 5, 7, 8, 10]
    a = ["a1"] * 4 + ["a2"] * 4
    b = ["b1", "b1", "b2", "b2"] * 2
    # grand mean 5.5; A means 3.5, 7.5 → SS_A = 8·2² = 32; B means 4, 7 → SS_B = 8·1.5² = 18;
    # SS_total = 58, so the residual is 8 on 8 − 3 = 5 degrees of freedom.
    factor_a, factor_b, residual = ols_anova(y, {"A": a, "B": b})
    assert (factor_a.df, factor_a.sum_sq, factor_a.f) == (1, pytest.approx(32), pytest.approx(20))
    assert (factor_b.df, factor_b.sum_sq, factor_b.f) == (1, pytest.approx(18), pytest.approx(11.25))
    assert (residual.source, residual.df, residual.sum_sq) == ("residual", 5, pytest.approx(8))
    assert factor_a.p == pytest.approx(scipy_stats.f.sf(20, 1, 5))
    assert factor_b.p == pytest.approx(scipy_stats.f.sf(11.25, 1, 5))


def test_one_factor_is_the_one_way_anova_even_unbalanced():
    rng = np.random.default_rng(3)
    groups = {"cosine": rng.normal(0.3, 1, 5), "euclid": rng.normal(0.5, 1, 7), "elementwise": rng.normal(-0.2, 1, 4)}
    y = np.concatenate(list(groups.values()))
    levels = [name for name, values in groups.items() for _ in values]
    factor, residual = ols_anova(y, {"manifold": levels})
    expected = scipy_stats.f_oneway(*groups.values())
    assert (factor.df, residual.df) == (2, 13)
    assert factor.f == pytest.approx(expected.statistic) and factor.p == pytest.approx(expected.pvalue)


def test_anova_refuses_what_it_cannot_test():
    with pytest.raises(ValueError, match="one level only"):
        ols_anova([1.0, 2.0, 3.0], {"beta": [1, 1, 1]})
    with pytest.raises(ValueError, match="no residual degrees of freedom"):
        ols_anova([1.0, 2.0], {"beta": [0, 1]})
    with pytest.raises(ValueError, match="3 values for 2 observations"):
        ols_anova([1.0, 2.0], {"beta": [0, 1, 1]})


def test_a_seed_block_takes_the_seeds_share_out_of_the_residual_hand_worked():
    # A 2 × 2 × 2 full factorial (A, B, seed): every pair of factors orthogonal, so Type II sums of squares are
    # n·Σ(level mean − grand mean)². y's grand mean 5.5; A means 3.5, 7.5 → 32; B means 4, 7 → 18; seed means
    # 4.75, 6.25 → 8·0.75² = 4.5; total 56, so the residual is 6 on 5 df without the block, 1.5 on 4 df with it.
    y = [1, 3, 4, 6, 5, 7, 9, 9]
    factors = {"A": ["a1"] * 4 + ["a2"] * 4, "B": ["b1", "b1", "b2", "b2"] * 2}
    seeds = [0, 1] * 4
    a, b, residual = ols_anova(y, factors)
    assert (a.sum_sq, residual.df, residual.sum_sq) == (pytest.approx(32), 5, pytest.approx(6))
    assert a.f == pytest.approx(32 / (6 / 5)) and a.p == pytest.approx(scipy_stats.f.sf(32 / (6 / 5), 1, 5))
    a, b, seed, residual = ols_anova(y, factors, block=("seed", seeds))
    assert (seed.source, seed.df, seed.sum_sq) == ("seed", 1, pytest.approx(4.5))
    assert (residual.df, residual.sum_sq) == (4, pytest.approx(1.5))
    assert (a.sum_sq, b.sum_sq) == (pytest.approx(32), pytest.approx(18))
    assert a.f == pytest.approx(32 / (1.5 / 4)) and b.p == pytest.approx(scipy_stats.f.sf(18 / (1.5 / 4), 1, 4))


def test_the_sweeps_recorded_improvements_give_todays_anova_without_the_block():
    # results/sweep-abg: the 16 improvements the α/β/γ sweep recorded, and the figures its report printed with the
    # hand-rolled OLS this module replaced (anova.csv of commit 4ad7725).
    path = Path(__file__).parent.parent / "results" / "sweep-abg" / "anova-improvements.csv"
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    y = [float(r["improvement"]) for r in rows]
    factors = {name: [r[name] for r in rows] for name in ("alpha", "beta", "gamma")}
    fitted = {r.source: r for r in ols_anova(y, factors)}
    for source, sum_sq, f, p in (("alpha", 1.56256, 7.75952, 0.0164787), ("beta", 0.00694306, 0.0344785, 0.855794),
                                 ("gamma", 0.562538, 2.7935, 0.120499)):
        assert (fitted[source].sum_sq, fitted[source].f, fitted[source].p) == (
            pytest.approx(sum_sq, rel=1e-5), pytest.approx(f, rel=1e-5), pytest.approx(p, rel=1e-5))
    assert (fitted["residual"].df, fitted["residual"].sum_sq) == (12, pytest.approx(2.41648, rel=1e-5))
    blocked = {r.source: r for r in ols_anova(y, factors, block=("seed", [r["seed"] for r in rows]))}
    assert blocked["residual"].df == 11 and blocked["alpha"].p < fitted["alpha"].p
