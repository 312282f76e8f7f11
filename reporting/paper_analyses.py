"""`armada report --analysis`: the paper's analyses beyond the embedding views, each a section of
results.md and a CSV:

- auxiliary heads on dev (Table 10): O_aux_s (and the aligner's O_aux_ts) scored beside O_s (O_ts);
- silhouette by scenario (Table 13): scenario 1 = examples the distilled student gets right and the
  undistilled one wrong, scenario 2 the reverse; silhouette by gold label within each, in each
  student's embeddings;
- distances to class centroids (Table 14): per example, the cosine distance to its class centroid in
  the undistilled student's, the distilled student's and the TS Aligner's space;
- t-tests over per-example dev losses (Table 15): distilled against undistilled, and a trained
  aligner against a frozen one where the runs hold that ablation;
- and, from armada.reporting.sweeps, the ANOVA over α/β/γ/manifold (Figures 3, 5, 6) and the teacher-noise
  sensitivity (Figure 11).

Models are analysed one seed per variant, the lowest one it shares with undistilled; the formulas
are in armada.reporting.paper_measures.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Mapping

import numpy as np

from armada.config import FileTask
from armada.errors import ArmadaError
from armada.reporting.analysis import silhouette
from armada.reporting.dev_predictions import DevPredictions, Pair, first_runs, paired_runs
from armada.eval.evaluate import RunPredictions
from armada.tasks import OUTPUT_KINDS
from armada.tasks.metrics import compute, primary
from armada.reporting.paper_measures import (SCENARIO_DISTILLED_WINS, SCENARIO_UNDISTILLED_WINS, centroid_distances,
                                        centroid_separation, distance_reduction, loss_t_test, scenarios, task_losses)
from armada.reporting.sweeps import anova_section, sensitivity_section
from armada.reporting.tables import Table
from armada.reporting.teachers import frozen_counterparts
from armada.tasks import get_task

CLASS_KINDS = ("classification", "multiple_choice")     # scenarios and centroids need right/wrong and classes
SCENARIOS = {SCENARIO_DISTILLED_WINS: "1 (distilled right, undistilled wrong)",
             SCENARIO_UNDISTILLED_WINS: "2 (undistilled right, distilled wrong)"}
EXAMPLES_SHOWN = 2                                      # per scenario, as Table 14 shows two


def paper_sections(tables: list[Table], out: Path, predictions: DevPredictions,
                   file_tasks: Mapping[str, FileTask] | None = None) -> tuple[list[str], list[Path], list[Path]]:
    """The markdown sections, their CSVs and figures."""
    kinds, notes = _task_kinds(tables, file_tasks)
    sections, csvs = [], []
    for build in (_aux_section, _scenario_section, _centroid_section, _loss_section):
        section, paths = build(tables, kinds, predictions, out)
        sections.append(section)
        csvs += paths
    anova, anova_csvs, figures = anova_section(tables, out)
    sensitivity, sensitivity_csvs = sensitivity_section(tables, out)
    sections += [anova] + ([sensitivity] if sensitivity else [])
    if notes:
        sections[0] += "\n" + "\n".join(notes) + "\n"
    failures = predictions.failures()
    if failures:
        sections.append("\n".join(["## What the analyses could not load", "", "| model | why |", "| --- | --- |",
                                   *(f"| {who} | {why.replace('|', '/')} |" for who, why in failures.items()), ""]))
    return sections, csvs + anova_csvs + sensitivity_csvs, figures


def _task_kinds(tables: list[Table], file_tasks) -> tuple[dict[str, str], list[str]]:
    kinds, notes = {}, []
    for task in sorted({t for table in tables for t in table.tasks}):
        try:
            kinds[task] = get_task(task, file_tasks).kind
        except ArmadaError as e:
            notes.append(f"- {task}: not analysed: {e}")
    return kinds, notes


def _score(predicted: RunPredictions) -> float:
    """The task's primary dev score ×100."""
    metric = predicted.task.metric
    return 100 * compute(metric, predicted.predictions, predicted.split.labels)[primary(metric)]


