"""A cache as a Hugging Face dataset: the folder's layout, its Parquet schema, and the checks that refuse one that
does not match.

    <export>/
      README.md                             dataset card: a YAML header `datasets` reads (configs, features, splits),
                                            and a body made from the manifest (hf_card.py)
      armada.json                           the cache's manifest exactly, the label column's meaning, the command
      data/<split>-NNNNN-of-MMMMM.parquet   per split, files of at most FILE_BYTES of vectors, row groups of at
                                            most GROUP_ROWS rows and GROUP_VALUES values, a page index and page
                                            checksums

Columns, in this order: `example_id` (string), `text_sha256` (string: the sha256 of the row's teacher text),
`label` (only when the export was given the task's labels: class or choice index, or the regression score; null
where the split has none), `vector` (a fixed-size list of the cache's own dtype, float16 or float32, `dim` long:
the stored values, bit for bit).

The card is for people and for `datasets`; armada.json is what armada trusts. Opening an export checks the card's
header and every file's schema against what armada.json implies, and names the first difference.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from armada.cache_schema.manifest import Manifest, canonical_json
from armada.errors import ArmadaError

CARD = "README.md"
INFO = "armada.json"
FORMAT = "armada-cache/hf"
VERSION = 1
ID, HASH, LABEL, VECTOR = "example_id", "text_sha256", "label", "vector"
FILE_BYTES = 500 * 10**6                    # at most this many bytes of vectors per file (the Hub's advice: < 5 GB)
GROUP_ROWS = 50_000                         # rows per row group at most: the dataset viewer reads one group at a time
# and values per group at most: pyarrow's writer holds ~18 bytes a value while it writes a group of fixed-size lists
# (levels and pages), so this bounds an export's memory whatever the cache's size or dim (bench/hf_export.py)
GROUP_VALUES = 2**23
_FILE_NAME = re.compile(r"(?P<split>[A-Za-z0-9_-]+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.parquet")


@dataclass(frozen=True)
class LabelColumn:
    """What the `label` column holds: the task's kind and, for classes and choices, their names (index = value)."""

    kind: str                               # classification, multiple_choice, regression or generation (choice index)
    names: tuple[str, ...] = ()

    def arrow_type(self):
        import pyarrow as pa

        return pa.float64() if self.kind == "regression" else pa.int64()

    def feature(self) -> dict[str, Any]:
        """The column as a `datasets` feature in a card's YAML."""
        if self.names:
            return {"name": LABEL, "dtype": {"class_label": {"names": {str(i): n for i, n in enumerate(self.names)}}}}
        return {"name": LABEL, "dtype": "float64" if self.kind == "regression" else "int64"}


