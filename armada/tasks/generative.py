"""Generative tasks: instruction following (Dolly, SInst, any instruction JSONL) and zero-shot reasoning.

A generative example is a prompt and a response. `inputs` is `((instruction, input),)` (input ""
when the row has none), `references` holds the reference responses (the first is the training
target; SInst rows carry several), and the teacher reads the instruction and input joined and
lowercased, or a template over `{instruction}` and `{input}`. `build_prompt` turns an example
into the text a causal LM is given and `encode_prompt` into its tokens, for training and
evaluation alike.

Instruction sets (metric RougeL against the references):
- `instruct/dolly`: databricks-dolly-15k. validation = MiniLLM's `eval/dolly/dev.jsonl` (1,000),
  test = `eval/dolly/valid.jsonl` (500), train = the release minus every row that matches an
  evaluation row. Matching: after removing citation marks ("[12]", "[a]") and collapsing
  whitespace, a release row matches when its instruction and context equal an evaluation row's
  instruction and input, or its instruction and response equal that row's instruction and
  output. The second key catches rows whose context was edited after MiniLLM's preparation;
  together they find all 500 test rows and 999 of the 1,000 validation rows in the release
  and hold out 1,557 release rows, leaving 13,454 for training.
- `instruct/dolly-test` (the same 500 rows) and `instruct/sinst` (Super-NaturalInstructions,
  1,694 rows with responses longer than 10 tokens): evaluation only.
- `file:NAME` with `kind = "generation"` in [tasks.NAME]: any instruction JSONL (SelfInst,
  Vicuna, Unnatural Instructions): `text_fields = ["instruction", "input"]` name the
  instruction and input fields (the input may be left out), `label_field` the response field
  (a string or a list of references).

Reasoning sets (metric accuracy), LLM-Adapters' files (Hu et al. 2023), `[{instruction, input,
output, answer}]`: the answer is an option word (answer1..5, solution1/2, option1/2), true/false,
an option letter A-E (the task's `labels`, the label is its index) or a number (the label is
the number). Multiple-choice items also carry the option texts, parsed from the instruction.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Literal, Mapping, Sequence

from armada.errors import ArmadaError
from armada.jsonl import read_jsonl
from armada.tasks.model import Example, Reader, Row, Task
from armada.tasks.readers import FileReader, load_hub_dataset

AnswerFormat = Literal["text", "option", "number"]   # RougeL against references; the first option word; the last number
PromptStyle = Literal["alpaca", "chat"]
TEXT_FIELDS = ("instruction", "input")

# MiniLLM's Alpaca-style prompts, character for character as in the `prompt` field of its files.
ALPACA = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
          "request.\n\n### Instruction:\n{instruction}\n\n### Response:\n")
ALPACA_WITH_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further "
                     "context. Write a response that appropriately completes the request.\n\n### Instruction:\n"
                     "{instruction}\n\n### Input:\n{input}\n\n### Response:\n")


def build_prompt(instruction: str, input: str = "", tokenizer=None, style: PromptStyle | None = None) -> str:
    """The prompt a causal LM is given: the Alpaca/MiniLLM format, or the tokenizer's chat template.

    `style` None takes the chat template when the tokenizer has one, else the Alpaca format. In
    the chat style the input follows the instruction after a blank line, as one user turn.
    """
    if style is None:
        style = "chat" if getattr(tokenizer, "chat_template", None) else "alpaca"
    if style == "alpaca":
        return ALPACA_WITH_INPUT.format(instruction=instruction, input=input) if input else ALPACA.format(instruction=instruction)
    if style == "chat":
        if not getattr(tokenizer, "chat_template", None):
            raise ArmadaError("prompt style 'chat' needs a tokenizer with a chat template; this one has none: use the 'alpaca' style")
        content = f"{instruction}\n\n{input}" if input else instruction
        return tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True)
    raise ArmadaError(f"unknown prompt style {style!r}; the styles are 'alpaca' and 'chat'")


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    """The prompt's token ids, with the tokenizer's special tokens, unless the text already starts with
    the BOS text (as chat templates write it), which would otherwise come twice."""
    bos = tokenizer.bos_token
    add_special = not (bos and prompt.startswith(bos))
    return list(tokenizer(prompt, add_special_tokens=add_special)["input_ids"])


@dataclass(frozen=True)
class GenerativeTask(Task):
    """A task whose student writes a response; how its answers are read and how long they may be."""

    answer_format: AnswerFormat = "text"
    response_field: str = "output"              # the row field holding the reference response(s)
    parse_choices: Callable[[str], tuple[str, ...]] | None = None   # option texts from an instruction
    max_new_tokens: int = 256                   # the source's generation budget for this task

    def _example(self, row: Row, template: str) -> Example:
        example = super()._example(row, template)
        if not template:
            example = replace(example, teacher_text=" ".join(t for t in example.fields.values() if t).lower())
        choices = ()
        if self.parse_choices is not None:
            try:
                choices = self.parse_choices(example.fields["instruction"])
            except ValueError as e:
                raise ArmadaError(f"{row.where}: the options of this {self.name} item cannot be read from its instruction "
                                  f"({e}); fix or drop the row") from None
            if not example.label < len(choices):
                raise ArmadaError(f"{row.where}: the answer {self.labels[example.label]!r} names an option the instruction "
                                  f"does not list (it lists {len(choices)}); fix or drop the row")
        return replace(example, references=self._references(row), choices=choices)

    def _label(self, row: Row) -> int | float | None:
        if self.answer_format == "text":
            return None
        if row.label is None or str(row.label).strip() == "":
            raise ArmadaError(f"{row.where}: this {self.name} item has no answer; every reasoning item needs one")
        if self.answer_format == "number":
            try:
                return float(str(row.label).replace(",", ""))
            except ValueError:
                raise ArmadaError(f"{row.where}: the answer {row.label!r} is not a number; fix the row") from None
        return super()._label(row)

    def _references(self, row: Row) -> tuple[str, ...]:
        value = row.fields.get(self.response_field)
        references = tuple(value) if isinstance(value, list) else (value,)
        if not references or not all(isinstance(r, str) for r in references):
            raise ArmadaError(f"{row.where}: the response field {self.response_field!r} must be a text or a list of texts, "
                              f"got {value!r}; check the file's fields or the task's label_field")
        return references


def _student(r: Mapping[str, str]) -> tuple[tuple[str, ...], ...]:
    return ((r["instruction"], r["input"]),)


# --- where the files are ---------------------------------------------------------------------

def _first_file(data_dir: str, candidates: Sequence[str]) -> Path | None:
    if not data_dir:
        return None
    return next((Path(data_dir) / c for c in candidates if (Path(data_dir) / c).is_file()), None)


def _require(task: str, data_dir: str, candidates: Sequence[str], what: str) -> Path:
    if not data_dir:
        raise ArmadaError(f"{task}: {what} is read from local files; pass --data-dir DIR, where DIR holds {candidates[0]}")
    path = _first_file(data_dir, candidates)
    if path is None:
        folder = "the generative/instruction folder" if task.startswith("instruct/") else "the LLM-Adapters dataset folder"
        raise ArmadaError(f"--data-dir {data_dir}: {task} reads {what} from {' or '.join(candidates)} there, and none "
                          f"exists; point it at {folder}")
    return path


def _instruction_rows(path: Path, names: Mapping[str, str] | None = None) -> Iterator[Row]:
    """JSONL rows with (or mapped onto) instruction, input and output fields."""
    names = names or {}
    for position, (where, record) in enumerate(read_jsonl(path)):
        fields = {ours: record.get(names.get(ours, ours)) for ours in ("instruction", "input", "output")}
        fields["input"] = fields["input"] or ""
        yield Row(position, fields, None, where)


# --- Dolly -----------------------------------------------------------------------------------

DOLLY_HUB = "databricks/databricks-dolly-15k"
DOLLY_RELEASE = ("dolly-15k/databricks-dolly-15k.jsonl", "databricks-dolly-15k.jsonl")
RELEASE_FIELDS = {"input": "context", "output": "response"}
CITATION_MARK = re.compile(r"\[(?:\d+|[a-z])\]")


def _dolly_eval(name: str) -> tuple[str, ...]:
    # The instruction folder; the dolly-15k folder beside eval/ (the published layout); eval/dolly itself.
    return (f"eval/dolly/{name}", f"../eval/dolly/{name}", name)


DOLLY_EVAL = {"validation": _dolly_eval("dev.jsonl"), "test": _dolly_eval("valid.jsonl")}


def _normalised(text: str) -> str:
    return " ".join(CITATION_MARK.sub("", text).split())


def dolly_match_keys(fields: Mapping[str, str]) -> set[tuple[str, str, str]]:
    """The keys a Dolly row is matched on: (instruction, input) and (instruction, output), normalised."""
    instruction = _normalised(fields["instruction"])
    return {("context", instruction, _normalised(fields["input"])), ("response", instruction, _normalised(fields["output"]))}


@dataclass(frozen=True)
class DollyReader(Reader):
    """The Dolly-15k release (local, else the hub) minus the rows of MiniLLM's evaluation files."""

    def read(self, task: Task, split: str, data_dir: str) -> Iterator[Row]:
        if split != "train":
            yield from _instruction_rows(_require(task.name, data_dir, DOLLY_EVAL[split], f"the {split} split"))
            return
        held_out = set()
        for name in ("validation", "test"):
            for row in _instruction_rows(_require(task.name, data_dir, DOLLY_EVAL[name], f"the {name} split (held out of train)")):
                held_out |= dolly_match_keys(row.fields)
        for row in self._release(task, data_dir):
            if not dolly_match_keys(row.fields) & held_out:
                yield row

    def _release(self, task: Task, data_dir: str) -> Iterator[Row]:
        path = _first_file(data_dir, DOLLY_RELEASE)
        if path is not None:
            yield from _instruction_rows(path, RELEASE_FIELDS)
            return
        for position, record in enumerate(load_hub_dataset(task.name, DOLLY_HUB, None, "train", "dolly-15k")):
            fields = {"instruction": record["instruction"], "input": record["context"] or "", "output": record["response"]}
            yield Row(position, fields, None, f"{DOLLY_HUB}[train][{position}]")

    def describe(self, task: Task, split: str, data_dir: str) -> str:
        if split != "train":
            return str(_first_file(data_dir, DOLLY_EVAL[split]) or f"{data_dir} ({DOLLY_EVAL[split][0]})")
        release = _first_file(data_dir, DOLLY_RELEASE) or f"the hub dataset {DOLLY_HUB}"
        return f"{release} minus the rows of {DOLLY_EVAL['validation'][0]} and {DOLLY_EVAL['test'][0]}"