# --- Table 10: auxiliary heads ------------------------------------------------------------------

def _aux_section(tables, kinds, predictions: DevPredictions, out: Path) -> tuple[str, list[Path]]:
    rows, skipped = [], []
    for table in tables:
        for task in table.tasks:
            if kinds.get(task) not in OUTPUT_KINDS:
                continue
            for variant, run in first_runs(table, task).items():
                try:
                    main = _score(predictions.student(run.path))
                except ArmadaError:
                    skipped.append(f"{variant} on {task}")
                    continue
                distilled = not run.undistilled
                cells = [main, _head_score(predictions.student, run, "aux") if distilled else None]
                cells += [_head_score(predictions.aligner, run, head) if distilled else None for head in ("main", "aux")]
                rows.append([table.student, task, variant, run.seed, table.metrics[task], *cells])
    lines = ["## Auxiliary heads on dev (paper Table 10)", "",
             "Each variant's run of its lowest seed scored on the dev split by its output head O_s and by its auxiliary "
             "head O_aux_s (which reads the manifold projection p_s); the TS Aligner likewise by O_ts and O_aux_ts from "
             "the teacher's vectors (×100). \"–\": the undistilled student's auxiliary head was never trained, and it "
             "has no aligner; n/a: undefined (a constant prediction's correlation), or the model could not be loaded "
             "(the last section says why).", ""]
    lines += _table("| student | task | variant | seed | metric | student O_s | student O_aux_s | aligner O_ts | "
                    "aligner O_aux_ts |",
                    ["| " + " | ".join([*map(str, row[:5]), *(_cell(v, ".1f") for v in row[5:])]) + " |" for row in rows])
    lines.append("")
    for who, columns in (("students", (5, 6)), ("aligners", (7, 8))):
        lines += _spearman(rows, columns, who)
    lines += _skipped(skipped)
    path = _write_csv(out / "aux-heads.csv", ["student", "task", "variant", "seed", "metric", "student_main",
                                              "student_aux", "aligner_main", "aligner_aux"], rows)
    return "\n".join(lines) + "\n", [path]


def _head_score(predict, run, head: str) -> float:
    """The head's score; NaN where the model cannot be loaded (DevPredictions keeps why)."""
    try:
        return _score(predict(run.path, head))
    except ArmadaError:
        return math.nan


def _spearman(rows: list[list], columns: tuple[int, int], who: str) -> list[str]:
    """The paper: "a striking Spearman rank correlation between output head and auxiliary head performances
    of 0.99 for student models and 0.69 for teacher models", over the (variant, task) cells."""
    from scipy.stats import spearmanr

    pairs = [(row[columns[0]], row[columns[1]]) for row in rows
             if not any(v is None or math.isnan(v) for v in (row[columns[0]], row[columns[1]]))]
    if len(pairs) < 3:
        return []
    main, aux = zip(*pairs)
    rho = spearmanr(main, aux).statistic
    return [f"Spearman rank correlation of output and auxiliary head scores, {who}: {_cell(rho, '.2f')} "
            f"(over {len(pairs)} variant × task cells; the paper: 0.99 students, 0.69 aligners).", ""]


# --- Table 13: silhouette by scenario -------------------------------------------------------------

