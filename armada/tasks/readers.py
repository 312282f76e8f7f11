"""Where rows come from: the Hugging Face hub, GLUE/SuperGLUE files as published, a package, local files."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

from armada.errors import ArmadaError
from armada.jsonl import read_jsonl
from armada.tasks.model import Reader, Row, Task

# Published file names per split; the hub's split names where they differ from ours.
GLUE_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}
SUPERGLUE_FILES = {"train": "train.jsonl", "validation": "val.jsonl", "test": "test.jsonl"}


@dataclass(frozen=True)
class SuiteReader(Reader):
    """A GLUE or SuperGLUE task: the hub through `datasets`, or `--data-dir` files as published.

    `data_dir` is the suite folder holding the task folders under their published names
    (CoLA/, SST-2/, …; BoolQ/, COPA/, …) or the task folder itself.
    """

    hub_path: str                           # "nyu-mll/glue"
    hub_name: str                           # "cola"
    folder: str                             # "CoLA"
    files: Mapping[str, str]
    parse: Callable[[list[str] | dict, str], tuple[dict, object, int | None]]  # raw row → (fields, label, own index)
    tsv_header: bool = True                 # GLUE TSVs have a header row, except CoLA train/dev
    hub_splits: Mapping[str, str] | None = None

    def read(self, task: Task, split: str, data_dir: str) -> Iterable[Row]:
        return self._read_local(split, data_dir) if data_dir else self._read_hub(task, split)

    def describe(self, task: Task, split: str, data_dir: str) -> str:
        if data_dir:
            return str(self._task_dir(data_dir) / self.files[split])
        return f"the hub dataset {self.hub_path} ({self.hub_name}, split {self._hub_split(split)})"

    def _hub_split(self, split: str) -> str:
        return (self.hub_splits or {}).get(split, split)

    def _read_hub(self, task: Task, split: str) -> Iterator[Row]:
        dataset = load_hub_dataset(task.name, self.hub_path, self.hub_name, self._hub_split(split), self.folder)
        for position, record in enumerate(dataset):
            record = dict(record)
            label = record.pop("label", None)
            idx = record.pop("idx", position)
            yield Row(int(idx), record, label, f"{self.hub_path}/{self.hub_name}[{self._hub_split(split)}][{position}]")

    def _task_dir(self, data_dir: str) -> Path:
        root = Path(data_dir)
        if (root / self.folder).is_dir():
            return root / self.folder
        if any((root / name).is_file() for name in self.files.values()):
            return root
        raise ArmadaError(
            f"--data-dir {data_dir}: neither a {self.folder}/ folder nor the {self.folder} files "
            f"({', '.join(self.files.values())}) are there; point it at the suite folder that holds "
            f"{self.folder}/ or at {self.folder}/ itself"
        )

    def _read_local(self, split: str, data_dir: str) -> Iterator[Row]:
        path = self._task_dir(data_dir) / self.files[split]
        if not path.is_file():
            raise ArmadaError(f"{path}: no such file; the {split} split of {self.folder} is read from {self.files[split]}")
        lines = _tsv_rows(path, header=self.tsv_header and not (split != "test" and self.folder == "CoLA")) \
            if path.suffix == ".tsv" else read_jsonl(path)
        for position, (where, raw) in enumerate(lines):
            try:
                fields, label, index = self.parse(raw, split)
            except (KeyError, IndexError, ValueError) as e:
                raise ArmadaError(f"{where}: not a {self.folder} row as published ({type(e).__name__}: {e})") from None
            yield Row(position if index is None else int(index), fields, label, where)


def load_hub_dataset(task: str, path: str, name: str, split: str, folder: str):
    """The real hub path a user with internet takes; offline, say so and how to use local files."""
    try:
        import datasets

        return datasets.load_dataset(path, name, split=split)
    except Exception as e:  # datasets raises many types for "cannot reach the hub"
        raise ArmadaError(
            f"{task}: could not load {path} ({name}, split {split}) from the Hugging Face hub: "
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}\n"
            f"If the hub cannot be reached, download the task files and pass --data-dir DIR, where DIR holds "
            f"{folder}/ as published (or is {folder}/ itself)."
        ) from None


def _tsv_rows(path: Path, header: bool) -> Iterator[tuple[str, dict | list[str]]]:
    # QUOTE_NONE: GLUE TSVs contain bare quote characters inside sentences.
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        names = next(reader) if header else None
        for line_no, cells in enumerate(reader, start=2 if header else 1):
            if not cells:
                continue
            where = f"{path}:{line_no}"
            if names is not None:
                if len(cells) != len(names):
                    raise ArmadaError(f"{where}: {len(cells)} columns where the header has {len(names)}")
                yield where, dict(zip(names, cells))
            else:
                yield where, cells


@dataclass(frozen=True)
class FileReader(Reader):
    """A `file:NAME` task: CSV, TSV or JSONL files named in [tasks.NAME]."""

    paths: Mapping[str, str]
    text_fields: tuple[str, ...]
    label_field: str
    id_field: str

    def read(self, task: Task, split: str, data_dir: str) -> Iterator[Row]:
        path = Path(self.paths.get(split) or "")
        if not self.paths.get(split):
            raise ArmadaError(f"{task.name}: no file is given for the {split} split; set it in [tasks.{task.name[5:]}]")
        if not path.is_file():
            raise ArmadaError(f"{task.name}: {path}: no such file (the {split} split in [tasks.{task.name[5:]}])")
        if path.suffix in (".jsonl", ".json"):
            rows = read_jsonl(path)
        elif path.suffix in (".csv", ".tsv"):
            rows = _delimited_rows(path, "," if path.suffix == ".csv" else "\t")
        else:
            raise ArmadaError(f"{task.name}: {path}: unknown format; use .csv, .tsv or .jsonl")
        for position, (where, record) in enumerate(rows):
            missing = [f for f in (*self.text_fields, *([self.id_field] if self.id_field else [])) if f not in record]
            if missing:
                raise ArmadaError(f"{where}: no field {missing[0]!r}; the row has {sorted(record)}")
            label = record.get(self.label_field)
            fields = {k: v for k, v in record.items() if k != self.label_field}
            raw_id = record[self.id_field] if self.id_field else position
            if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
                raise ArmadaError(f"{where}: the id field {self.id_field!r} is {raw_id!r}; an id is a string or a whole "
                                  "number")
            idx = str(raw_id).strip() if self.id_field else position
            if idx == "":
                raise ArmadaError(f"{where}: the id field {self.id_field!r} is empty; every row needs its id")
            yield Row(idx, fields, label, where)

    def describe(self, task: Task, split: str, data_dir: str) -> str:
        return str(self.paths.get(split, ""))


def _delimited_rows(path: Path, delimiter: str) -> Iterator[tuple[str, dict]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        for line_no, record in enumerate(csv.DictReader(f, delimiter=delimiter), start=2):
            yield f"{path}:{line_no}", record
