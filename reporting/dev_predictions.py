"""Each run's predictions on its dev split, made once per report and shared by every analysis, and the
runs those analyses compare: each distilled variant beside the undistilled run of the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from armada.config import FileTask
from armada.errors import ArmadaError
from armada.eval.evaluate import RunPredictions, predict_aligner_alone, predict_student
from armada.reporting.runs import Run
from armada.reporting.tables import Table


class DevPredictions:
    """The student's (O_s or O_aux_s) and the TS Aligner's (O_ts or O_aux_ts, with p_ts) predictions on a
    run's dev split, each made once. A failure is kept as well, so every analysis that asks says the same
    reason without trying again."""

    def __init__(self, data_dir: str | None, file_tasks: Mapping[str, FileTask] | None):
        self._data_dir, self._file_tasks = data_dir, file_tasks
        self._made: dict[tuple, RunPredictions | ArmadaError] = {}

    def student(self, run_dir: Path, head: str = "main") -> RunPredictions:
        return self._get(("student", run_dir, head), predict_student, run_dir, head)

    def aligner(self, run_dir: Path, head: str = "main") -> RunPredictions:
        return self._get(("aligner", run_dir, head), predict_aligner_alone, run_dir, head)

    def failures(self) -> dict[str, str]:
        """What could not be predicted and why: "student of RUN" or "aligner of RUN" → the reason."""
        failed = {}
        for (who, run_dir, _), made in self._made.items():
            if isinstance(made, ArmadaError):
                failed.setdefault(f"{who} of {run_dir}", str(made))
        return failed

    def _get(self, key: tuple, predict: Callable[..., RunPredictions], run_dir: Path, head: str) -> RunPredictions:
        if key not in self._made:
            try:
                self._made[key] = predict(run_dir, "validation", self._data_dir, self._file_tasks, head=head)
            except ArmadaError as e:
                self._made[key] = e
        made = self._made[key]
        if isinstance(made, ArmadaError):
            raise made
        return made


@dataclass(frozen=True)
class Pair:
    """A distilled variant's run and the undistilled run of the same seed (the lowest seed both finished:
    the two share data order and head initialisation)."""

    task: str
    variant: str
    seed: int
    run: Run
    baseline: Run


def first_runs(table: Table, task: str) -> dict[str, Run]:
    """Each variant's run of the lowest finished seed on `task`."""
    chosen = {}
    for variant in table.variants:
        runs = sorted(table.cells[(variant, task)].runs, key=lambda r: r.seed)
        if runs:
            chosen[variant] = runs[0]
    return chosen


def paired_runs(table: Table, task: str) -> tuple[list[Pair], list[str]]:
    """One Pair per distilled variant on `task`, and a note for each variant that shares no seed with undistilled."""
    if table.baseline is None:
        return [], []
    base = {r.seed: r for r in table.cells[(table.baseline, task)].runs}
    pairs, notes = [], []
    for variant in table.variants:
        if variant == table.baseline:
            continue
        runs = {r.seed: r for r in table.cells[(variant, task)].runs}
        common = sorted(set(runs) & set(base))
        if common:
            pairs.append(Pair(task, variant, common[0], runs[common[0]], base[common[0]]))
        elif runs and base:
            notes.append(f"{table.student} {variant} on {task}: no seed finished by both it and {table.baseline} "
                         f"(seeds {sorted(runs)} against {sorted(base)}): not compared")
    return pairs, notes