def _scenario_section(tables, kinds, predictions: DevPredictions, out: Path) -> tuple[str, list[Path]]:
    rows, notes, skipped = [], [], []
    for pair, before, after in _compared(tables, kinds, predictions, notes, skipped):
        labels = np.asarray(after.split.labels)
        scenario = scenarios(labels, after.predictions, before.predictions)
        for number in SCENARIOS:
            chosen = scenario == number
            rows.append([pair.run.student, pair.task, pair.variant, pair.seed, number, int(chosen.sum()),
                         silhouette(before.embeddings[chosen], labels[chosen]),
                         silhouette(after.embeddings[chosen], labels[chosen])])
    lines = ["## Silhouette by scenario (paper Table 13)", "",
             "The paper's error analysis: \"instances where ARMADA beats the undistilled models (we denote as 'scenario "
             "1') and vice versa (denoted as 'scenario 2')\", and the silhouette score of each student's dev embeddings "
             "within each scenario. Scenario 1: the distilled student right, the undistilled one wrong; scenario 2 the "
             "reverse (examples both get right, or both wrong, are in neither). Silhouette (Euclidean) by gold label, "
             "as \"similar instances with similar target outputs\"; n/a where a scenario holds fewer than two classes.", "",
             "Read with care: the comparison is circular. Scenario 1 is chosen by the distilled student being right, and a "
             "classifier on an embedding is right where the example sits among its own class, so the distilled "
             "student's silhouette there is higher by construction, and the undistilled one's in scenario 2 by the same "
             "token; the two columns of one scenario do not compare the students on equal terms. The paper reads the "
             "difference as ARMADA's effect; it is what the selection of the examples makes it.", ""]
    lines += _table("| student | task | variant | seed | scenario | examples | silhouette undistilled | silhouette distilled |",
                    [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {SCENARIOS[r[4]]} | {r[5]} | {_cell(r[6], '.3f')} | "
                     f"{_cell(r[7], '.3f')} |" for r in rows])
    lines += [""] + [f"- {note}" for note in dict.fromkeys(notes)] + _skipped(skipped)
    path = _write_csv(out / "scenario-silhouette.csv", ["student", "task", "variant", "seed", "scenario", "examples",
                                                        "silhouette_undistilled", "silhouette_distilled"], rows)
    return "\n".join(lines) + "\n", [path]


def _compared(tables, kinds, predictions: DevPredictions, notes: list[str], skipped: list[str], with_classes: bool = True):
    """(pair, undistilled predictions, distilled predictions) for every pair both of whose students predict;
    the others named in `skipped`."""
    for table in tables:
        for task in table.tasks:
            if kinds.get(task) not in (CLASS_KINDS if with_classes else OUTPUT_KINDS):
                if task in kinds and kinds[task] in OUTPUT_KINDS:
                    notes.append(f"{task}: not analysed: a {kinds[task]} task has no classes and no right or wrong")
                continue
            pairs, unpaired = paired_runs(table, task)
            notes += unpaired
            for pair in pairs:
                try:
                    yield pair, predictions.student(pair.baseline.path), predictions.student(pair.run.path)
                except ArmadaError:
                    skipped.append(f"{pair.variant} on {task}")


# --- Table 14: distances to class centroids -------------------------------------------------------

