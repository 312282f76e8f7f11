"""The paper's §6 measures on arrays of one split's examples (no runs, no models): the per-example
task loss and the t-test between two students' losses (Table 15), the error-analysis scenarios
(Table 13), cosine distances to class centroids (Table 14) and the sensitivity score (Figure 11).
armada.reporting.paper_analyses applies them to runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats
from scipy.special import logsumexp

SCENARIO_DISTILLED_WINS = 1     # "instances where ARMADA beats the undistilled models (we denote as 'scenario 1')"
SCENARIO_UNDISTILLED_WINS = 2   # "... and vice versa (denoted as 'scenario 2')"


def task_losses(kind: str, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """L_T(Y, o_s) per example, as training computes it (armada.distill.losses.task_loss before its batch
    mean): cross-entropy over the classes (or the choices), squared error of the one output for regression
    (unclipped: the prediction range applies to scores, not to the loss)."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    if kind == "regression":
        return (logits[:, 0] - labels.astype(np.float64)) ** 2
    log_probabilities = logits - logsumexp(logits, axis=1, keepdims=True)
    return -log_probabilities[np.arange(len(labels)), labels.astype(int)]


@dataclass(frozen=True)
class LossTest:
    n: int
    mean_without: float
    mean_with: float
    t: float            # NaN when undefined (fewer than 2 examples, or every difference the same)
    p: float
    reason: str = ""    # why t and p are undefined


def loss_t_test(without: np.ndarray, with_: np.ndarray) -> LossTest:
    """Table 15: "T-statistic (p-value) between student training loss distributions without and with TS
    Aligner training. A positive t-statistic indicates that the expected student loss without a trained TS
    Aligner is higher than the student loss with a jointly trained TS Aligner model."

    The paper names no test. Both students are scored on the same examples, so this is the paired t-test
    of d_i = L_without,i − L_with,i (t = mean(d) / (sd(d) / √n), positive when the loss without is
    higher), two-sided: Table 15's p-values are two-sided ones (t = −0.29 with p = 0.78 and t = 0.49 with
    p = 0.62; one-sided they would be 0.61 and 0.31)."""
    without, with_ = np.asarray(without, dtype=np.float64), np.asarray(with_, dtype=np.float64)
    if without.shape != with_.shape:
        raise ValueError(f"paired losses must have one value per example on both sides: {without.shape} and {with_.shape}")
    n = len(without)
    means = (float(without.mean()), float(with_.mean())) if n else (math.nan, math.nan)
    if n < 2:
        return LossTest(n, *means, math.nan, math.nan, f"{n} example(s): the test needs at least 2")
    differences = without - with_
    if np.all(differences == differences[0]):
        return LossTest(n, *means, math.nan, math.nan, "every paired difference is the same: no variance to test")
    result = scipy_stats.ttest_rel(without, with_)
    return LossTest(n, *means, float(result.statistic), float(result.pvalue))


def scenarios(labels: np.ndarray, distilled: np.ndarray, undistilled: np.ndarray) -> np.ndarray:
    """Per example: 1 where the distilled student is right and the undistilled one wrong, 2 the reverse,
    0 where both are right or both wrong (in neither of the paper's scenarios)."""
    labels = np.asarray(labels)
    right, right_before = np.asarray(distilled) == labels, np.asarray(undistilled) == labels
    out = np.zeros(len(labels), dtype=int)
    out[right & ~right_before] = SCENARIO_DISTILLED_WINS
    out[right_before & ~right] = SCENARIO_UNDISTILLED_WINS
    return out


def class_centroids(embeddings: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    embeddings, labels = np.asarray(embeddings, dtype=np.float64), np.asarray(labels)
    return {int(y): embeddings[labels == y].mean(axis=0) for y in np.unique(labels)}


def centroid_distances(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Table 14: "Cosine distance from the cluster centroid to the embeddings", per example:
    1 − cos(x_i, μ_{y_i}), μ_y the mean embedding of the examples whose gold label is y.

    The paper does not say which clusters; the gold-label classes are the ones its silhouette scores
    (Table 13, the same analysis) group by, and what "semantic cohesion" of "similar instances with
    similar target outputs" asks about."""
    embeddings, labels = np.asarray(embeddings, dtype=np.float64), np.asarray(labels)
    centroids = class_centroids(embeddings, labels)
    own = np.stack([centroids[int(y)] for y in labels])
    return 1.0 - _cosine(embeddings, own)


def centroid_separation(embeddings: np.ndarray, labels: np.ndarray) -> float:
    """Mean cosine distance between the class centroids, over every pair of classes (NaN with one class):
    how far apart the classes sit, beside how tightly each gathers (centroid_distances)."""
    centroids = list(class_centroids(embeddings, labels).values())
    pairs = [(a, b) for i, a in enumerate(centroids) for b in centroids[i + 1:]]
    if not pairs:
        return math.nan
    return float(np.mean([1.0 - _cosine(a[None], b[None])[0] for a, b in pairs]))


def distance_reduction(before: float, after: float) -> float:
    """Table 14's "% Change", which it prints as the share by which the distance fell (0.097 → 0.001 is 99%):
    100 · (before − after) / before."""
    return math.nan if before == 0 else 100.0 * (before - after) / before


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.einsum("ij,ij->i", a, b) / np.where(norms == 0, np.inf, norms)


def sensitivity(noise: np.ndarray, performance: np.ndarray) -> float:
    """Figure 11: "a sensitivity score defined as Var(performance) / Var(σ)", over the noise levels σ of the
    teacher's inputs and the performance at each. Both variances are taken with the same normalisation
    (population), so the ratio does not depend on it. NaN with fewer than two distinct σ."""
    noise, performance = np.asarray(noise, dtype=np.float64), np.asarray(performance, dtype=np.float64)
    if noise.shape != performance.shape:
        raise ValueError(f"one performance per noise level: {noise.shape} and {performance.shape}")
    spread = noise.var()
    return math.nan if spread == 0 else float(performance.var() / spread)
