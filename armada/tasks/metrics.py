"""Task metrics, as fractions (the report shows them ×100, as the paper does).

CoLA: Matthews correlation; STS-B: Pearson and Spearman; MRPC and QQP: accuracy and F1 of the
positive class; CB: accuracy and macro-F1; accuracy elsewhere. The first name of each metric is the
one runs are reported by, and selected by unless `selection = "authors"` (`selection_score`).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

NAMES = {
    "accuracy": ("accuracy",),
    "mcc": ("mcc",),
    "accuracy_f1": ("accuracy", "f1"),
    "accuracy_f1_macro": ("accuracy", "f1_macro"),
    "pearson_spearman": ("pearson", "spearman"),
}


def primary(metric: str) -> str:
    return NAMES[metric][0]


# The authors' code keeps the epoch with the best of the first of these its dev scores hold
# (trainer_superglue.py 341-350; "f1" there is CB's macro-F1, acc_and_f1 at line 24): MCC, F1, accuracy,
# Spearman. Their compute_metrics knows SuperGLUE alone (lines 40-47); on GLUE the chain is read
# over GLUE's usual scores (CoLA MCC, MRPC and QQP F1, STS-B Spearman), for which no code was released.
AUTHORS_SELECTION = ("mcc", "f1", "f1_macro", "accuracy", "spearman")


def selection_score(metric: str, selection: str) -> str:
    """The dev score a run's best epoch is chosen by: the primary one, or the authors' (AUTHORS_SELECTION)."""
    if selection == "primary":
        return primary(metric)
    return next((name for name in AUTHORS_SELECTION if name in NAMES[metric]), primary(metric))


def compute(metric: str, predictions: Sequence[float], labels: Sequence[float]) -> dict[str, float]:
    """Every score of `metric` for predictions (class ids, or floats for regression) against labels."""
    p, y = np.asarray(predictions), np.asarray(labels)
    if p.shape != y.shape or p.ndim != 1 or len(p) == 0:
        raise ValueError(f"predictions {p.shape} and labels {y.shape} must be equal-length, non-empty vectors")
    out = {}
    for name in NAMES[metric]:
        out[name] = float(_SCORES[name](p, y))
    return out


def accuracy(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(p == y))


def f1(p: np.ndarray, y: np.ndarray) -> float:
    """F1 of class 1 (GLUE's convention for MRPC and QQP); 0 when there is no true or predicted positive."""
    tp = np.sum((p == 1) & (y == 1))
    fp = np.sum((p == 1) & (y != 1))
    fn = np.sum((p != 1) & (y == 1))
    return 0.0 if tp == 0 else float(2 * tp / (2 * tp + fp + fn))


def f1_macro(p: np.ndarray, y: np.ndarray) -> float:
    """The mean over the classes of the labels and predictions of each class's F1 (sklearn's average="macro")."""
    scores = []
    for c in np.union1d(p, y):
        tp, fp, fn = np.sum((p == c) & (y == c)), np.sum((p == c) & (y != c)), np.sum((p != c) & (y == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def mcc(p: np.ndarray, y: np.ndarray) -> float:
    """Matthews correlation for any number of classes (Gorodkin's R_K); 0 when undefined, as sklearn does."""
    classes = np.union1d(p, y)
    index = {c: i for i, c in enumerate(classes)}
    confusion = np.zeros((len(classes), len(classes)))
    for a, b in zip(y, p):
        confusion[index[a], index[b]] += 1
    t, s = confusion.sum(axis=1), confusion.sum(axis=0)
    c, n = np.trace(confusion), confusion.sum()
    denominator = math.sqrt((n * n - s @ s) * (n * n - t @ t))
    return 0.0 if denominator == 0 else float((c * n - t @ s) / denominator)


def pearson(p: np.ndarray, y: np.ndarray) -> float:
    """NaN when either side is constant: the correlation is undefined, not zero."""
    p, y = p.astype(float), y.astype(float)
    if np.std(p) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(p, y)[0, 1])


def spearman(p: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import rankdata

    return pearson(rankdata(p), rankdata(y))


_SCORES = {"accuracy": accuracy, "f1": f1, "f1_macro": f1_macro, "mcc": mcc, "pearson": pearson, "spearman": spearman}