def _centroid_section(tables, kinds, predictions: DevPredictions, out: Path) -> tuple[str, list[Path]]:
    summary, separation, examples, shown, notes, skipped = [], [], [], [], [], []
    for pair, before, after in _compared(tables, kinds, predictions, notes, skipped):
        labels = np.asarray(after.split.labels)
        scenario = scenarios(labels, after.predictions, before.predictions)
        d_before, d_after = centroid_distances(before.embeddings, labels), centroid_distances(after.embeddings, labels)
        try:
            aligner = predictions.aligner(pair.run.path).embeddings
            d_aligner, aligner_separation = centroid_distances(aligner, labels), centroid_separation(aligner, labels)
        except ArmadaError:           # its cache is gone or changed: n/a, the last section says why
            d_aligner, aligner_separation = np.full(len(labels), math.nan), math.nan
        head = [pair.run.student, pair.task, pair.variant, pair.seed]
        for name, chosen in (("all", np.ones(len(labels), bool)), *((SCENARIOS[n], scenario == n) for n in SCENARIOS)):
            if chosen.any():
                b, a = float(d_before[chosen].mean()), float(d_after[chosen].mean())
                summary.append([*head, name, int(chosen.sum()), b, a, distance_reduction(b, a),
                                float(d_aligner[chosen].mean())])
        separation.append([*head, centroid_separation(before.embeddings, labels),
                           centroid_separation(after.embeddings, labels), aligner_separation])
        for i, example in enumerate(after.split.examples):
            examples.append([*head, example.id, int(labels[i]), int(before.predictions[i]), int(after.predictions[i]),
                             int(scenario[i]), d_before[i], d_after[i], distance_reduction(d_before[i], d_after[i]),
                             d_aligner[i]])
        shown += _largest_reductions(pair, after, scenario, d_before, d_after)
    lines = ["## Distances to class centroids (paper Table 14)", "",
             "The paper: \"Cosine distance from the cluster centroid to the embeddings obtained by BERT-base model before "
             "and after distilled with ARMADA\". Per dev example, 1 − cos(x, μ_y), μ_y the mean embedding of its gold "
             "class, in each model's own space: the undistilled student's and the distilled student's pooled "
             "embeddings, and the TS Aligner's manifold projection p_ts (from the teacher's vectors). Means per scenario "
             "(as in Table 13); reduction = 100·(undistilled − distilled)/undistilled, Table 14's \"% Change\". Every "
             "example is in centroid-distances.csv.", ""]
    lines += _table("| student | task | variant | seed | examples | n | undistilled | distilled | reduction % | aligner |",
                    ["| " + " | ".join([*map(str, r[:6]), _cell(r[6], ".4g"), _cell(r[7], ".4g"), _cell(r[8], ".1f"),
                                        _cell(r[9], ".4g")]) + " |" for r in summary])
    if separation:
        lines += ["", "Between the class centroids (mean cosine distance over pairs of classes: how far apart the "
                      "classes sit):", ""]
        lines += _table("| student | task | variant | seed | undistilled | distilled | aligner |",
                        ["| " + " | ".join([*map(str, r[:4]), *(_cell(v, ".4g") for v in r[4:])]) + " |" for r in separation])
    if shown:
        lines += ["", f"The {EXAMPLES_SHOWN} examples of each scenario whose distance fell most (Table 14's selection):", ""]
        lines += _table("| task | variant | scenario | example | text | gold | distilled predicts | undistilled | "
                        "distilled (reduction %) |", shown)
    lines += [""] + [f"- {note}" for note in dict.fromkeys(notes)] + _skipped(skipped)
    head = ["student", "task", "variant", "seed"]
    paths = [_write_csv(out / "centroid-distances.csv",
                        [*head, "example", "gold", "prediction_undistilled", "prediction_distilled", "scenario",
                         "distance_undistilled", "distance_distilled", "reduction_pct", "distance_aligner"], examples),
             _write_csv(out / "centroid-distances-summary.csv",
                        [*head, "examples", "n", "undistilled", "distilled", "reduction_pct", "aligner"], summary),
             _write_csv(out / "centroid-separation.csv", [*head, "undistilled", "distilled", "aligner"], separation)]
    return "\n".join(lines) + "\n", paths


def _largest_reductions(pair: Pair, after: RunPredictions, scenario, d_before, d_after) -> list[str]:
    rows = []
    for number in SCENARIOS:
        index = np.flatnonzero(scenario == number)
        for i in index[np.argsort(d_after[index] - d_before[index], kind="stable")][:EXAMPLES_SHOWN]:
            example = after.split.examples[i]
            text = " / ".join(" ".join(part) for part in example.inputs)
            text = (text[:77] + "…" if len(text) > 78 else text).replace("|", "\\|").replace("\n", " ")
            rows.append(f"| {pair.task} | {pair.variant} | {number} | {example.id} | {text} | {example.label} | "
                        f"{after.predictions[i]} | {d_before[i]:.4g} | {d_after[i]:.4g} "
                        f"({_cell(distance_reduction(d_before[i], d_after[i]), '.0f')}%) |")
    return rows


# --- Table 15: t-tests over per-example losses ---------------------------------------------------

