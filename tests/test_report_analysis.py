"""The paper's §6 embedding analyses on constructed examples whose answers are known."""

import math

import numpy as np
import pytest
from sklearn.metrics import silhouette_score

from armada.reporting.analysis import EmbeddingView, cluster_purity, plot_tsne, purity, score_view, silhouette


def test_purity_follows_the_papers_definition():
    # cluster 0 holds classes (1, 1, 0): its majority counts 2; cluster 1 holds (0, 0, 0): 3 → 5/6
    assert purity(np.array([0, 0, 0, 1, 1, 1]), np.array([1, 1, 0, 0, 0, 0])) == pytest.approx(5 / 6)
    assert purity(np.array([0, 1, 0, 1]), np.array([1, 0, 1, 0])) == 1.0


def test_kmeans_purity_on_two_separated_blobs_with_one_mislabelled_point_each():
    rng = np.random.default_rng(0)
    blob_a = rng.normal(0, 0.1, (20, 8))
    blob_b = rng.normal(0, 0.1, (20, 8)) + 10
    embeddings = np.vstack([blob_a, blob_b])
    correct = np.array([True] * 20 + [False] * 20)
    correct[0], correct[20] = False, True
    assert cluster_purity(embeddings, correct) == pytest.approx(38 / 40)


def test_silhouette_hand_worked():
    # 1-D points A = {0, 1}, B = {10, 11}: every a = 1; b = 10.5 for 0 and 11, 9.5 for 1 and 10;
    # s = 1 − a/b, averaged.
    points = np.array([[0.0], [1.0], [10.0], [11.0]])
    groups = np.array([0, 0, 1, 1])
    expected = (2 * (1 - 1 / 10.5) + 2 * (1 - 1 / 9.5)) / 4
    assert silhouette(points, groups) == pytest.approx(expected)
    assert silhouette(points, groups) == pytest.approx(silhouette_score(points, groups))


def test_silhouette_is_undefined_with_one_group():
    assert math.isnan(silhouette(np.eye(4), np.array([1, 1, 1, 1])))


def view(variant: str, predictions: np.ndarray) -> EmbeddingView:
    rng = np.random.default_rng(1)
    labels = np.array([0] * 15 + [1] * 15)
    embeddings = rng.normal(0, 0.3, (30, 6)) + labels[:, None] * 3.0
    return EmbeddingView("glue/rte", variant, 0, embeddings, labels, predictions, ("entailment", "not_entailment"))


def test_scores_of_a_view_against_direct_computations():
    labels = np.array([0] * 15 + [1] * 15)
    predictions = labels.copy()
    predictions[:5] = 1                        # five wrong, all in the first class
    scores = score_view(view("armada-euclid", predictions))
    assert scores.n == 30
    assert scores.accuracy == pytest.approx(25 / 30)
    assert scores.majority_share == pytest.approx(25 / 30)
    assert scores.silhouette_gold > 0.7        # two tight, well separated classes
    v = view("armada-euclid", predictions)
    assert scores.silhouette_correct == pytest.approx(silhouette_score(v.embeddings, v.correct))
    # KMeans finds the two classes; correctness splits only the first: 10 + 15 of 30 are in the majority
    assert scores.purity == pytest.approx(25 / 30)
    assert math.isnan(score_view(view("undistilled", labels.copy())).silhouette_correct)  # all correct


def test_tsne_figure_is_written_side_by_side(tmp_path):
    import matplotlib.image

    labels = np.array([0] * 15 + [1] * 15)
    views = [view("undistilled", labels.copy()), view("armada-euclid", 1 - labels)]
    path = plot_tsne(views, [score_view(v) for v in views], tmp_path / "tsne.png")
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[1] > pixels.shape[0] > 300     # two panels side by side
    assert pixels[..., :3].std() > 0.05
