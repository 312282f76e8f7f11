"""The report's figures (PNG): deltas per task with error bars, and the dev metric per epoch."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: report machines have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from armada.objectives import term_colours  # noqa: E402
from armada.reporting.runs import SELECTIONS  # noqa: E402
from armada.reporting.tables import Table  # noqa: E402

SELECTION_TITLES = {"best": "best epoch on dev", "last": "last epoch"}


def variant_colors(table: Table) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10")
    return {v: cmap(i % 10) for i, v in enumerate(table.variants)}


def task_label(table: Table, task: str) -> str:
    return f"{task}\n({table.metrics[task]})"


def plot_deltas(table: Table, path: Path) -> Path:
    """Grouped bars, one group per task and one bar per variant: mean Δ ×100 against the baseline,
    error bars the sd of the per-seed differences; one panel per epoch selection."""
    variants = [v for v in table.variants if v != table.baseline]
    colors = variant_colors(table)
    width = 0.8 / max(len(variants), 1)
    x = np.arange(len(table.tasks))
    fig, axes = plt.subplots(
        len(SELECTIONS), 1, figsize=(max(6.0, 1.6 + 1.3 * len(table.tasks) * max(1.0, len(variants) / 3)), 3.6 * len(SELECTIONS)),
        sharex=True, squeeze=False,
    )
    metrics = sorted(set(table.metrics.values()))
    unit = f"Δ {metrics[0]} ×100" if len(metrics) == 1 else "Δ task metric ×100"
    for ax, selection in zip(axes[:, 0], SELECTIONS):
        for i, variant in enumerate(variants):
            offsets = x - 0.4 + width * (i + 0.5)
            for j, task in enumerate(table.tasks):
                d = table.cells[(variant, task)].delta.get(selection)
                if d is None:
                    ax.text(offsets[j], 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90, color="0.4")
                    continue
                error = None if math.isnan(d.sd) else [[100 * d.sd], [100 * d.sd]]
                ax.bar(offsets[j], 100 * d.mean, width, yerr=error, capsize=3, color=colors[variant], label=variant)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_title(f"{table.student}: {SELECTION_TITLES[selection]}, Δ against {table.baseline} (mean ± sd over seeds)", fontsize=10)
        ax.set_ylabel(unit)
        ax.grid(axis="y", alpha=0.3)
    unique = _unique_legend(axes)
    if unique:
        axes[0, 0].legend(unique.values(), unique.keys(), fontsize=8, loc="best")
    axes[-1, 0].set_xticks(x, [task_label(table, t) for t in table.tasks], fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_curves(table: Table, path: Path) -> Path:
    """One panel per task: the dev metric ×100 per epoch for each variant, mean over its finished
    seeds with a ± sd band."""
    colors = variant_colors(table)
    columns = min(3, len(table.tasks))
    rows = math.ceil(len(table.tasks) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.4 * rows + 0.8), squeeze=False)
    for ax, task in zip(axes.flat, table.tasks):
        for variant in table.variants:
            runs = table.cells[(variant, task)].runs
            if not runs:
                continue
            by_epoch: dict[int, list[float]] = {}
            for run in runs:
                for epoch, score in run.curve():
                    if not math.isnan(score):
                        by_epoch.setdefault(epoch, []).append(100 * score)
            epochs = sorted(by_epoch)
            mean = np.array([np.mean(by_epoch[e]) for e in epochs])
            sd = np.array([np.std(by_epoch[e], ddof=1) if len(by_epoch[e]) > 1 else 0.0 for e in epochs])
            ax.plot(epochs, mean, marker="o", markersize=3, color=colors[variant], label=variant)
            ax.fill_between(epochs, mean - sd, mean + sd, color=colors[variant], alpha=0.18, linewidth=0)
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"dev {table.metrics[task]} ×100")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in list(axes.flat)[len(table.tasks):]:
        ax.set_visible(False)
    handles = _unique_legend(axes)
    fig.suptitle(f"{table.student}: dev metric per epoch\n(mean over seeds, band ± sd)", fontsize=11)
    if handles:                 # none where no run has finished an epoch yet (one interrupted in its first)
        fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=min(6, len(handles)), fontsize=8)
    fig.tight_layout(rect=(0, 0.08 if rows == 1 else 0.05, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def balance_terms(shares: list[dict[str, float]]) -> dict[str, str | None]:
    """The loss terms among `shares`, each with its colour: the objectives' declared terms in their order
    (armada.objectives), then any term none declares (None: matplotlib's next colour), so none drops out."""
    declared = term_colours()
    present = {term for s in shares for term in s}
    return ({t: c for t, c in declared.items() if t in present}
            | {t: None for t in sorted(present - declared.keys())})


def plot_balance(table: Table, path: Path) -> Path | None:
    """One panel per task: for each distilled variant, each term's mean share of the gradient reaching the
    student's backbone (over its seeds' epochs), stacked to 1; None where no run recorded the shares."""
    panels = [(task, variants) for task in table.tasks
              if (variants := {v: shares for v in table.variants if (shares := mean_shares(table.cells[(v, task)].runs))})]
    if not panels:
        return None
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.6 * rows + 0.8), squeeze=False)
    for ax, (task, variants) in zip(axes.flat, panels):
        names = list(variants)
        bottom = np.zeros(len(names))
        for term, color in balance_terms(list(variants.values())).items():
            values = np.array([variants[v].get(term, 0.0) for v in names])
            ax.bar(names, values, bottom=bottom, color=color, label=term)
            bottom += values
        ax.axhline(0.8, color="black", linewidth=0.8, linestyle="--")
        ax.set_ylim(0, 1)
        ax.set_title(task, fontsize=10)
        ax.set_ylabel("share of the gradient at h_s")
        ax.tick_params(axis="x", labelsize=7, rotation=20)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    handles = _unique_legend(axes)
    fig.suptitle(f"{table.student}: what moves the backbone\n(mean share over epochs and seeds; dashed: 0.8)", fontsize=10)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=8)
    fig.tight_layout(rect=(0, 0.1 if rows == 1 else 0.05, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def mean_shares(runs) -> dict[str, float]:
    epochs = [e.balance for run in runs for e in run.history if e.balance]
    terms = {term for shares in epochs for term in shares}
    return {term: float(np.mean([shares.get(term, 0.0) for shares in epochs])) for term in terms}


def _unique_legend(axes) -> dict:
    """label → handle over all panels, each variant once."""
    handles: dict = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    return handles