def _loss_section(tables, kinds, predictions: DevPredictions, out: Path) -> tuple[str, list[Path]]:
    rows, notes, skipped = [], [], []
    for pair, before, after in _compared(tables, kinds, predictions, notes, skipped, with_classes=False):
        rows.append(_loss_row(pair.run.student, pair.task, pair.variant, pair.baseline.variant, pair.seed, after, before))
    for table in tables:
        for task in table.tasks:
            if kinds.get(task) not in OUTPUT_KINDS:
                continue
            for trained, frozen in frozen_counterparts(table, task):
                seeds = sorted({r.seed for r in table.cells[(trained, task)].runs}
                               & {r.seed for r in table.cells[(frozen, task)].runs})
                if not seeds:
                    notes.append(f"{table.student} {trained} and {frozen} on {task}: no seed finished by both: not compared")
                    continue
                with_run = next(r for r in table.cells[(trained, task)].runs if r.seed == seeds[0])
                without_run = next(r for r in table.cells[(frozen, task)].runs if r.seed == seeds[0])
                try:
                    rows.append(_loss_row(table.student, task, trained, frozen, seeds[0],
                                          predictions.student(with_run.path), predictions.student(without_run.path)))
                except ArmadaError:
                    skipped.append(f"{trained} against {frozen} on {task}")
    lines = ["## t-tests over per-example dev losses (paper Table 15)", "",
             "The paper: \"T-statistic (p-value) between student training loss distributions without and with TS "
             "Aligner training. A positive t-statistic indicates that the expected student loss without a trained TS "
             "Aligner is higher\". Here the task loss L_T(Y, o_s) of each dev example (cross-entropy; squared error for "
             "regression), of a student with the distillation (\"with\") and of one without it (\"without\": the "
             "undistilled student, and the same settings with a frozen random aligner where the runs hold that "
             "ablation), on the same examples: a paired t-test of L_without − L_with, two-sided (the paper names no "
             "test; its p-values are two-sided ones). Dev rather than training losses: the question is what the "
             "distillation leaves the student able to do on unseen examples.", ""]
    lines += _table("| student | task | with | without | seed | examples | mean loss without | mean loss with | t | p |",
                    [f"| {' | '.join(map(str, r[:5]))} | {r[-1].n} | {r[-1].mean_without:.4f} | {r[-1].mean_with:.4f} | "
                     f"{f'n/a: {r[-1].reason}' if r[-1].reason else f'{r[-1].t:.2f}'} | {_p(r[-1].p)} |" for r in rows])
    lines += [""] + [f"- {note}" for note in dict.fromkeys(notes)] + _skipped(skipped)
    path = _write_csv(out / "loss-t-tests.csv", ["student", "task", "with", "without", "seed", "examples",
                                                 "mean_loss_without", "mean_loss_with", "t", "p"],
                      [[*r[:5], r[-1].n, r[-1].mean_without, r[-1].mean_with, r[-1].t, r[-1].p] for r in rows])
    return "\n".join(lines) + "\n", [path]


def _loss_row(student: str, task: str, with_variant: str, without_variant: str, seed: int, with_: RunPredictions,
              without: RunPredictions) -> list:
    labels = np.asarray(with_.split.labels)
    kind = with_.task.kind
    test = loss_t_test(task_losses(kind, without.logits, labels), task_losses(kind, with_.logits, labels))
    return [student, task, with_variant, without_variant, seed, test]


# --- formatting ----------------------------------------------------------------------------------

def _table(header: str, rows: list[str]) -> list[str]:
    """A markdown table under `header` ("| a | b |"), or a line saying there is nothing to show."""
    if not rows:
        return ["Nothing analysed here."]
    return [header, "| " + " | ".join(["---"] * (header.count("|") - 1)) + " |", *rows]


def _skipped(skipped: list[str]) -> list[str]:
    if not skipped:
        return []
    return [f"Not analysed, a model could not be loaded (the last section says why): {', '.join(skipped)}.", ""]


def _cell(value: float | None, spec: str) -> str:
    return "–" if value is None else "n/a" if math.isnan(value) else format(value, spec)


def _p(p: float) -> str:
    return "n/a" if math.isnan(p) else "< 0.001" if p < 0.001 else f"{p:.3f}"


def _write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    def text(value):
        if isinstance(value, (float, np.floating)):
            return "" if math.isnan(value) else f"{value:.6g}"
        return "" if value is None else value

    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([[text(v) for v in row] for row in rows])
    return path
