"""The manifest: what a cache holds and every setting that made it (the root group's attributes)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from armada.cache_schema.encoding import is_sha256_hex, strings_digest
from armada.errors import ArmadaError
from armada.tasks.model import OUTPUT_KINDS

# Version 2 added teacher logits (TeacherLogits). A cache without them is still written as version
# 1, byte for byte as before, so caches extracted earlier resume and compare equal; an older armada
# refuses a version 2 cache by its version instead of a puzzling config_hash mismatch.
SCHEMA_VERSIONS = (1, 2)
DTYPES = ("float16", "float32")
_SPLIT_NAME = re.compile(r"[A-Za-z0-9_-]+")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _plain(value: Any, what: str) -> Any:
    """`value` as plain JSON data (tuples become lists), so a manifest equals its own read-back."""
    try:
        return json.loads(canonical_json(value))
    except (TypeError, ValueError) as e:
        raise ArmadaError(f"{what} must be JSON data (strings, numbers, booleans, lists, tables): {e}") from None


def tool_version() -> str:
    return importlib.metadata.version("armada")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")



@dataclass(frozen=True)
class TeacherLogits:
    """A text teacher's outputs (a KD cache): every feature row is [pooled state | logits].

    features[:, :pooled_dim] is the pooled state its head reads, features[:, pooled_dim:] its
    logits: one per label (per choice for multiple choice, one for regression), in `labels` order.
    """

    task: str                               # the task the teacher was trained on
    kind: str                               # that task's kind: classification, regression or multiple_choice
    labels: tuple[str, ...]                 # what each logit means (class or choice names; () for regression)
    pooled_dim: int

    def __post_init__(self):
        object.__setattr__(self, "labels", tuple(self.labels))
        if self.kind not in OUTPUT_KINDS:
            raise ArmadaError(f"teacher logits: kind {self.kind!r} is not one of {list(OUTPUT_KINDS)}")
        if not isinstance(self.pooled_dim, int) or isinstance(self.pooled_dim, bool) or self.pooled_dim < 1:
            raise ArmadaError(f"teacher logits: the pooled state needs at least one column, not {self.pooled_dim!r}")
        if not all(isinstance(label, str) and label for label in self.labels) or len(set(self.labels)) != len(self.labels):
            raise ArmadaError(f"teacher logits: labels {list(self.labels)} must be distinct, non-empty names")
        if (self.kind == "regression") != (not self.labels):
            raise ArmadaError(f"teacher logits: a {self.kind} teacher has "
                              + ("no labels, one score" if self.kind == "regression" else "a label per logit")
                              + f"; got labels {list(self.labels)}")

    @property
    def width(self) -> int:
        return 1 if self.kind == "regression" else len(self.labels)

    @property
    def columns(self) -> dict[str, slice]:
        """Where each part sits in a feature row."""
        return {"pooled": slice(0, self.pooled_dim), "logits": slice(self.pooled_dim, self.pooled_dim + self.width)}

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "kind": self.kind, "labels": list(self.labels),
                "columns": {name: [part.start, part.stop] for name, part in self.columns.items()}}

    @classmethod
    def parse(cls, d: Mapping[str, Any], dim: int) -> "TeacherLogits":
        """From a manifest's teacher.logits, whose columns must tile the `dim` stored columns."""
        columns = _table(d["columns"])
        if set(columns) != {"pooled", "logits"}:
            raise ValueError(f"teacher logits columns are {sorted(columns)}, not pooled and logits")
        pooled, logits = ([_int(v) for v in columns[name]] for name in ("pooled", "logits"))
        labels = tuple(_str(label) for label in d["labels"])
        width = 1 if d["kind"] == "regression" else len(labels)
        if pooled[0] != 0 or logits[0] != pooled[1] or logits[1] != dim:
            raise ValueError(f"teacher logits columns pooled {pooled} and logits {logits} do not split the "
                             f"{dim} stored columns into [pooled state | logits]")
        if logits[1] - logits[0] != width:
            raise ValueError(f"teacher logits are {logits[1] - logits[0]} columns wide (columns {logits}), but the "
                             f"teacher's label set {list(labels)} needs {width}")
        return cls(_str(d["task"]), _str(d["kind"]), labels, pooled[1])


