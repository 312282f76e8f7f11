"""The records a run folder holds, typed: what a run is (run.json), each epoch (a line of metrics.jsonl),
and its evaluations (eval/*.json). Each is a frozen dataclass whose JSON form is its fields, in their
order (`record_json`, `record_from_json`): a field's metadata says where it differs: `omit` (left out
when the test holds, e.g. None), `read` (how a stored value becomes the field's, e.g. a list to a
tuple), `absent` (what a required field reads as in records written before it) and `open` (the one
mapping whose keys sit at the top level beside the fields and which takes every key that names no
field, so that new keys need no change here).

Readers are lenient where old run folders differ (fields added since default) and strict where a
record cannot be understood: `UnreadableRecord` says which record and what is wrong with it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from armada.errors import ArmadaError


class UnreadableRecord(ArmadaError):
    """A record of a run folder that cannot be read; the message names the file and the fault."""


Scores = Mapping[str, float | None]     # metric name → score as a fraction; None where undefined


def record_field(default: Any = dataclasses.MISSING, *, default_factory: Callable = dataclasses.MISSING,
                 omit: Callable[[Any], bool] | None = None, read: Callable[[Any], Any] | None = None,
                 absent: Any = dataclasses.MISSING, open: bool = False):
    """A record's field: `omit(value)` true leaves it out of the JSON form; `read` turns a stored value into the
    field's; `absent` is the value of a required field that an older record lacks; `open` marks the mapping of
    further top-level keys."""
    return field(default=default, default_factory=default_factory,
                 metadata={"omit": omit, "read": read, "absent": absent, "open": open})


def record_json(record) -> dict[str, Any]:
    """The JSON form of a record: its fields in order, an open mapping's keys in its place."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if f.metadata.get("open"):
            out.update(value)
        elif not (f.metadata.get("omit") and f.metadata["omit"](value)):
            out[f.name] = _plain(value)
    return out


def record_from_json(cls, data: Mapping[str, Any], name: str, what: str):
    """Record `cls` from its JSON form `data` (the file or line `name`, which holds `what`); missing fields take
    their defaults. UnreadableRecord where a required field is missing or a value cannot be read."""
    if not isinstance(data, Mapping):
        raise UnreadableRecord(f"{name}: not {what}: {type(data).__name__}, not an object")
    fields = dataclasses.fields(cls)
    values: dict[str, Any] = {}
    for f in fields:
        if f.metadata.get("open"):
            values[f.name] = {k: v for k, v in data.items() if k not in {g.name for g in fields}}
        elif f.name in data:
            read = f.metadata.get("read")
            try:
                values[f.name] = read(data[f.name]) if read else data[f.name]
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                raise UnreadableRecord(f"{name}: not {what}: {f.name} = {data[f.name]!r} ({e})") from None
        elif f.metadata.get("absent", dataclasses.MISSING) is not dataclasses.MISSING:
            values[f.name] = f.metadata["absent"]
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UnreadableRecord(f"{name} has no {f.name!r}: it is not {what}")
    return cls(**values)


def _plain(value):
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _is_none(value) -> bool:
    return value is None


def _tuple_or_none(read: Callable = lambda v: v) -> Callable:
    return lambda values: None if values is None else tuple(read(v) for v in values)


def _scores(scores) -> dict[str, float | None]:
    return {str(k): None if v is None else float(v) for k, v in (scores or {}).items()}


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """run.json: what the run is and how it ended; written when training starts and when it finishes (its keys in
    this order, so that a reader's eye finds what the run is first and how it ended last)."""

    task: str = record_field(read=str)
    student: str = record_field(read=str)
    undistilled: bool | None = record_field(None, read=bool)  # None: not recorded (the first run folders)
    objective: str = record_field("task", read=str)      # which training objective made it (armada.objectives)
    variant: str | None = record_field(None, omit=lambda v: not v, read=lambda v: v or None)  # None: before variants
    seed: int = record_field(read=int)
    metric: str = record_field(read=str)    # the dev score the best epoch is chosen by ("" where there is none)
    best_epoch: int | None = None
    best_dev: float | None = None
    epochs: int | None = None
    seconds: float | None = None
    processes: int | None = None
    cache: Mapping[str, Any] | None = None      # the teacher cache's provenance; None for the baseline
    versions: Mapping[str, str] = record_field(default_factory=dict, read=lambda v: v or {})
    details: Mapping[str, Any] = record_field(default_factory=dict, open=True)  # what the objective adds (lm: prompt_style)
    steps_per_process: tuple[int, ...] | None = record_field(None, omit=_is_none, read=_tuple_or_none())  # at the end
    status: str = record_field(read=str)    # "running", "finished", or where it stopped: "failed", "interrupted"
    warnings: tuple[str, ...] | None = record_field(None, omit=_is_none, read=_tuple_or_none(str))  # None: not checked

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    def to_json(self) -> dict[str, Any]:
        return record_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "RunRecord":
        return record_from_json(cls, data, "run.json", "a run record")


@dataclass(frozen=True)
class EpochRecord:
    """One line of metrics.jsonl: an epoch's training losses, dev scores, the loss balance and anything else
    the objective records per epoch (`diagnostics`, an open mapping: new fields need no change here)."""

    epoch: int = record_field(read=int)
    train: Mapping[str, float] = record_field(default_factory=dict, read=lambda v: v or {})  # loss → mean over steps
    dev: Scores = record_field(default_factory=dict, read=_scores)
    aligner_dev: Scores | None = record_field(None, read=lambda v: None if v is None else _scores(v))  # None: no aligner
    seconds: float | None = None
    balance: Mapping[str, float] | None = record_field(  # each loss term's share of the student's gradient (distilled)
        None, omit=lambda v: not v, read=lambda v: {str(k): float(x) for k, x in v.items()} if v else None)
    diagnostics: Mapping[str, Any] = record_field(default_factory=dict, open=True)    # e.g. dev_predicted_classes

    def to_json(self) -> dict[str, Any]:
        return record_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], name: str = "an epoch") -> "EpochRecord":
        """`name`: where it was read ("metrics.jsonl:3")."""
        return record_from_json(cls, data, name, "an epoch record")


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
        return record_json(self)


@dataclass(frozen=True)
class GenerationRecord:
    """eval/generation-<task>-<split>.json: a generative run's saved student scored on what it writes."""

    run: str = record_field(read=str, absent="")
    task: str = record_field(read=str)
    split: str = record_field(read=str)
    metric: str = record_field(read=str)    # the primary score's name
    scores: Mapping[str, float] = record_field(read=lambda v: {str(k): float(x) for k, x in v.items()})
    examples: int = record_field(read=int)
    trained_on: str = record_field("", read=str)
    data: str = record_field("", read=str)
    limit: int = record_field(0, read=int)
    decoding: Mapping[str, Any] = field(default_factory=dict)
    prompt_style: str = record_field("", read=str)
    student: str = record_field("", read=str)   # "merged" or "adapter": what was loaded
    seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        return record_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], name: str) -> "GenerationRecord":
        return record_from_json(cls, data, f"eval/{name}", "a generative evaluation")
