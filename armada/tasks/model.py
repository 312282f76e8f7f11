"""What a task is: its rows as examples, what the student and the teacher read, its label set."""

from __future__ import annotations

import hashlib
import json
import math
import string
from dataclasses import dataclass, field
from typing import Callable, Iterable, Literal, Mapping

from armada.errors import ArmadaError

Kind = Literal["classification", "regression", "multiple_choice", "generation"]
# The kinds a student answers through an output head (classes, a score, one output per choice),
# trained and scored by its outputs; a generation task is answered by writing.
OUTPUT_KINDS = ("classification", "regression", "multiple_choice")
# The teacher template of a text teacher (armada.extract.text), which reads what the student reads:
# the teacher text is then the student's input itself, as JSON (student_input_text), so that the
# cache's text hashes, deduplication and split fingerprints follow exactly that input.
STUDENT_INPUT = "<student input>"
Metric = Literal["accuracy", "mcc", "accuracy_f1", "accuracy_f1_macro", "pearson_spearman", "rougeL"]
SPLITS = ("train", "validation", "test")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Example:
    id: str
    fields: Mapping[str, str]               # the row's text fields by name
    inputs: tuple[tuple[str, ...], ...]     # what the student reads: one text or pair per choice (one entry unless multiple choice)
                                            # generation: ((instruction, input),), input "" when the row has none
    label: int | float | None               # class or choice index; a float for regression; None where the split has no labels
    teacher_text: str                       # what the teacher encodes (with STUDENT_INPUT: student_input_text(inputs))
    references: tuple[str, ...] = ()        # generation: the reference responses; the first is the training target
    choices: tuple[str, ...] = ()           # generation with options: each option's text, indexed by the label

    @property
    def teacher_sha256(self) -> str:
        return sha256_text(self.teacher_text)


@dataclass(frozen=True)
class Row:
    """A row as a reader yields it: fields under the hub's names, `idx` the data's own index or position."""

    idx: int | str
    fields: Mapping[str, object]
    label: object                           # raw label as stored (int, str, bool, float, None)
    where: str                              # file:line or hub split, for messages


@dataclass(frozen=True)
class Task:
    name: str                               # "glue/cola"
    kind: Kind
    text_fields: tuple[str, ...]            # the text fields, in order: the default teacher text joins them
    labels: tuple[str, ...]                 # class names (index = class id); choice names for multiple choice; () for regression
    metric: Metric
    student_input: Callable[[Mapping[str, object]], tuple[tuple[str, ...], ...]]
    reader: "Reader"
    indexed: bool                           # the published rows carry their own index (else: position + content hash)
    description: str
    splits: tuple[str, ...] = SPLITS
    label_values: Mapping[object, int] = field(default_factory=dict)  # raw label → class id, beyond the names
    label_range: tuple[float, float] | None = None  # regression: the scores the data can hold (STS-B: 0 to 5)

    @property
    def num_labels(self) -> int:
        return 1 if self.kind == "regression" else len(self.labels)

    def load(self, split: str, *, data_dir: str = "", limit: int = 0, template: str = "") -> "Split":
        """Read one split: `data_dir` local files ("" = the hub), the first `limit` rows (0 = all)."""
        if split not in self.splits:
            raise ArmadaError(f"{self.name} has no split {split!r}; its splits are {list(self.splits)}")
        check_template(self, template)
        rows = self.reader.read(self, split, data_dir)
        examples, seen = [], {}
        for row in rows:
            if limit and len(examples) == limit:
                break
            example = self._example(row, template)
            if example.id in seen:
                raise ArmadaError(
                    f"{self.name} {split}: example id {example.id!r} appears twice ({seen[example.id]} and {row.where}); "
                    "ids must be unique: check the data for duplicated rows or indexes"
                )
            seen[example.id] = row.where
            examples.append(example)
        if not examples:
            raise ArmadaError(f"{self.name} {split}: no rows were read from {self.reader.describe(self, split, data_dir)}")
        return Split(self, split, tuple(examples), self.reader.describe(self, split, data_dir), limit)

    def _example(self, row: Row, template: str) -> Example:
        texts = {name: _text(row.fields.get(name), name, row.where) for name in self.text_fields}
        if self.indexed:
            example_id = str(row.idx)
        else:
            content = sha256_text(json.dumps([texts[n] for n in self.text_fields]))[:10]
            example_id = f"{row.idx}-{content}"
        inputs = self.student_input({**row.fields, **texts})
        text = student_input_text(inputs) if template == STUDENT_INPUT else teacher_text(self, texts, template)
        return Example(example_id, texts, inputs, self._label(row), text)

    def _label(self, row: Row) -> int | float | None:
        raw = row.label
        if raw is None or raw == "" or (isinstance(raw, int) and not isinstance(raw, bool) and raw == -1):
            return None                     # unlabeled (test split; the hub writes -1)
        if self.kind == "regression":
            try:
                if isinstance(raw, bool):
                    raise TypeError("a boolean")
                value = float(raw)
            except (TypeError, ValueError):
                raise ArmadaError(f"{self.name}: label {raw!r} at {row.where} is not a number") from None
            if not math.isfinite(value):
                raise ArmadaError(f"{self.name}: label {raw!r} at {row.where} is not a finite number")
            return value
        if isinstance(raw, (list, dict)):
            raise ArmadaError(f"{self.name}: label {raw!r} at {row.where} is a list or a table, not one of the task's "
                              f"labels {list(self.labels)}")
        for key in (raw, str(raw)):
            if key in self.label_values:
                return self.label_values[key]
        if isinstance(raw, str) and raw in self.labels:
            return self.labels.index(raw)
        if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < len(self.labels):
            return raw
        if isinstance(raw, str) and raw.strip().lstrip("-").isdigit() and 0 <= int(raw) < len(self.labels):
            return int(raw)
        raise ArmadaError(
            f"{self.name}: label {raw!r} at {row.where} is not in the task's label set {list(self.labels)} "
            "(class ids 0.." + str(len(self.labels) - 1) + "); fix the row or the task's labels"
        )