@dataclass(frozen=True)
class InstructionFileReader(Reader):
    """One evaluation file of MiniLLM's preparation (fields instruction, input, output)."""

    candidates: tuple[str, ...]

    def read(self, task: Task, split: str, data_dir: str) -> Iterator[Row]:
        return _instruction_rows(_require(task.name, data_dir, self.candidates, f"the {split} split"))

    def describe(self, task: Task, split: str, data_dir: str) -> str:
        return str(_first_file(data_dir, self.candidates) or self.candidates[0])


def _instruction_task(name: str, reader: Reader, description: str, splits: tuple[str, ...]) -> GenerativeTask:
    return GenerativeTask(name, "generation", TEXT_FIELDS, (), "rougeL", _student, reader, False, description,
                          splits=splits)


def instruction_file_task(name: str, spec) -> GenerativeTask:
    """A `file:NAME` instruction task from its [tasks.NAME] table (`kind = "generation"`)."""
    if not 1 <= len(spec.text_fields) <= 2:
        raise ArmadaError(f"[tasks.{name}]: a generation task takes text_fields = [instruction field] or "
                          f"[instruction field, input field], got {list(spec.text_fields)}")
    instruction, input = (*spec.text_fields, "")[:2]

    def student(r):
        return ((r[instruction], r[input] if input else ""),)

    reader = FileReader({"train": spec.train, "validation": spec.validation, "test": spec.test},
                        spec.text_fields, "", spec.id_field)
    splits = tuple(s for s in ("train", "validation", "test") if getattr(spec, s))
    return GenerativeTask(f"file:{name}", "generation", spec.text_fields, (), "rougeL", student, reader,
                          bool(spec.id_field), f"local instruction files ({', '.join(getattr(spec, s) for s in splits)})",
                          splits=splits, response_field=spec.label_field)


