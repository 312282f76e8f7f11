"""The paper's §6 views of student embeddings (dev split, pooled as the student's heads see them):
t-SNE scatter, silhouette scores by gold label and by correctness, and cluster purity of KMeans
(K = 2) clusters against correctness labels, as the paper defines it:

    Purity = (1/N) Σ_k max_y |{x_i : c_i = k ∧ y_i = y}|

Purity is never below the share of the larger correctness class (one cluster can hold everything),
so the report prints that share beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: report machines have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

TSNE_MAX_POINTS = 1000  # t-SNE takes ~5 s per 1000 points on one core; beyond this a fixed random subset is drawn
SEED = 0


@dataclass(frozen=True)
class EmbeddingView:
    task: str
    variant: str
    seed: int
    embeddings: np.ndarray      # [N, d]
    labels: np.ndarray          # [N] gold class ids
    predictions: np.ndarray     # [N] predicted class ids
    label_names: tuple[str, ...]

    @property
    def correct(self) -> np.ndarray:
        return self.predictions == self.labels


@dataclass(frozen=True)
class EmbeddingScores:
    task: str
    variant: str
    seed: int
    n: int
    accuracy: float
    silhouette_gold: float      # NaN when undefined (one class only)
    silhouette_correct: float   # NaN when every prediction is right, or every one wrong
    purity: float
    majority_share: float       # the purity any clustering reaches: share of the larger correctness class


def purity(clusters: np.ndarray, classes: np.ndarray) -> float:
    clusters, classes = np.asarray(clusters), np.asarray(classes)
    total = 0
    for k in np.unique(clusters):
        _, counts = np.unique(classes[clusters == k], return_counts=True)
        total += counts.max()
    return total / len(classes)


def cluster_purity(embeddings: np.ndarray, classes: np.ndarray, k: int = 2) -> float:
    from sklearn.cluster import KMeans

    with one_openmp_thread():
        clusters = KMeans(n_clusters=k, n_init=10, random_state=SEED).fit_predict(np.asarray(embeddings, dtype=np.float64))
    return purity(clusters, classes)


def silhouette(embeddings: np.ndarray, groups: np.ndarray) -> float:
    """Mean silhouette (Euclidean) of `groups`; NaN where it is undefined (fewer than 2 groups, or as
    many groups as points)."""
    from sklearn.metrics import silhouette_score

    n_groups = len(np.unique(groups))
    if n_groups < 2 or n_groups >= len(groups):
        return math.nan
    return float(silhouette_score(np.asarray(embeddings, dtype=np.float64), groups))


def score_view(view: EmbeddingView) -> EmbeddingScores:
    correct = view.correct
    share = float(max(correct.mean(), 1 - correct.mean()))
    return EmbeddingScores(
        view.task, view.variant, view.seed, len(view.labels), float(correct.mean()),
        silhouette(view.embeddings, view.labels), silhouette(view.embeddings, correct),
        cluster_purity(view.embeddings, correct), share,
    )


def tsne_2d(embeddings: np.ndarray) -> np.ndarray:
    from sklearn.manifold import TSNE

    n = len(embeddings)
    perplexity = min(30.0, max(2.0, (n - 1) / 3))  # sklearn requires perplexity < n
    with one_openmp_thread():
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=SEED).fit_transform(
            np.asarray(embeddings, dtype=np.float64)
        )


def one_openmp_thread():
    """sklearn's OpenMP loops busy-wait: on cores shared with other work (training runs, other users)
    two threads ran t-SNE of 1000 points 10× slower than one (53 s against 5 s on this 2-core machine)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def plot_tsne(views: list[EmbeddingView], scores: list[EmbeddingScores], path: Path) -> Path:
    """One panel per variant, side by side: colour = gold label, marker = correct (o) / wrong (x)."""
    cmap = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, len(views), figsize=(4.4 * len(views), 4.9), squeeze=False)
    subset_note = ""
    for ax, view, score in zip(axes[0], views, scores):
        index = np.arange(len(view.labels))
        if len(index) > TSNE_MAX_POINTS:
            index = np.sort(np.random.default_rng(SEED).choice(index, TSNE_MAX_POINTS, replace=False))
            subset_note = f" ({TSNE_MAX_POINTS} of {len(view.labels)} examples drawn at random)"
        points = tsne_2d(view.embeddings[index])
        labels, correct = view.labels[index], view.correct[index]
        for label in np.unique(labels):
            for right, marker in ((True, "o"), (False, "x")):
                chosen = (labels == label) & (correct == right)
                ax.scatter(points[chosen, 0], points[chosen, 1], s=10, marker=marker, color=cmap(int(label) % 10),
                           alpha=0.75, linewidths=0.9)
        ax.set_title(
            f"{view.variant} (seed {view.seed})\nsilhouette: gold {_fmt(score.silhouette_gold)}, "
            f"correctness {_fmt(score.silhouette_correct)}\npurity (K=2) {_fmt(score.purity)} "
            f"vs majority share {_fmt(score.majority_share)}",
            fontsize=8,
        )
        ax.set_xlabel("t-SNE 1")
        ax.set_ylabel("t-SNE 2")
        ax.set_xticks([])
        ax.set_yticks([])
    names = views[0].label_names
    present = sorted({int(label) for view in views for label in np.unique(view.labels)})
    handles = [Line2D([], [], marker="s", linestyle="", color=cmap(c % 10), label=f"gold: {names[c] if c < len(names) else c}") for c in present]
    handles += [Line2D([], [], marker="o", linestyle="", color="0.3", label="correct"),
                Line2D([], [], marker="x", linestyle="", color="0.3", label="wrong")]
    fig.suptitle(f"{views[0].task}: t-SNE of student dev embeddings{subset_note}", fontsize=11)
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 7), fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"