class Reader:
    """Reads a task's rows from somewhere: the hub, published local files, a package."""

    def read(self, task: Task, split: str, data_dir: str) -> Iterable[Row]:
        raise NotImplementedError

    def describe(self, task: Task, split: str, data_dir: str) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Split:
    task: Task
    name: str
    examples: tuple[Example, ...]
    source: str                             # where the rows came from
    limit: int = 0

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.examples]

    @property
    def teacher_texts(self) -> list[str]:
        return [e.teacher_text for e in self.examples]

    @property
    def teacher_hashes(self) -> list[str]:
        return [e.teacher_sha256 for e in self.examples]

    def teacher_hashes_for(self, template: str) -> list[str]:
        """The teacher-text hashes these rows have under another teacher template: a second teacher's cache
        (e.g. a text teacher's, read with STUDENT_INPUT) is matched to them by these."""
        check_template(self.task, template)
        return [sha256_text(student_input_text(e.inputs) if template == STUDENT_INPUT
                            else teacher_text(self.task, e.fields, template)) for e in self.examples]

    @property
    def labels(self) -> list[int | float | None]:
        return [e.label for e in self.examples]

    def fingerprint(self) -> str:
        """Changes when any id, teacher text or label changes, or rows are added, dropped or reordered."""
        return split_fingerprint(self.task.name, self.name, ((e.id, e.teacher_sha256, e.label) for e in self.examples))


def split_fingerprint(task: str, split: str, rows: Iterable[tuple[str, str, int | float | None]]) -> str:
    """Split.fingerprint from its rows' (id, teacher-text hash, label): what a cache's manifest records, so an
    exported cache's label column can be checked without the task's data (armada.cache_schema.hf_reader)."""
    h = hashlib.sha256(f"{task}\n{split}\n".encode())
    for row in rows:
        h.update(json.dumps(list(row)).encode())
        h.update(b"\n")
    return h.hexdigest()


def _text(value: object, name: str, where: str) -> str:
    if value is None:
        raise ArmadaError(f"row at {where} has no text field {name!r}; check the file's columns or the task's field mapping")
    if isinstance(value, (list, dict, bool)):      # str() would make "['a', 'b']" or "True" of it, silently
        raise ArmadaError(f"row at {where}: its text field {name!r} is {value!r}, not text; fix the row or the task's "
                          "field mapping")
    return str(value)


def check_template(task: Task, template: str) -> None:
    if not template or template == STUDENT_INPUT:
        return
    try:
        names = [n for _, n, _, _ in string.Formatter().parse(template) if n is not None]
    except ValueError as e:
        raise ArmadaError(f"teacher template {template!r} for {task.name} is not a valid template: {e}") from None
    unknown = [n for n in names if n not in task.text_fields]
    if unknown or not names:
        raise ArmadaError(
            f"teacher template {template!r} for {task.name} uses {unknown or 'no field'}; "
            f"write it with the task's text fields: {', '.join('{' + f + '}' for f in task.text_fields)}"
        )


def teacher_text(task: Task, texts: Mapping[str, str], template: str) -> str:
    """Default: every text field joined and lowercased, as the authors' code feeds the teacher."""
    if template:
        return template.format(**texts)
    return " ".join(texts[n] for n in task.text_fields).lower()


def student_input_text(inputs: tuple[tuple[str, ...], ...]) -> str:
    """The student's input as one text: JSON, a list of texts per choice ([["premise", "hypothesis"]])."""
    return json.dumps([list(choice) for choice in inputs], ensure_ascii=False)
