"""Seed statistics and the paper's one-sided paired t-test, against hand computations and scipy."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from armada.reporting.stats import delta, paired_t_test, summarize


def test_summary_is_the_mean_and_the_sample_sd():
    s = summarize([0.40, 0.50, 0.60])
    assert s.n == 3
    assert s.mean == pytest.approx(0.5)
    assert s.sd == pytest.approx(0.1)  # sqrt((0.01 + 0 + 0.01) / (3 - 1))


def test_summary_of_one_seed_has_no_sd():
    s = summarize([0.7])
    assert s.mean == 0.7 and math.isnan(s.sd)


def test_delta_is_taken_seed_by_seed_where_both_sides_have_the_seed():
    d = delta({0: 0.5, 1: 0.7, 2: 0.9}, {0: 0.4, 1: 0.5})
    assert d.pairs == 2
    assert d.mean == pytest.approx(0.15)
    assert d.sd == pytest.approx(math.sqrt(0.005))  # differences 0.1 and 0.2


def test_delta_without_a_common_seed_is_a_difference_of_means_and_says_so():
    d = delta({3: 0.6}, {0: 0.4, 1: 0.5})
    assert d.pairs == 0
    assert d.mean == pytest.approx(0.15)
    assert math.isnan(d.sd)


def test_t_test_matches_a_hand_computation():
    # differences 1, 2, 4: mean 7/3, sd sqrt(7/3), t = mean / (sd / sqrt(3)) = sqrt(7); with 2 degrees
    # of freedom the t distribution's tail is 1/2 - t / (2 sqrt(2 + t²)).
    baseline = {("cola", 0): 10.0, ("cola", 1): 20.0, ("rte", 0): 30.0}
    variant = {("cola", 0): 11.0, ("cola", 1): 22.0, ("rte", 0): 34.0}
    test = paired_t_test(variant, baseline)
    t = math.sqrt(7)
    assert test.pairs == 3
    assert test.mean_difference == pytest.approx(7 / 3)
    assert test.t == pytest.approx(t)
    assert test.p == pytest.approx(0.5 - t / (2 * math.sqrt(2 + t * t)))
    assert not test.reason


def test_t_test_matches_scipy_on_task_seed_pairs_and_ignores_unpaired_cells():
    rng = np.random.default_rng(7)
    keys = [(task, seed) for task in ("cola", "mrpc", "rte", "stsb") for seed in range(3)]
    baseline = {k: float(v) for k, v in zip(keys, rng.uniform(0.4, 0.8, len(keys)))}
    variant = {k: baseline[k] + float(e) for k, e in zip(keys, rng.normal(0.01, 0.02, len(keys)))}
    variant[("copa", 0)] = 0.9          # no baseline for it: not a pair
    baseline[("wsc", 1)] = 0.6          # no variant for it: not a pair
    test = paired_t_test(variant, baseline)
    expected = scipy_stats.ttest_rel([variant[k] for k in keys], [baseline[k] for k in keys], alternative="greater")
    assert test.pairs == len(keys)
    assert test.t == pytest.approx(expected.statistic)
    assert test.p == pytest.approx(expected.pvalue)
    two_sided = scipy_stats.ttest_rel([variant[k] for k in keys], [baseline[k] for k in keys])
    assert test.p == pytest.approx(two_sided.pvalue / 2 if test.t > 0 else 1 - two_sided.pvalue / 2)


def test_t_test_is_one_sided_a_worse_variant_gets_a_large_p():
    baseline = {0: 0.8, 1: 0.7, 2: 0.75}
    variant = {0: 0.6, 1: 0.65, 2: 0.5}
    test = paired_t_test(variant, baseline)
    assert test.t < 0 and test.p > 0.5


def test_t_test_is_undefined_with_fewer_than_two_pairs_or_no_variance():
    one = paired_t_test({0: 0.6}, {0: 0.5, 1: 0.4})
    assert one.pairs == 1 and math.isnan(one.t) and math.isnan(one.p) and "at least 2" in one.reason
    flat = paired_t_test({0: 3.0, 1: 4.0}, {0: 2.0, 1: 3.0})
    assert flat.pairs == 2 and flat.mean_difference == 1.0 and math.isnan(flat.t) and "same" in flat.reason
