"""The report's teachers sections: per task and teacher, the linear probes (armada.eval.probe), and each of that
teacher's distilled variants' TS Aligner alone and Δ against undistilled, as the paper's Table 2 puts its
teachers side by side; then, seed by seed, what Δ against undistilled cannot say: one teacher against another
for the same variant, and a trained aligner against its control, the same settings with an aligner never trained
(`aligner = "frozen-random"`), which gives the student the losses without anything the teacher knows.

A run's teacher is the @TEACHER of its variant name (a pipeline of several teachers names its runs
VARIANT@TEACHER); with one teacher, the variant names none and the task's only probe says which it was.
"""

from __future__ import annotations

import math
from pathlib import Path

from armada.eval.probe import PROBE_FILE_PREFIX, ProbeResult
from armada.reporting.dev_predictions import first_runs
from armada.reporting.runs import SELECTIONS
from armada.reporting.stats import delta, paired_t_test, summarize
from armada.reporting.sweeps import distill_settings
from armada.reporting.tables import Table

PROBE_HEADINGS = ("teacher", "student", "shuffled")


def find_probes(paths: list[str | Path]) -> dict[tuple[str, str], ProbeResult]:
    """(task, teacher) → the probe written under any of `paths` (`armada run` writes them beside a task's runs)."""
    found = {}
    for path in paths:
        path = Path(path)
        files = [path] if path.is_file() else sorted(path.rglob(f"{PROBE_FILE_PREFIX}*.json")) if path.is_dir() else []
        for file in files:
            if file.name.startswith(PROBE_FILE_PREFIX):
                result = ProbeResult.read(file)
                found[(result.task, result.teacher)] = result
    return found


def split_variant(name: str) -> tuple[str, str]:
    """VARIANT@TEACHER → (VARIANT, TEACHER); a name without @ → (name, "")."""
    variant, _, teacher = name.partition("@")
    return variant, teacher


def render_teachers(table: Table, probes: dict[tuple[str, str], ProbeResult]) -> list[str]:
    """The section's markdown lines; none where the table's tasks have no probe and no variant names a teacher."""
    mine = {key: p for key, p in probes.items() if key[0] in table.tasks}
    if not mine and not any(split_variant(v)[1] for v in table.variants):
        return []
    rows = []
    for task in table.tasks:
        by_teacher: dict[str, list[str]] = {teacher: [] for (t, teacher) in sorted(mine) if t == task}
        only = next(iter(by_teacher)) if len(by_teacher) == 1 else ""
        for variant in table.variants:
            if variant == table.baseline:
                continue
            teacher = split_variant(variant)[1] or only
            by_teacher.setdefault(teacher, []).append(variant)
        for teacher, variants in by_teacher.items():
            probe = _probe_cells(mine.get((task, teacher)))
            for variant in variants or [None]:
                rows.append(_row([task, teacher or "–", *probe, *_run_cells(table, variant, task)]))
    header = ["task", "teacher", "probe: teacher", "probe: student", "probe: shuffled", "variant", "aligner alone",
              "Δ best epoch", "p"]
    return ["### Teachers: linear probes, TS Aligner alone, Δ", "",
            "Probes (`armada probe`): a linear probe on the teacher's cached vectors, on the student's frozen pooled "
            "embedding of the same rows, and on the teacher's vectors with the labels shuffled (a control at chance), "
            "fitted on the training rows and scored on the dev split ×100 with a 95 % bootstrap interval; \"at chance\" "
            "where the interval reaches chance. Aligner alone and Δ (against undistilled, best epoch) are over seeds "
            "as above; p is the one-sided paired t-test on this cell's seeds.", "",
            _row(header), _row(["---"] * len(header)), *rows, ""]


def frozen_counterparts(table: Table, task: str) -> list[tuple[str, str]]:
    """(trained variant, frozen-random variant) whose settings differ in the aligner alone (each read from its lowest
    finished seed): Figure 9's ablation, and a teacher's control."""
    settings = {}
    for variant, run in first_runs(table, task).items():
        found = distill_settings(run)
        if found and not found.get("undistilled"):
            settings[variant] = found
    rest = {v: {k: x for k, x in s.items() if k not in ("aligner", "seed")} for v, s in settings.items()}
    return [(trained, frozen) for frozen, s in settings.items() if s.get("aligner") == "frozen-random"
            for trained, t in settings.items()
            if t.get("aligner", "trained") == "trained" and rest[trained] == rest[frozen]]