# --- LLM-Adapters reasoning sets -------------------------------------------------------------

@dataclass(frozen=True)
class LLMAdaptersReader(Reader):
    """A JSON list of {instruction, input, output, answer}; `data_dir` = the reasoning folder or the task's folder."""

    folder: str                                 # "ARC-Easy"
    files: Mapping[str, str]                    # split → file name
    skip_without_output: bool = False           # a training set: an item with no worked response teaches nothing

    def _path(self, task: Task, split: str, data_dir: str) -> Path:
        name = self.files[split]
        return _require(task.name, data_dir, (f"{self.folder}/{name}", name), f"the {split} split")

    def read(self, task: Task, split: str, data_dir: str) -> Iterator[Row]:
        path = self._path(task, split, data_dir)
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ArmadaError(f"{path}: not valid JSON: {e}") from None
        if not isinstance(items, list):
            raise ArmadaError(f"{path}: expected a JSON list of {{instruction, input, output, answer}} items")
        for position, item in enumerate(items):
            where = f"{path}[{position}]"
            if not isinstance(item, dict) or not isinstance(item.get("instruction"), str):
                raise ArmadaError(f"{where}: not an LLM-Adapters item (a JSON object with an instruction text)")
            fields = {"instruction": item["instruction"], "input": item.get("input") or "", "output": item.get("output") or ""}
            if self.skip_without_output and not fields["output"].strip():
                continue                        # ids keep the item's own position, so later rows do not shift
            yield Row(position, fields, item.get("answer"), where)

    def describe(self, task: Task, split: str, data_dir: str) -> str:
        return str(_first_file(data_dir, (f"{self.folder}/{self.files[split]}", self.files[split])) or self.folder)


