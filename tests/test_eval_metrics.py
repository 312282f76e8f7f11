"""Task metrics against hand-worked small cases and against sklearn and scipy."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from sklearn import metrics as sk

from armada.tasks.metrics import compute, primary


def test_mcc_hand_worked():
    # TP 2, TN 2, FP 1, FN 1: (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = 3 / 9
    labels = [1, 1, 1, 0, 0, 0]
    predictions = [1, 1, 0, 0, 0, 1]
    assert compute("mcc", predictions, labels) == {"mcc": pytest.approx(1 / 3)}


@pytest.mark.parametrize("classes", [2, 3, 5])
def test_mcc_matches_sklearn(classes):
    rng = np.random.default_rng(classes)
    labels = rng.integers(0, classes, 200)
    predictions = np.where(rng.random(200) < 0.6, labels, rng.integers(0, classes, 200))
    assert compute("mcc", predictions, labels)["mcc"] == pytest.approx(sk.matthews_corrcoef(labels, predictions))


def test_mcc_of_a_constant_prediction_is_zero_as_in_sklearn():
    labels, predictions = [0, 1, 1, 0], [1, 1, 1, 1]
    assert compute("mcc", predictions, labels)["mcc"] == 0.0 == sk.matthews_corrcoef(labels, predictions)


def test_accuracy_and_f1_hand_worked_and_against_sklearn():
    # TP 2, FP 1, FN 1: F1 = 2·2 / (2·2 + 1 + 1) = 2/3; 3 of 5 right.
    labels = [1, 0, 1, 0, 1]
    predictions = [1, 1, 0, 0, 1]
    scores = compute("accuracy_f1", predictions, labels)
    assert scores == {"accuracy": pytest.approx(0.6), "f1": pytest.approx(2 / 3)}
    assert scores["f1"] == pytest.approx(sk.f1_score(labels, predictions))
    rng = np.random.default_rng(1)
    labels, predictions = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    scores = compute("accuracy_f1", predictions, labels)
    assert scores["accuracy"] == pytest.approx(sk.accuracy_score(labels, predictions))
    assert scores["f1"] == pytest.approx(sk.f1_score(labels, predictions))


def test_f1_without_any_positive_is_zero():
    assert compute("accuracy_f1", [0, 0, 0], [0, 0, 0])["f1"] == 0.0


def test_pearson_hand_worked_and_spearman_against_scipy():
    # x − x̄ = (−1, 0, 1), y − ȳ = (−4/3, −1/3, 5/3): r = 3 / sqrt(2 · 42/9) = 9 / sqrt(84)
    scores = compute("pearson_spearman", [1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert scores["pearson"] == pytest.approx(9 / math.sqrt(84))
    assert scores["spearman"] == pytest.approx(1.0)
    rng = np.random.default_rng(2)
    labels = rng.uniform(0, 5, 100).round(1)   # rounding makes ties, as STS-B scores have
    predictions = labels + rng.normal(0, 1, 100)
    scores = compute("pearson_spearman", predictions, labels)
    assert scores["pearson"] == pytest.approx(scipy_stats.pearsonr(predictions, labels).statistic)
    assert scores["spearman"] == pytest.approx(scipy_stats.spearmanr(predictions, labels).statistic)


def test_pearson_of_a_constant_prediction_is_undefined_not_zero():
    assert math.isnan(compute("pearson_spearman", [2.0, 2.0, 2.0], [1.0, 2.0, 3.0])["pearson"])


def test_primary_metric_names_and_bad_shapes():
    assert [primary(m) for m in ("accuracy", "mcc", "accuracy_f1", "pearson_spearman")] == ["accuracy", "mcc", "accuracy", "pearson"]
    with pytest.raises(ValueError):
        compute("accuracy", [1, 0], [1])
    with pytest.raises(ValueError):
        compute("accuracy", [], [])
