"""`armada eval`: a finished run's student (or its TS Aligner alone, paper Table 6) scored on a split.

The run folder says everything needed (armada.run_schema): its record the task, its settings where
the data was read from, how many validation rows the run's dev score used, the teacher template and
the batch size. The validation split is read with the run's validation limit, so `armada eval` scores
exactly the rows the run's dev numbers came from; the test split is read whole. The scores (none for
an unlabeled split) and the predictions go into the run folder as a ScoreRecord.

A generative run (`objective = "lm"`) is scored by what its student writes (`evaluate_generative`):
armada.eval.generative.score_split on the run's own validation split, or zero-shot on any other
generation task (a math-trained student on MultiArith and SingleEq), with greedy decoding and the
task's own generation budget (both recorded), prompted in the style the run trained with; its scores
(what the report reads) and texts go into the run folder as a GenerationRecord.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from armada.config import FileTask
from armada.errors import ArmadaError
from armada.objectives import declaration
from armada.run_schema import GenerationRecord, RunFolder, RunRecord, RunSettings, ScoreRecord
from armada.tasks.metrics import compute, primary
from armada.tasks import OUTPUT_KINDS, Split, Task, get_task

EVAL_SPLITS = ("validation", "test")


@dataclass(frozen=True)
class RunPredictions:
    task: Task
    split: Split
    predictions: np.ndarray             # class or choice ids; floats for regression
    logits: np.ndarray                  # [n, outputs]
    embeddings: np.ndarray              # the student's pooled embeddings [n, d]; the aligner's p_ts [n, P]


@dataclass(frozen=True)
class EvalResult:
    run_dir: Path
    task: str
    split: str
    scorer: str                         # "student" or "aligner"
    examples: int
    scores: dict[str, float | None] | None   # None for an unlabeled split; a None score is undefined
    scores_path: Path
    predictions_path: Path

    def summary(self) -> str:
        head = f"{self.run_dir} {self.scorer} on {self.task} {self.split} ({self.examples} examples): "
        if self.scores is None:
            return head + f"no labels, predictions only → {self.predictions_path}"
        scores = ", ".join(f"{k} {'undefined' if v is None else f'{v:.4f}'}" for k, v in self.scores.items())
        return head + f"{scores} → {self.scores_path}"


CACHE_WITHOUT_ALIGNER = "--cache is where the TS Aligner's teacher vectors are: it goes with --aligner only"


def evaluate_run(run_dir: str | Path, split: str = "validation", data_dir: str | None = None, aligner: bool = False,
                 file_tasks: Mapping[str, FileTask] | None = None, cache: str | None = None) -> EvalResult:
    """Score the run's student (or aligner), write the scores and predictions under RUN/eval/.

    `file_tasks`: the pipeline's [tasks.NAME] tables, for runs of `file:NAME` tasks; `cache`: where the aligner's
    teacher vectors are, where not where the run's record says."""
    run_dir = Path(run_dir)
    started = time.time()
    if aligner:
        result = predict_aligner_alone(run_dir, split, data_dir, file_tasks, cache=cache)
    elif cache:
        raise ArmadaError(CACHE_WITHOUT_ALIGNER)
    else:
        result = predict_student(run_dir, split, data_dir, file_tasks)
    labels = _labels(result.split)
    scores = None
    if labels is not None:
        raw = compute(result.task.metric, result.predictions, labels)
        scores = {k: None if math.isnan(v) else v for k, v in raw.items()}
    scorer = "aligner" if aligner else "student"
    record = ScoreRecord(str(run_dir), result.task.name, split, scorer, result.split.source, len(result.split),
                         primary(result.task.metric), scores, round(time.time() - started, 3))
    predictions = ({"id": example.id, "prediction": prediction.item(), "label": example.label,
                    "logits": [float(v) for v in logits]}
                   for example, prediction, logits in zip(result.split.examples, result.predictions, result.logits))
    scores_path, predictions_path = RunFolder(run_dir).write_scores(record, predictions)
    return EvalResult(run_dir, result.task.name, split, scorer, len(result.split), scores, scores_path, predictions_path)


def predict_student(run_dir: str | Path, split: str = "validation", data_dir: str | None = None,
                    file_tasks: Mapping[str, FileTask] | None = None, head: str = "main") -> RunPredictions:
    """The run's best-epoch student on a split: predictions, logits (of O_s, or with `head` "aux" of O_aux_s)
    and pooled embeddings."""
    from armada.distill.model import load_student, predict

    run_dir = Path(run_dir)
    record, settings = RunFolder(run_dir).read_finished()
    task, examples = _load_split(record, settings, split, data_dir, file_tasks)
    model, tokenizer, _ = load_student(run_dir)
    model.to(_device())
    predictions, logits, embeddings = predict(model, tokenizer, examples, _batch_size(settings), head)
    return RunPredictions(task, examples, predictions, logits, embeddings)


