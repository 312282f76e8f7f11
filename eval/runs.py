"""Run folders as the distill stage writes them (runs/NAME/run.json, metrics.jsonl, config.toml), read
for reports: which task, student, variant and seed a run is, and its dev scores epoch by epoch.

A folder that cannot be read as a finished run is kept as a `BrokenRun` with the reason, so that a
report can list it instead of crashing or quietly leaving it out.

A generative run (`objective = "lm"`) has a dev LM loss per epoch (none where its task has no
validation split) and is scored by `armada eval` on generated text: its `evaluations` are the
RUN/eval/generation-*.json files, each the saved student on one task and split.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from armada.errors import ArmadaError

SELECTIONS = ("best", "last")   # best epoch on dev (the paper's choice) and the last epoch


@dataclass(frozen=True)
class EpochScores:
    epoch: int
    dev: Mapping[str, float]    # metric name → score as a fraction
    aligner_dev: Mapping[str, float] | None = None   # the TS Aligner alone, for ARMADA runs
    balance: Mapping[str, float] | None = None       # each term's share of the student's gradient (distilled runs)


@dataclass(frozen=True)
class Evaluation:
    """A generative run's saved student scored on one task and split (RUN/eval/generation-*.json)."""

    task: str
    split: str
    metric: str                 # the primary score's name
    scores: Mapping[str, float] # name → score as a fraction
    examples: int


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
    evaluations: tuple[Evaluation, ...] = ()
    warnings: tuple[str, ...] = ()  # what training ended by warning about (a swamping term, one-class predictions)

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    def score(self, selection: str) -> float:
        """The primary dev score at the best epoch or the last one."""
        if selection == "last":
            return self.history[-1].dev[self.metric]
        return next(e.dev[self.metric] for e in self.history if e.epoch == self.best_epoch)

    def aligner_score(self) -> float | None:
        """The TS Aligner's primary dev score at the student's best epoch (the aligner saved with it)."""
        epoch = next((e for e in self.history if e.epoch == self.best_epoch), None)
        return None if epoch is None or not epoch.aligner_dev else epoch.aligner_dev.get(self.metric)

    def curve(self) -> list[tuple[int, float]]:
        return [(e.epoch, e.dev[self.metric]) for e in self.history if self.metric in e.dev]


@dataclass(frozen=True)
class BrokenRun:
    path: Path
    reason: str


def find_run_dirs(paths: list[str | Path]) -> list[Path]:
    """Run folders named by `paths`: each a run folder, or a folder searched for them (run.json, or
    metrics.jsonl of a run that has not written run.json yet)."""
    found: list[Path] = []
    for given in paths:
        root = Path(given)
        if not root.exists():
            raise ArmadaError(f"{root}: no such run folder or folder of runs")
        if root.is_file():
            raise ArmadaError(f"{root}: is a file; give a run folder (with run.json) or a folder that holds run folders")
        before = len(found)
        for folder, subfolders, files in os.walk(root):
            if "run.json" in files or "metrics.jsonl" in files:
                found.append(Path(folder))
                subfolders.clear()      # a run's own folders (student/, checkpoints) hold no runs
            else:
                subfolders.sort()
        if len(found) == before:
            raise ArmadaError(f"{root}: no run folders (with run.json or metrics.jsonl) in it; give the folder `armada distill --out` wrote")
    return sorted(set(found))


def load_run(path: Path) -> Run | BrokenRun:
    try:
        return _load(path)
    except _Unreadable as e:
        return BrokenRun(path, str(e))


class _Unreadable(Exception):
    pass


def _load(path: Path) -> Run:
    info = _read_json(path / "run.json") if (path / "run.json").is_file() else None
    history = _read_history(path / "metrics.jsonl")
    if info is None:
        raise _Unreadable(f"no run.json yet: running, or stopped before the end ({len(history)} epoch(s) in metrics.jsonl)")
    for key in ("task", "student", "seed", "metric", "status"):
        if key not in info:
            raise _Unreadable(f"run.json has no {key!r}")
    undistilled = bool(info.get("undistilled", False))
    run = Run(
        path=path,
        task=str(info["task"]),
        student=str(info["student"]),
        variant=info.get("variant") or _variant_from_config(path, undistilled if "undistilled" in info else None),
        undistilled=undistilled,
        seed=int(info["seed"]),
        metric=str(info["metric"]),
        status=str(info["status"]),
        best_epoch=info.get("best_epoch"),
        history=history,
        seconds=info.get("seconds"),
        objective=str(info.get("objective", "task")),
        evaluations=_read_evaluations(path / "eval"),
        warnings=tuple(str(w) for w in info.get("warnings", ())),
    )
    if run.finished:
        _check_finished(run)
    return run


def _check_finished(run: Run) -> None:
    if not run.history:
        raise _Unreadable("finished, but metrics.jsonl is missing or empty")
    epochs = [e.epoch for e in run.history]
    if run.best_epoch not in epochs:
        raise _Unreadable(f"best_epoch {run.best_epoch} is not among the epochs of metrics.jsonl {epochs}")
    if run.objective == "lm" and not run.metric:
        return                  # no validation split: no dev score to check
    for selection in SELECTIONS:
        try:
            run.score(selection)
        except KeyError:
            raise _Unreadable(f"metrics.jsonl has no dev score {run.metric!r} at the {selection} epoch") from None


def _variant_from_config(path: Path, undistilled: bool | None) -> str:
    """Runs that do not name their variant: undistilled, or ARMADA named by its manifold loss."""
    if undistilled:
        return "undistilled"
    config_path = path / "config.toml"
    if not config_path.is_file():
        raise _Unreadable("run.json names no variant and there is no config.toml to tell it")
    try:
        config = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise _Unreadable(f"config.toml is not valid TOML: {e}") from None
    distill = config.get("distill", config)
    if undistilled is None and distill.get("undistilled"):
        return "undistilled"
    if not distill.get("manifold"):
        raise _Unreadable("run.json names no variant and config.toml has no distill.manifold")
    return f"armada-{distill['manifold']}"


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _Unreadable(f"{path.name} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise _Unreadable(f"{path.name} is not a JSON object")
    return data


def _read_evaluations(folder: Path) -> tuple[Evaluation, ...]:
    evaluations = []
    for path in sorted(folder.glob("generation-*.json")):
        data = _read_json(path)
        try:
            scores = {str(k): float(v) for k, v in data["scores"].items()}
            evaluations.append(Evaluation(str(data["task"]), str(data["split"]), str(data["metric"]), scores,
                                          int(data["examples"])))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise _Unreadable(f"eval/{path.name} is not a generative evaluation: {e!r}") from None
    return tuple(evaluations)


def _read_history(path: Path) -> tuple[EpochScores, ...]:
    if not path.is_file():
        return ()
    history = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            dev, aligner = (_scores(row.get(key)) for key in ("dev", "aligner_dev"))
            balance = {str(k): float(v) for k, v in row["balance"].items()} if row.get("balance") else None
            history.append(EpochScores(int(row["epoch"]), dev, aligner or None, balance))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise _Unreadable(f"metrics.jsonl line {number} is not an epoch record: {e}") from None
    return tuple(history)


def _scores(scores) -> dict[str, float]:
    # null is how JSON writers spell an undefined score (Pearson of a constant prediction)
    return {k: float("nan") if v is None else float(v) for k, v in (scores or {}).items()}
