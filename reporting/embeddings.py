"""`armada report --analysis`: the paper's §6 views for each student and task, one seed per variant
(the first finished one), side by side: students' pooled dev embeddings from `predict`, scored and
drawn by armada.reporting.analysis. Regression and generation tasks have no classes and no correctness:
said, and skipped.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from armada.config import FileTask
from armada.errors import ArmadaError
from armada.files import file_slug
from armada.reporting.analysis import EmbeddingScores, EmbeddingView, plot_tsne, score_view
from armada.eval.evaluate import RunPredictions
from armada.reporting.tables import Table
from armada.tasks import get_task

ANALYSED_KINDS = ("classification", "multiple_choice")
COLUMNS = ("student", "task", "variant", "seed", "examples", "accuracy", "silhouette_gold", "silhouette_correct",
           "purity", "majority_share")
HEADINGS = ("student", "task", "variant", "seed", "examples", "accuracy", "silhouette (gold label)", "silhouette (correctness)",
            "purity (KMeans K=2)", "majority share")


def analyse_tables(tables: list[Table], out: Path, predict_dev: Callable[[Path], RunPredictions],
                   file_tasks: Mapping[str, FileTask] | None = None) -> tuple[str, list[Path], Path]:
    """The markdown section, the t-SNE figures and analysis.csv for every table's tasks; `predict_dev`: a run
    folder's student on its dev split (armada.reporting.dev_predictions, shared with the other analyses)."""
    lines = [
        "## Embedding analysis (paper §6)",
        "",
        "Student dev embeddings (the pooled state the heads read), one seed per variant. Silhouette (Euclidean) by "
        "gold label and by correctness (prediction right or wrong); purity of KMeans (K=2) clusters against "
        "correctness, as the paper defines it. Purity is never below the majority share (the larger of the "
        "right and wrong fractions), printed beside it.",
        "",
    ]
    notes: list[str] = []
    figures: list[Path] = []
    rows: list[tuple[str, EmbeddingScores]] = []
    for table in tables:
        for task in table.tasks:
            try:
                kind = get_task(task, file_tasks).kind
            except ArmadaError as e:
                notes.append(f"- {task}: not analysed: {e}")
                continue
            if kind not in ANALYSED_KINDS:
                notes.append(f"- {table.student} on {task}: not analysed: a {kind} task has no classes and no correctness")
                continue
            views = []
            for variant in table.variants:
                runs = sorted(table.cells[(variant, task)].runs, key=lambda r: r.seed)
                if not runs:
                    continue
                run = runs[0]
                try:
                    predicted = predict_dev(run.path)
                except ArmadaError as e:
                    notes.append(f"- {table.student} {variant} on {task}: not analysed: {e}")
                    continue
                views.append(EmbeddingView(task, variant, run.seed, predicted.embeddings, np.asarray(predicted.split.labels),
                                           predicted.predictions, predicted.task.labels))
            if not views:
                continue
            scores = [score_view(view) for view in views]
            rows += [(table.student, s) for s in scores]
            figure = out / f"tsne-{file_slug(table.student)}-{file_slug(task)}.png"
            figures.append(plot_tsne(views, scores, figure))
    if rows:
        lines += ["| " + " | ".join(HEADINGS) + " |", "| " + " | ".join(["---"] * len(HEADINGS)) + " |"]
        lines += ["| " + " | ".join(_cells(student, s)) + " |" for student, s in rows]
        lines.append("")
    if notes:
        lines += notes + [""]
    lines += [f"![{f.stem}]({f.name})" for f in figures] + [""]
    table_csv = out / "analysis.csv"
    with table_csv.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows([_values(student, s) for student, s in rows])
    return "\n".join(lines), figures, table_csv


def _values(student: str, s: EmbeddingScores) -> list:
    return [student, s.task, s.variant, s.seed, s.n, *("" if math.isnan(v) else f"{v:.6g}" for v in
            (s.accuracy, s.silhouette_gold, s.silhouette_correct, s.purity, s.majority_share))]


def _cells(student: str, s: EmbeddingScores) -> list[str]:
    head = [student, s.task, s.variant, str(s.seed), str(s.n)]
    return head + ["n/a" if math.isnan(v) else f"{v:.3f}" for v in
                   (s.accuracy, s.silhouette_gold, s.silhouette_correct, s.purity, s.majority_share)]