def predict_aligner_alone(run_dir: str | Path, split: str = "validation", data_dir: str | None = None,
                          file_tasks: Mapping[str, FileTask] | None = None, head: str = "main",
                          cache: str | None = None) -> RunPredictions:
    """The run's TS Aligner on the teacher's vectors of a split, read from the cache the run trained with
    (logits of O_ts, or with `head` "aux" of O_aux_ts; p_ts as its embeddings): `cache` where given, else
    where the run's record says it was (as given to the run, then as an absolute path)."""
    from armada.distill.model import aligner_projection, load_aligner, predict_aligner

    run_dir = Path(run_dir)
    record, settings = RunFolder(run_dir).read_finished()
    if record.undistilled or not record.cache:
        raise ArmadaError(f"{run_dir}: an undistilled run has no TS Aligner to score; drop --aligner, or give an ARMADA run")
    task, examples = _load_split(record, settings, split, data_dir, file_tasks)
    aligner = load_aligner(run_dir).to(_device())
    cache, reader = _open_recorded(run_dir, record.cache, cache)
    with reader:
        if reader.manifest.config_hash != record.cache.get("config_hash"):
            raise ArmadaError(f"the cache at {cache} is not the one {run_dir} trained with (its config hash differs); "
                              "it was re-extracted or replaced since")
        features = reader.load(split, examples.ids, examples.teacher_hashes)
        vectors = features[np.arange(len(examples))]
    predictions, logits = predict_aligner(aligner, vectors, head)
    return RunPredictions(task, examples, predictions, logits, aligner_projection(aligner, vectors))


def _open_recorded(run_dir: Path, recorded: Mapping, given: str | None):
    """(where, reader) of the run's cache: `given`, else the first place its record names that opens (as given to the
    run, relative to where it ran; then absolute)."""
    from armada.distill.teacher_features import open_cache

    places = [given] if given else list(dict.fromkeys(p for p in (recorded.get("path"), recorded.get("absolute_path")) if p))
    if not places:
        raise ArmadaError(f"{run_dir}: its record does not say which cache the run trained with (cache.path); "
                          "give it with --cache PATH")
    faults = []
    for place in places:
        try:
            return place, open_cache(place)
        except ArmadaError as e:
            faults.append(str(e))
    raise ArmadaError(f"{run_dir}: the cache it trained with cannot be opened: {'; '.join(faults)}"
                      + ("" if given else " (a path is recorded as given to armada distill, relative to where it ran)")
                      + "; give its place with --cache PATH")


def _load_split(record: RunRecord, settings: RunSettings, split: str, data_dir: str | None,
                file_tasks: Mapping[str, FileTask] | None) -> tuple[Task, Split]:
    if split not in EVAL_SPLITS:
        raise ArmadaError(f"--split {split!r}: evaluate on one of {list(EVAL_SPLITS)}")
    if record.task.startswith("file:") and record.task[5:] not in (file_tasks or {}):
        raise ArmadaError(f"the run's task {record.task} is defined by a [tasks.{record.task[5:]}] table in a pipeline "
                          "file; give that file with --config")
    task = get_task(record.task, file_tasks)
    if task.kind not in OUTPUT_KINDS:
        raise ArmadaError(f"armada eval scores {', '.join(OUTPUT_KINDS)} runs by their classes; {task.name} is a {task.kind} "
                          "task, scored by generating (evaluate_generative, for runs trained with --objective lm)")
    limit = settings.validation_limit if split == "validation" else 0
    folder = settings.data_dir if data_dir is None else data_dir
    return task, task.load(split, data_dir=folder, limit=limit, template=settings.template(task.name))


def score_run(run_dir: str | Path, *, split: str | None = None, data_dir: str | None = None, aligner: bool = False,
              task: str | None = None, limit: int = 0, max_new_tokens: int | None = None,
              file_tasks: Mapping[str, FileTask] | None = None, cache: str | None = None) -> str:
    """`armada eval`: a generative run scored by what it writes (evaluate_generative), any other by its outputs
    (evaluate_run); returns the line that says what was scored and where it went."""
    if is_generative_run(run_dir):
        if cache:
            raise ArmadaError(CACHE_WITHOUT_ALIGNER)
        if aligner:
            raise ArmadaError(f"{run_dir}: a generative run's TS Aligner learnt to reconstruct the teacher's vectors and "
                              "has no task outputs to score; drop --aligner")
        return generative_summary(evaluate_generative(run_dir, task, split, data_dir, limit, max_new_tokens=max_new_tokens,
                                                      file_tasks=file_tasks))
    if task or limit or max_new_tokens:
        raise ArmadaError(f"{run_dir} is not a generative run: --task, --limit and --max-new-tokens are for runs trained "
                          "with --objective lm")
    return evaluate_run(run_dir, split=split or "validation", data_dir=data_dir, aligner=aligner,
                        file_tasks=file_tasks, cache=cache).summary()