def numbered_options(stem: str) -> Callable[[str], tuple[str, ...]]:
    """Options written 'Answer1: x Answer2: y ... Answer format: answer1/answer2' (stem "Answer")."""
    marker = re.compile(rf"\b{stem}(\d+):\s*")

    def parse(instruction: str) -> tuple[str, ...]:
        body, found, answer_format = instruction.rpartition("Answer format:")
        if not found:
            raise ValueError("no 'Answer format:' line")
        marks = list(marker.finditer(body))
        if [int(m.group(1)) for m in marks] != list(range(1, len(marks) + 1)) or len(marks) < 2:
            raise ValueError(f"the {stem}1: {stem}2: ... markers are missing or out of order")
        if answer_format.strip().split("/") != [f"{stem.lower()}{i}" for i in range(1, len(marks) + 1)]:
            raise ValueError(f"{len(marks)} options but the answer format says {answer_format.strip()!r}")
        texts = _between(body, marks)
        if not all(texts):
            raise ValueError("an option is empty")
        return texts

    return parse


def _between(body: str, marks: list[re.Match]) -> tuple[str, ...]:
    """The text after each mark, up to the next one (the last: to the end)."""
    ends = [m.start() for m in marks[1:]] + [len(body)]
    return tuple(body[m.end():end].strip() for m, end in zip(marks, ends))


AQUA_OPTION = re.compile(r"\(([A-E])\)\s*")


def lettered_options(instruction: str) -> tuple[str, ...]:
    """AQuA: '... Answer Choices: (A) 23.65 (B) 1000 (C) ... (E) ...'."""
    _, found, body = instruction.rpartition("Answer Choices:")
    if not found:
        raise ValueError("no 'Answer Choices:' list")
    marks = list(AQUA_OPTION.finditer(body))
    if "".join(m.group(1) for m in marks) != "ABCDE"[:len(marks)] or len(marks) < 2:
        raise ValueError("the (A) (B) ... options are missing or out of order")
    return _between(body, marks)