def teacher_pairs(table: Table) -> list[tuple[str, str]]:
    """(VARIANT@B, VARIANT@A) for each variant run with several teachers: each later teacher against the first."""
    by_variant: dict[str, list[str]] = {}
    for name in table.variants:
        variant, teacher = split_variant(name)
        if teacher:
            by_variant.setdefault(variant, []).append(name)
    return [(other, names[0]) for names in by_variant.values() for other in names[1:]]


def render_comparisons(table: Table) -> list[str]:
    """Each teacher against the first for the same variant, and each trained aligner against its control, seed by
    seed per task; no lines where the table has neither."""
    header = ["task", "first − second", "seeds", "best epoch: difference", "p", "last epoch: difference", "p"]
    rows = []
    for task in table.tasks:
        for first, second in teacher_pairs(table) + frozen_counterparts(table, task):
            cells = [table.cells[(first, task)], table.cells[(second, task)]]
            common = set(cells[0].seeds) & set(cells[1].seeds)
            if not common:
                continue
            row = [task, f"{first} − {second}", str(len(common))]
            for selection in SELECTIONS:
                mine, theirs = (cell.scores.get(selection, {}) for cell in cells)
                if not set(mine) & set(theirs):       # every paired score undefined (a constant prediction's Pearson)
                    row += ["–", "–"]
                    continue
                difference = delta(mine, theirs)
                test = paired_t_test(mine, theirs, alternative="two-sided")
                row += [f"{100 * difference.mean:+.1f}" + ("" if math.isnan(difference.sd) else
                                                            f" ± {100 * difference.sd:.1f}"),
                        "–" if math.isnan(test.p) else f"{test.p:.3f}"]
            rows.append(_row(row))
    if not rows:
        return []
    return ["### Teachers and controls against each other, seed by seed", "",
            "Each row pairs two variants' runs of the same seed (the same data order and head initialisation) on a "
            "task: the difference ×100, the first named minus the second, mean ± sd over the seeds both finished, and "
            "a two-sided paired t-test (H1: they differ). Teachers: the same variant distilled from each teacher, "
            "against the first. Controls: a variant against the same settings with an aligner never trained "
            "(`aligner = \"frozen-random\"`), which gives the student the losses without anything the teacher knows.",
            "", _row(header), _row(["---"] * len(header)), *rows, ""]


def _probe_cells(result: ProbeResult | None) -> list[str]:
    if result is None:
        return ["–"] * len(PROBE_HEADINGS)
    cells = []
    for name in PROBE_HEADINGS:
        score = result.score(name)
        if score is None:
            cells.append("–")
            continue
        value, low, high = (score.dev, score.dev_low, score.dev_high) if score.dev is not None else (
            score.cv, score.cv_low, score.cv_high)
        text = f"{value:.1f} [{low:.1f}, {high:.1f}]"
        cells.append(text + (f", at chance ({result.chance:.1f})" if score.at_chance(result.chance) else ""))
    return cells


def _run_cells(table: Table, variant: str | None, task: str) -> list[str]:
    if variant is None:
        return ["no distilled runs", "–", "–", "–"]
    cell = table.cells[(variant, task)]
    aligner = [s for s in (r.aligner_score() for r in cell.runs) if s is not None and not math.isnan(s)]
    aligner_text = "–"
    if aligner:
        summary = summarize(aligner)
        aligner_text = f"{100 * summary.mean:.1f}" + ("" if math.isnan(summary.sd) else f" ± {100 * summary.sd:.1f}")
    delta, p = cell.delta.get("best"), "–"
    delta_text = "–"
    if delta is not None:
        delta_text = f"{100 * delta.mean:+.1f}" + ("" if math.isnan(delta.sd) else f" ± {100 * delta.sd:.1f}")
        baseline = table.cells.get((table.baseline, task))
        if baseline is not None:
            test = paired_t_test(cell.scores.get("best", {}), baseline.scores.get("best", {}))
            p = "–" if math.isnan(test.p) else f"{test.p:.3f}"
    return [split_variant(variant)[0], aligner_text, delta_text, p]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"
