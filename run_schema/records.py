"""The records a run folder holds, typed: what a run is (run.json), each epoch (a line of metrics.jsonl),
and its evaluations (eval/*.json), with their JSON forms.

Readers are lenient where old run folders differ (fields added since default) and strict where a
record cannot be understood: `UnreadableRecord` says which record and what is wrong with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from armada.errors import ArmadaError


class UnreadableRecord(ArmadaError):
    """A record of a run folder that cannot be read; the message names the file and the fault."""


Scores = Mapping[str, float | None]     # metric name → score as a fraction; None where undefined


@dataclass(frozen=True)
class RunRecord:
    """run.json: what the run is and how it ended; written when training starts and when it finishes."""

    task: str
    student: str
    seed: int
    metric: str                         # the dev score the best epoch is chosen by ("" where there is none)
    status: str                         # "running", "finished", or where it stopped: "failed", "interrupted"
    undistilled: bool | None = None     # None: not recorded (the first run folders)
    objective: str = "task"             # which training objective made it (armada.distill.objective)
    variant: str | None = None          # None in run folders made before variants were recorded
    best_epoch: int | None = None
    best_dev: float | None = None
    epochs: int | None = None
    seconds: float | None = None
    processes: int | None = None
    cache: Mapping[str, Any] | None = None      # the teacher cache's provenance; None for the baseline
    versions: Mapping[str, str] = field(default_factory=dict)
    steps_per_process: tuple[int, ...] | None = None    # gathered when the run finishes
    details: Mapping[str, Any] = field(default_factory=dict)   # what the objective adds (e.g. lm: prompt_style)
    warnings: tuple[str, ...] | None = None     # what training ended by warning about; None: not checked

    REQUIRED = ("task", "student", "seed", "metric", "status")

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    def to_json(self) -> dict[str, Any]:
        record = {"task": self.task, "student": self.student, "undistilled": self.undistilled, "objective": self.objective}
        if self.variant:
            record["variant"] = self.variant
        record.update({"seed": self.seed, "metric": self.metric, "best_epoch": self.best_epoch, "best_dev": self.best_dev,
                       "epochs": self.epochs, "seconds": self.seconds, "processes": self.processes, "cache": self.cache,
                       "versions": dict(self.versions), **self.details})
        if self.steps_per_process is not None:
            record["steps_per_process"] = list(self.steps_per_process)
        record["status"] = self.status
        if self.warnings is not None:
            record["warnings"] = list(self.warnings)
        return record

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "RunRecord":
        for key in cls.REQUIRED:
            if key not in data:
                raise UnreadableRecord(f"run.json has no {key!r}")
        known = {"task", "student", "seed", "metric", "status", "undistilled", "objective", "variant", "best_epoch",
                 "best_dev", "epochs", "seconds", "processes", "cache", "versions", "steps_per_process", "warnings"}
        steps, warnings = data.get("steps_per_process"), data.get("warnings")
        return cls(
            task=str(data["task"]), student=str(data["student"]), seed=int(data["seed"]), metric=str(data["metric"]),
            status=str(data["status"]), undistilled=None if "undistilled" not in data else bool(data["undistilled"]),
            objective=str(data.get("objective", "task")), variant=data.get("variant") or None,
            best_epoch=data.get("best_epoch"), best_dev=data.get("best_dev"), epochs=data.get("epochs"),
            seconds=data.get("seconds"), processes=data.get("processes"), cache=data.get("cache"),
            versions=data.get("versions") or {}, steps_per_process=None if steps is None else tuple(steps),
            details={k: v for k, v in data.items() if k not in known},
            warnings=None if warnings is None else tuple(str(w) for w in warnings),
        )


@dataclass(frozen=True)
class EpochRecord:
    """One line of metrics.jsonl: an epoch's training losses, dev scores, the loss balance and anything else
    the objective records per epoch (`diagnostics`, an open mapping: new fields need no change here)."""

    epoch: int
    train: Mapping[str, float] = field(default_factory=dict)    # loss name → its mean over the epoch's steps
    dev: Scores = field(default_factory=dict)
    aligner_dev: Scores | None = None   # the TS Aligner alone; None without one
    seconds: float | None = None
    balance: Mapping[str, float] | None = None  # each loss term's share of the student's gradient (distilled runs)
    diagnostics: Mapping[str, Any] = field(default_factory=dict)    # e.g. dev_predicted_classes

    def to_json(self) -> dict[str, Any]:
        line = {"epoch": self.epoch, "train": dict(self.train), "dev": dict(self.dev),
                "aligner_dev": None if self.aligner_dev is None else dict(self.aligner_dev), "seconds": self.seconds}
        if self.balance:
            line["balance"] = dict(self.balance)
        return {**line, **self.diagnostics}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "EpochRecord":
        """Raises KeyError, TypeError or ValueError where `data` is not an epoch record."""
        known = {"epoch", "train", "dev", "aligner_dev", "seconds", "balance"}
        balance = {str(k): float(v) for k, v in data["balance"].items()} if data.get("balance") else None
        return cls(epoch=int(data["epoch"]), train=data.get("train") or {}, dev=_scores(data.get("dev")),
                   aligner_dev=_scores(data.get("aligner_dev")) if data.get("aligner_dev") is not None else None,
                   seconds=data.get("seconds"), balance=balance,
                   diagnostics={k: v for k, v in data.items() if k not in known})


def _scores(scores) -> dict[str, float | None]:
    return {str(k): None if v is None else float(v) for k, v in (scores or {}).items()}


@dataclass(frozen=True)
class ScoreRecord:
    """eval/<split>[-aligner].json: a run's student (or its TS Aligner alone) scored on a split by its outputs."""

    run: str
    task: str
    split: str
    scorer: str                         # "student" or "aligner"
    data: str                           # where the split was read from
    examples: int
    metric: str
    scores: Scores | None               # None for an unlabeled split
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run, "task": self.task, "split": self.split, "scorer": self.scorer, "data": self.data,
                "examples": self.examples, "metric": self.metric, "scores": self.scores, "seconds": self.seconds}


@dataclass(frozen=True)
class GenerationRecord:
    """eval/generation-<task>-<split>.json: a generative run's saved student scored on what it writes."""

    run: str
    task: str
    split: str
    metric: str                         # the primary score's name
    scores: Mapping[str, float]
    examples: int
    trained_on: str = ""
    data: str = ""
    limit: int = 0
    decoding: Mapping[str, Any] = field(default_factory=dict)
    prompt_style: str = ""
    student: str = ""                   # "merged" or "adapter": what was loaded
    seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run, "task": self.task, "split": self.split, "trained_on": self.trained_on, "data": self.data,
                "examples": self.examples, "limit": self.limit, "metric": self.metric, "scores": dict(self.scores),
                "decoding": dict(self.decoding), "prompt_style": self.prompt_style, "student": self.student,
                "seconds": self.seconds}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], name: str) -> "GenerationRecord":
        try:
            return cls(run=str(data.get("run", "")), task=str(data["task"]), split=str(data["split"]),
                       metric=str(data["metric"]), scores={str(k): float(v) for k, v in data["scores"].items()},
                       examples=int(data["examples"]), trained_on=str(data.get("trained_on", "")),
                       data=str(data.get("data", "")), limit=int(data.get("limit", 0)), decoding=data.get("decoding", {}),
                       prompt_style=str(data.get("prompt_style", "")), student=str(data.get("student", "")),
                       seconds=data.get("seconds"))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise UnreadableRecord(f"eval/{name} is not a generative evaluation: {e!r}") from None