def true_false(instruction: str) -> tuple[str, ...]:
    if not instruction.rstrip().endswith("Answer format: true/false"):
        raise ValueError("the instruction does not end with 'Answer format: true/false'")
    return ("true", "false")


ANSWER_WORDS = tuple(f"answer{i}" for i in range(1, 6))   # LLM-Adapters reads answer1..answer5 for ARC, OBQA, SIQA


def _reasoning(name, folder, description, labels=(), parse=None, train=False, files=None, max_new_tokens=32):
    files = files or ({"train": "train.json", "test": "test.json"} if train else {"test": "test.json"})
    return GenerativeTask(
        f"reasoning/{name}", "generation", TEXT_FIELDS, labels, "accuracy", _student, LLMAdaptersReader(folder, files),
        False, description, splits=tuple(files), label_values={}, answer_format="option" if labels else "number",
        parse_choices=parse, max_new_tokens=max_new_tokens)


def _math(name, folder, description, **kw):
    # LLM-Adapters' evaluate.py lets math answers run to 256 new tokens; its commonsense evaluation to 32.
    return _reasoning(name, folder, description, max_new_tokens=256, **kw)


def generative_tasks() -> list[GenerativeTask]:
    instruction = "generative/instruction"
    return [
        _instruction_task("instruct/dolly", DollyReader(),
                          f"Dolly-15k instruction following ({instruction}: release minus MiniLLM's 1,000 dev and 500 test rows)",
                          ("train", "validation", "test")),
        _instruction_task("instruct/dolly-test", InstructionFileReader(DOLLY_EVAL["test"]),
                          "Dolly test set, MiniLLM's 500 rows (evaluation only)", ("test",)),
        _instruction_task("instruct/sinst", InstructionFileReader(("eval/sinst/valid.jsonl", "sinst/valid.jsonl", "valid.jsonl")),
                          "Super-NaturalInstructions, 1,694 rows with responses over 10 tokens (evaluation only)", ("test",)),
        _reasoning("arc-e", "ARC-Easy", "ARC-Easy science questions, 3-5 options", ANSWER_WORDS, numbered_options("Answer"), train=True),
        _reasoning("arc-c", "ARC-Challenge", "ARC-Challenge science questions, 3-5 options", ANSWER_WORDS,
                   numbered_options("Answer"), train=True),
        _reasoning("openbookqa", "openbookqa", "OpenBookQA science questions, 4 options", ANSWER_WORDS,
                   numbered_options("Answer"), train=True),
        _reasoning("boolq", "boolq", "BoolQ yes/no questions, answered true/false", ("true", "false"), true_false, train=True),
        _reasoning("piqa", "piqa", "PIQA physical commonsense, 2 solutions", ("solution1", "solution2"), numbered_options("Solution")),
        _reasoning("social-iqa", "social_i_qa", "Social IQa, 3 options", ANSWER_WORDS, numbered_options("Answer")),
        _reasoning("winogrande", "winogrande", "WinoGrande fill-in-the-blank, 2 options", ("option1", "option2"),
                   numbered_options("Option")),
        _math("multiarith", "MultiArith", "MultiArith arithmetic word problems (a number)"),
        _math("singleeq", "SingleEq", "SingleEq one-equation word problems (a number)"),
        _math("aqua", "AQuA", "AQuA algebra questions, options A-E", labels=tuple("ABCDE"), parse=lettered_options),
        _math("addsub", "AddSub", "AddSub addition/subtraction word problems (a number)"),
        _math("svamp", "SVAMP", "SVAMP word problems with varied structure (a number)"),
        _math("gsm8k", "gsm8k", "GSM8K grade-school math (a number)"),
        # Training only: its answers mix numbers and AQuA letters, so only the worked response is read;
        # the 3 items whose response is empty are left out (3,257 of 3,260 remain).
        GenerativeTask("reasoning/math-train", "generation", TEXT_FIELDS, (), "rougeL", _student,
                       LLMAdaptersReader("ft-training_set", {"train": "math_data.json"}, skip_without_output=True), False,
                       "LLM-Adapters' math training set: 3,257 word problems with worked answers", splits=("train",)),
    ]
