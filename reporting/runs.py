"""Run folders as reports see them (read through armada.run_schema): which task, student, variant and
seed a run is, and its dev scores epoch by epoch.

A folder that cannot be read as a finished run is kept as a `BrokenRun` with the reason, so that a
report can list it instead of crashing or quietly leaving it out.

A generative run (`objective = "lm"`) has a dev LM loss per epoch (none where its task has no
validation split) and is scored by `armada eval` on generated text: its `evaluations` are those
scores, each the saved student on one task and split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from armada.run_schema import GenerationRecord, RunFolder, UnreadableRecord

SELECTIONS = ("best", "last")   # best epoch on dev (the paper's choice) and the last epoch


@dataclass(frozen=True)
class EpochScores:
    epoch: int
    dev: Mapping[str, float]    # metric name → score as a fraction
    aligner_dev: Mapping[str, float] | None = None   # the TS Aligner alone, for ARMADA runs
    balance: Mapping[str, float] | None = None       # each term's share of the student's gradient (distilled runs)


@dataclass(frozen=True)
class Run:
    path: Path
    task: str
    student: str
    variant: str
    undistilled: bool
    seed: int
    metric: str                 # the primary metric's name, e.g. "mcc"
    status: str
    best_epoch: int | None
    history: tuple[EpochScores, ...]
    seconds: float | None
    objective: str = "task"     # "lm": a generative student
    evaluations: tuple[GenerationRecord, ...] = ()
    warnings: tuple[str, ...] = ()  # what training ended by warning about (a swamping term, one-class predictions)
    aligner_best_epoch: int | None = None   # the aligner's own best epoch (aligner_kept = "own-best"); else the student's

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    def score(self, selection: str) -> float:
        """The primary dev score at the best epoch or the last one."""
        if selection == "last":
            return self.history[-1].dev[self.metric]
        return next(e.dev[self.metric] for e in self.history if e.epoch == self.best_epoch)

    def aligner_score(self) -> float | None:
        """The TS Aligner's primary dev score at the epoch its saved aligner is from: its own best one where the run
        kept that (aligner_kept = "own-best"), else the student's best."""
        kept = self.aligner_best_epoch or self.best_epoch
        epoch = next((e for e in self.history if e.epoch == kept), None)
        return None if epoch is None or not epoch.aligner_dev else epoch.aligner_dev.get(self.metric)

    def curve(self) -> list[tuple[int, float]]:
        return [(e.epoch, e.dev[self.metric]) for e in self.history if self.metric in e.dev]


@dataclass(frozen=True)
class BrokenRun:
    path: Path
    reason: str


def load_run(folder: RunFolder) -> Run | BrokenRun:
    try:
        stored = folder.read_run()
    except UnreadableRecord as e:
        return BrokenRun(folder.path, str(e))
    record = stored.record
    return Run(
        path=folder.path,
        task=record.task,
        student=record.student,
        variant=stored.variant,
        undistilled=bool(record.undistilled),
        seed=record.seed,
        metric=record.metric,
        status=record.status,
        best_epoch=record.best_epoch,
        history=tuple(EpochScores(e.epoch, _scores(e.dev), _scores(e.aligner_dev) or None, e.balance)
                      for e in stored.epochs),
        seconds=record.seconds,
        objective=record.objective,
        evaluations=stored.generations,
        warnings=record.warnings or (),
        aligner_best_epoch=(record.details or {}).get("aligner_best_epoch"),
    )


def _scores(scores) -> dict[str, float]:
    # None is how a record spells an undefined score (Pearson of a constant prediction)
    return {k: float("nan") if v is None else v for k, v in (scores or {}).items()}