@dataclass(frozen=True)
class TeacherInfo:
    name: str
    kind: str
    dim: int
    provenance: Mapping[str, Any]           # model ids, revisions or weight hashes, output-changing settings
    logits: TeacherLogits | None = None     # a text teacher's; None for multimodal teachers (features only)

    def __post_init__(self):
        object.__setattr__(self, "provenance", _plain(dict(self.provenance), "teacher provenance"))
        if not isinstance(self.dim, int) or isinstance(self.dim, bool) or self.dim < 1:
            raise ArmadaError(f"teacher {self.name!r}: dim must be a positive integer, not {self.dim!r}")
        if self.logits is not None and self.logits.pooled_dim + self.logits.width != self.dim:
            raise ArmadaError(f"teacher {self.name!r}: a pooled state of {self.logits.pooled_dim} and "
                              f"{self.logits.width} logits are not its {self.dim} values per example")

    @classmethod
    def of(cls, teacher) -> "TeacherInfo":
        """From anything with the Teacher protocol (armada.extract.teacher); text teachers add `logits`."""
        return cls(teacher.name, teacher.kind, teacher.dim, teacher.provenance(), getattr(teacher, "logits", None))


@dataclass(frozen=True)
class Extraction:
    dtype: str                              # stored dtype: float16 or float32
    shard_rows: int                         # rows per shard: the unit of writing, resuming, verifying
    chunk_rows: int                         # rows per inner chunk: the unit of a random read (chunk_rows_for)
    teacher_template: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)  # any other setting that changes the features

    def __post_init__(self):
        object.__setattr__(self, "settings", _plain(dict(self.settings), "extraction settings"))
        if self.dtype not in DTYPES:
            raise ArmadaError(f"cache dtype must be one of {list(DTYPES)}, not {self.dtype!r}")
        for name in ("shard_rows", "chunk_rows"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ArmadaError(f"cache {name} must be a positive integer, not {value!r}")
        if self.shard_rows % self.chunk_rows:
            raise ArmadaError(f"cache chunk_rows ({self.chunk_rows}) must divide shard_rows ({self.shard_rows})")


def chunk_rows_for(shard_rows: int, dim: int, dtype: str) -> int:
    """Rows per inner chunk: the largest divisor of shard_rows whose chunk stays within 32 KiB.

    Read on demand, a random batch costs one inner chunk per row: at 32 KiB a 32-row batch is as
    quick as h5py's (bench/cache_io.py); bigger chunks mostly read bytes nobody asked for.
    """
    row_bytes = dim * (2 if dtype == "float16" else 4)
    limit = max(1, 32 * 1024 // row_bytes)
    return max(d for d in range(1, min(limit, shard_rows) + 1) if shard_rows % d == 0)


@dataclass(frozen=True)
class SplitInfo:
    rows: int
    fingerprint: str                        # armada.tasks.Split.fingerprint(): ids, teacher texts, labels
    ids_sha256: str                         # encoding.strings_digest of the split's example ids, in order
    limit: int = 0                          # the --limit the split was read with (0 = all rows)

    def __post_init__(self):
        if not isinstance(self.rows, int) or isinstance(self.rows, bool) or self.rows < 1:
            raise ArmadaError(f"a cached split must have at least one row, not {self.rows!r}")

    @classmethod
    def of(cls, split) -> "SplitInfo":
        """From an armada.tasks.Split."""
        return cls(len(split), split.fingerprint(), strings_digest(split.ids), split.limit)


@dataclass(frozen=True)
class DatasetInfo:
    task: str
    source: str                             # where the rows came from (Split.source)
    splits: Mapping[str, SplitInfo]

    def __post_init__(self):
        object.__setattr__(self, "splits", dict(self.splits))
        if not self.splits:
            raise ArmadaError("a cache needs at least one split")
        for name in self.splits:
            if not isinstance(name, str) or not _SPLIT_NAME.fullmatch(name):
                raise ArmadaError(f"split name {name!r} is not usable in a cache: use letters, digits, '_' and '-'")


@dataclass(frozen=True)
class Manifest:
    teacher: TeacherInfo
    extraction: Extraction
    dataset: DatasetInfo
    created: str = field(default_factory=_now)
    tool_version: str = field(default_factory=tool_version)

    @property
    def schema_version(self) -> int:
        """The oldest version that describes this cache (see SCHEMA_VERSIONS)."""
        return 2 if self.teacher.logits is not None else 1

    @property
    def settings(self) -> dict[str, Any]:
        """Everything that decides the cache's content: what config_hash covers."""
        teacher = {"name": self.teacher.name, "kind": self.teacher.kind, "dim": self.teacher.dim,
                   "provenance": self.teacher.provenance}
        if self.teacher.logits is not None:
            teacher["logits"] = self.teacher.logits.to_dict()
        return {
            "schema_version": self.schema_version,
            "teacher": teacher,
            "extraction": {"dtype": self.extraction.dtype, "shard_rows": self.extraction.shard_rows,
                           "chunk_rows": self.extraction.chunk_rows,
                           "teacher_template": self.extraction.teacher_template,
                           "settings": self.extraction.settings},
            # Not the source: where the rows were read from is no part of what they are (the
            # fingerprints are), so a cache resumes and shares across machines and folders.
            "dataset": {"task": self.dataset.task,
                        "splits": {name: {"rows": s.rows, "fingerprint": s.fingerprint, "ids_sha256": s.ids_sha256,
                                          "limit": s.limit}
                                   for name, s in self.dataset.splits.items()}},
        }

    @property
    def config_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.settings).encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        settings = self.settings
        settings["dataset"]["source"] = self.dataset.source
        return {**settings, "created": self.created, "tool_version": self.tool_version,
                "config_hash": self.config_hash}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "Manifest":
        """Parse and check a manifest read from `where` (untrusted: any JSON may arrive here)."""
        try:
            return _parse(data)
        except (KeyError, TypeError, ValueError, AttributeError, ArmadaError) as e:
            detail = f"missing {e}" if isinstance(e, KeyError) else str(e)
            raise ArmadaError(f"{where}: not a valid armada cache manifest ({detail})") from None


def _parse(d: Mapping[str, Any]) -> Manifest:
    version = d["schema_version"]
    if version not in SCHEMA_VERSIONS:
        raise ValueError(f"schema version {version!r}; this armada reads versions {', '.join(map(str, SCHEMA_VERSIONS))}: "
                         "update armada or re-extract the cache")
    t, x, ds = d["teacher"], d["extraction"], d["dataset"]
    splits = {}
    for name, s in ds["splits"].items():
        if not (isinstance(s["fingerprint"], str) and is_sha256_hex(s["ids_sha256"])):
            raise ValueError(f"split {name!r} has a malformed fingerprint or ids_sha256")
        splits[name] = SplitInfo(_int(s["rows"]), s["fingerprint"], s["ids_sha256"], _int(s["limit"]))
    dim = _int(t["dim"])
    logits = TeacherLogits.parse(_table(t["logits"]), dim) if "logits" in t else None
    manifest = Manifest(
        teacher=TeacherInfo(_str(t["name"]), _str(t["kind"]), dim, _table(t["provenance"]), logits),
        extraction=Extraction(_str(x["dtype"]), _int(x["shard_rows"]), _int(x["chunk_rows"]),
                              _str(x["teacher_template"]), _table(x["settings"])),
        dataset=DatasetInfo(_str(ds["task"]), _str(ds["source"]), splits),
        created=_str(d["created"]),
        tool_version=_str(d["tool_version"]),
    )
    if manifest.schema_version != version:
        raise ValueError(f"schema version {version} does not match its content: teacher logits need version 2, "
                         "features alone version 1")
    if d["config_hash"] != manifest.config_hash:
        raise ValueError("config_hash does not match its settings (the manifest was edited or damaged)")
    return manifest


def _int(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"{v!r} is not an integer")
    return v


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"{v!r} is not a string")
    return v


def _table(v: Any) -> dict:
    if not isinstance(v, dict):
        raise TypeError(f"{v!r} is not a table")
    return v


def manifest_diff(a: Manifest, b: Manifest) -> list[str]:
    """The settings that differ, one line each: "teacher.provenance.steps: 20 → 30"."""
    left, right = _flatten(a.settings), _flatten(b.settings)
    lines = []
    for key in sorted(left.keys() | right.keys()):
        if left.get(key, _MISSING) != right.get(key, _MISSING):
            lines.append(f"{key}: {_show(left.get(key, _MISSING))} → {_show(right.get(key, _MISSING))}")
    return lines


_MISSING = object()


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    return value if isinstance(value, str) and value else json.dumps(value, ensure_ascii=False)