def is_generative_run(run_dir: str | Path) -> bool:
    """Whether the run trained a generative student (its objective says: armada.objectives); False where its record
    is missing or unreadable (evaluate_run then says what is wrong with the folder)."""
    try:
        record = RunFolder(run_dir).read_record()
    except (OSError, ArmadaError):
        return False
    return record is not None and declaration(record.objective).generative


def generative_summary(record: GenerationRecord) -> str:
    scores = ", ".join(f"{k} {v:.4f}" for k, v in record.scores.items())
    path = RunFolder(record.run).generation_path(record.task, record.split)
    return (f"{record.run} on {record.task} {record.split} ({record.examples} examples, greedy, up to "
            f"{record.decoding['max_new_tokens']} new tokens): {scores} → {path}")


def default_generation_split(task: Task, own: bool) -> str:
    """The split a generative run is scored on: its own task's validation split, else the test split, else the only one."""
    return "validation" if own and "validation" in task.splits else "test" if "test" in task.splits else task.splits[0]


GENERATION_BATCH = 8                    # prompts per generate call: a speed setting, not a result one (eval.generation)


def evaluate_generative(run_dir: str | Path, task: str | None = None, split: str | None = None, data_dir: str | None = None,
                        limit: int = 0, *, max_new_tokens: int | None = None, batch_size: int = GENERATION_BATCH,
                        file_tasks: Mapping[str, FileTask] | None = None) -> GenerationRecord:
    """Score a generative run's saved student by generating; returns the record it writes to the run folder.

    `task` None is the run's own task, on its validation split with the run's validation limit;
    any other generation task is scored zero-shot, on `split` (default: its test split, else its
    only one) from `data_dir` (default: the run's). `limit` keeps the first N rows (0: the default
    rows). `max_new_tokens` None is the task's own budget (256 for instruction and math sets, 32
    for commonsense ones, as their sources)."""
    from dataclasses import asdict

    from armada.distill.model import load_causal_student
    from armada.eval.generation import Decoding
    from armada.eval.generative import score_split

    run_dir = Path(run_dir)
    started = time.time()
    folder = RunFolder(run_dir)
    info, settings = folder.read_finished()
    if not declaration(info.objective).generative:
        raise ArmadaError(f"{run_dir} trained a {info.task} student with the {info.objective} objective: it has no text to score; "
                          "drop --task and --limit (armada eval scores it by its classes)")
    name = task or info.task
    if name.startswith("file:") and name[5:] not in (file_tasks or {}):
        raise ArmadaError(f"the task {name} is defined by a [tasks.{name[5:]}] table in a pipeline file; give that file with --config")
    scored = get_task(name, file_tasks)
    if scored.kind != "generation":
        raise ArmadaError(f"{scored.name} is a {scored.kind} task; a generative student is scored on generation tasks "
                          "(instruct/..., reasoning/...)")
    own = scored.name == info.task
    split = split or default_generation_split(scored, own)
    if not limit and own and split == "validation":
        limit = settings.validation_limit
    examples = scored.load(split, data_dir=settings.data_dir if data_dir is None else data_dir, limit=limit)
    model, tokenizer, student = load_causal_student(run_dir)
    model.to(_device())
    decoding = Decoding(max_new_tokens=max_new_tokens or scored.max_new_tokens, num_beams=1, batch_size=batch_size)
    result = score_split(examples, model, tokenizer, decoding, style=student.prompt_style)
    record = GenerationRecord(
        run=str(run_dir), task=scored.name, split=split, metric=result.metric, scores=result.scores,
        examples=len(examples), trained_on=info.task, data=examples.source, limit=limit,
        decoding={**asdict(decoding), "do_sample": False}, prompt_style=student.prompt_style, student=student.saved,
        seconds=round(time.time() - started, 3))
    folder.write_generation(record, ({**asdict(prediction), "references": list(example.references)}
                                     for example, prediction in zip(examples.examples, result.predictions)))
    return record


def _labels(split: Split) -> list | None:
    labels = split.labels
    missing = sum(label is None for label in labels)
    if missing == len(labels):
        return None
    if missing:
        raise ArmadaError(f"{split.task.name} {split.name} ({split.source}): {missing} of {len(labels)} rows have no label; "
                          "a split is scored only when every row is labeled")
    return labels


def _batch_size(settings: RunSettings) -> int:
    from armada.config import DistillConfig

    return int(settings.distill.get("eval_batch_size", DistillConfig.eval_batch_size))


def _device():
    import torch

    return torch.accelerator.current_accelerator() if torch.accelerator.is_available() else torch.device("cpu")