@dataclass(frozen=True)
class ExportInfo:
    """armada.json: everything armada needs to read an export back, and the card is made from."""

    manifest: Manifest
    label: LabelColumn | None               # None: no label column (exported without the task's data, or it has none)
    group_rows: int                         # rows per row group (the last of a file may hold fewer)
    file_rows: int                          # rows per file (the last of a split may hold fewer), whole row groups
    command: str                            # what made the export

    def to_json(self) -> str:
        label = None if self.label is None else {"kind": self.label.kind, "names": list(self.label.names)}
        return json.dumps({"format": FORMAT, "version": VERSION, "manifest": self.manifest.to_dict(), "label": label,
                           "group_rows": self.group_rows, "file_rows": self.file_rows, "command": self.command}, indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def read(cls, folder: Path) -> "ExportInfo":
        where = folder / INFO
        try:
            data = json.loads(where.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ArmadaError(f"{folder} has no {INFO}: it is not a cache exported by `armada cache export --format hf` "
                              "(a dataset made otherwise has no manifest to check it against)") from None
        except (OSError, ValueError) as e:
            raise ArmadaError(f"{where} is not readable JSON: {e}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ArmadaError(f"{where} does not describe an armada cache export (format is not {FORMAT!r})")
        if data.get("version") != VERSION:
            raise ArmadaError(f"{where} is version {data.get('version')!r} of the export format; this armada reads "
                              f"version {VERSION}: update armada")
        manifest = Manifest.from_dict(data.get("manifest"), str(where))
        label = data.get("label")
        try:
            column = None if label is None else LabelColumn(str(label["kind"]), tuple(map(str, label["names"])))
            group_rows, file_rows = data["group_rows"], data["file_rows"]
            for value in (group_rows, file_rows):
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise ValueError(f"{value!r} is not a row count")
            return cls(manifest, column, group_rows, file_rows, str(data.get("command", "")))
        except (KeyError, TypeError, ValueError) as e:
            raise ArmadaError(f"{where}: malformed label, group_rows or file_rows ({e})") from None

    def rows(self, split: str) -> int:
        return self.manifest.dataset.splits[split].rows

    @property
    def dim(self) -> int:
        return self.manifest.teacher.dim

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.manifest.extraction.dtype)

    def files(self, split: str) -> list[str]:
        count = math.ceil(self.rows(split) / self.file_rows)
        return [f"data/{split}-{i:05d}-of-{count:05d}.parquet" for i in range(count)]

    def schema(self):
        import pyarrow as pa

        arrow_dtype = pa.float16() if self.dtype == np.float16 else pa.float32()
        fields = [pa.field(ID, pa.string(), nullable=False), pa.field(HASH, pa.string(), nullable=False)]
        if self.label is not None:
            fields.append(pa.field(LABEL, self.label.arrow_type()))
        fields.append(pa.field(VECTOR, pa.list_(pa.field("element", arrow_dtype, nullable=False), self.dim), nullable=False))
        return pa.schema(fields)

    def features(self) -> list[dict[str, Any]]:
        """The columns as `datasets` features in a card's YAML (datasets' own `Features._to_yaml_list` form)."""
        features = [{"name": ID, "dtype": "string"}, {"name": HASH, "dtype": "string"}]
        if self.label is not None:
            features.append(self.label.feature())
        features.append({"name": VECTOR, "list": self.dtype.name, "length": self.dim})
        return features

    def header(self, sizes: dict[str, tuple[int, int]]) -> dict[str, Any]:
        """The parts of the card's YAML header that `datasets` reads; `sizes`: each split's bytes in Arrow (what
        `datasets` calls num_bytes) and in its Parquet files."""
        splits = list(self.manifest.dataset.splits)
        return {
            "configs": [{"config_name": "default",
                         "data_files": [{"split": s, "path": f"data/{s}-*"} for s in splits]}],
            "dataset_info": {
                "features": self.features(),
                "splits": [{"name": s, "num_bytes": sizes[s][0], "num_examples": self.rows(s)} for s in splits],
                "download_size": sum(size[1] for size in sizes.values()),
                "dataset_size": sum(size[0] for size in sizes.values()),
            },
        }


def rows_for(dim: int, dtype: str) -> tuple[int, int]:
    """(rows per row group, rows per file): GROUP_ROWS or as many as GROUP_VALUES allows (21,845 rows of 384 values,
    8,192 of 1,024); whole groups per file, as many as FILE_BYTES of vectors hold (at least one)."""
    group = max(1, min(GROUP_ROWS, GROUP_VALUES // dim))
    return group, group * max(1, FILE_BYTES // (group * dim * np.dtype(dtype).itemsize))


def check_header(info: ExportInfo, header: Any, where: str) -> None:
    """Refuse a card whose YAML header declares other files, splits, row counts or features than armada.json."""
    if not isinstance(header, dict):
        raise ArmadaError(f"{where}: the card has no YAML header; `datasets` and armada both need it")
    expected = info.header({s: (0, 0) for s in info.manifest.dataset.splits})
    if header.get("configs") != expected["configs"]:
        raise ArmadaError(f"{where}: the card's configs are {canonical_json(header.get('configs'))}, armada.json's "
                          f"manifest needs {canonical_json(expected['configs'])}")
    dataset_info = header.get("dataset_info") if isinstance(header.get("dataset_info"), dict) else {}
    declared = {f.get("name"): f for f in dataset_info.get("features") or [] if isinstance(f, dict)}
    wanted = {f["name"]: f for f in expected["dataset_info"]["features"]}
    for name in sorted(declared.keys() | wanted.keys(), key=lambda n: (n not in wanted, str(n))):
        if declared.get(name) != wanted.get(name):
            raise ArmadaError(f"{where}: the card declares the column {name!r} as {_feature(declared.get(name))}, "
                              f"armada.json's manifest says {_feature(wanted.get(name))}")
    rows = {s.get("name"): s.get("num_examples") for s in dataset_info.get("splits") or [] if isinstance(s, dict)}
    for split, count in rows.items() | {(s, info.rows(s)) for s in info.manifest.dataset.splits}:
        if rows.get(split) != (info.rows(split) if split in info.manifest.dataset.splits else None):
            raise ArmadaError(f"{where}: the card says split {split!r} has {rows.get(split)} examples, the manifest "
                              f"{info.rows(split) if split in info.manifest.dataset.splits else 'has no such split'}")


def _feature(feature: dict | None) -> str:
    if feature is None:
        return "absent"
    return canonical_json({k: v for k, v in feature.items() if k != "name"})


def check_schema(info: ExportInfo, schema, where: str) -> None:
    """Refuse a Parquet file whose columns are not those armada.json implies (names, order, types)."""
    expected = info.schema()
    if schema.names != expected.names:
        raise ArmadaError(f"{where}: its columns are {schema.names}, armada.json's manifest needs {expected.names}")
    for field in expected:
        found = schema.field(field.name)
        if found.type != field.type:
            raise ArmadaError(f"{where}: column {field.name!r} is {found.type}, armada.json's manifest needs {field.type}")


def split_files(folder: Path, info: ExportInfo, split: str) -> list[Path]:
    """The split's files, after refusing a missing one or any other file the card's data_files pattern picks up
    (`datasets` would load it as rows of the split)."""
    expected = info.files(split)
    found = {p.relative_to(folder).as_posix() for p in (folder / "data").glob(f"{split}-*")}
    missing = [name for name in expected if name not in found]
    if missing:
        raise ArmadaError(f"{folder}: {missing[0]} is missing ({len(missing)} of the {len(expected)} files of split "
                          f"{split}); download or copy the whole export again")
    extra = sorted(found - set(expected))
    if extra:
        raise ArmadaError(f"{folder}: {extra[0]} is not one of the export's {len(expected)} files of split {split}, "
                          f"but `datasets` would read it as rows of {split}; remove it")
    return [folder / name for name in expected]
