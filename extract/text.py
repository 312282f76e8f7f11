"""Text teachers: a fine-tuned language model as a KD teacher, read on the student's own input.

The paper's comparisons (Table 7: ARMADA against distillation from BERT-base; Table 11: against
KD and SeqKD) need unimodal teachers, and they go through the same cache as the multimodal ones:
a text teacher's cache is extracted, resumed, verified, packed and shared like any other. Two
families:

- "armada-run" (the name run:PATH): the student of a finished `armada distill` run, e.g. an
  --undistilled run of a larger student, loaded with armada.distill.model.load_student and run
  with its predict(): the very logits and pooled state `armada evaluate` computes.
- "text-classifier": a transformers sequence classifier (AutoModelForSequenceClassification), a
  hub id or a local folder, e.g. textattack/bert-base-uncased-CoLA. Its settings name the task it
  was fine-tuned on and, where its config does not, what each output means.

Both read each example's student input (armada.tasks: one text or a pair, per choice for multiple
choice), tokenised as the student tokenises it (armada.distill.data.encode), never the lowercased
teacher text the multimodal teachers are given: a teacher fine-tuned on sentence pairs must see
pairs. A row is [pooled state | logits] (armada.cache_schema.TeacherLogits): the pooled state is
what the model's head reads, the logits are one per label (per choice; one for regression).
The model runs in eval mode (no dropout), so a row depends only on its input; padding within a
batch changes it only by float rounding.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from armada.cache_schema import TeacherLogits
from armada.distill.model import heads_config, load_student, predict
from armada.errors import ArmadaError, ConfigError
from armada.extract.settings import ArmadaRunSettings, TextClassifierSettings
from armada.extract.teacher import hub_commit, is_local_path, resolve_device
from armada.files import folder_sha256
from armada.objectives import declaration
from armada.run_schema import RunFolder, RunRecord
from armada.tasks import Split


class ArmadaRunTeacher:
    kind = "armada-run"
    reads_student_input = True

    def __init__(self, name: str, settings: ArmadaRunSettings):
        self.name, self.settings = name, settings
        self.run = Path(settings.run).expanduser()
        self.record = run_record(name, self.run)
        self.device = resolve_device(settings.device)
        model, self.tokenizer, self.heads = load_student(self.run)
        self.model = model.to(self.device)
        self.logits = TeacherLogits(self.heads["task"], self.heads["kind"], tuple(self.heads["labels"]),
                                    self.heads["hidden_size"])
        self.dim = self.logits.pooled_dim + self.logits.width

    def provenance(self) -> dict[str, Any]:
        record = self.record
        return {
            "run": self.settings.run,
            "task": record.task, "student": record.student, "undistilled": bool(record.undistilled),
            "variant": record.variant or "", "seed": record.seed,
            "metric": record.metric, "best_dev": record.best_dev, "best_epoch": record.best_epoch,
            "student_files_sha256": folder_sha256(RunFolder(self.run).student),
            "max_length": self.heads["max_length"], "pooling": self.heads["pooling"],
            "device": torch.device(self.device).type,
            "torch_version": torch.__version__, "transformers_version": version("transformers"),
        }

    def encode_examples(self, split: Split) -> np.ndarray:
        check_inputs(self.name, self.logits, split)
        _, logits, pooled = predict(self.model, self.tokenizer, split, batch_size=len(split))
        return np.concatenate([pooled, logits], axis=1).astype(np.float32)


def run_record(teacher: str, run: Path, generative: bool = False) -> RunRecord:
    """The record of the finished `armada distill` run in `run`, non-generative (a KD teacher) or with `generative`
    an --objective lm run (a SeqKD teacher), or a clear refusal."""
    if not run.is_dir():
        raise ArmadaError(f"teacher {teacher}: {run} is not a folder; give the --out folder of a finished armada distill run")
    folder = RunFolder(run)
    try:
        record = folder.read_record()
    except ArmadaError as e:
        raise ArmadaError(f"teacher {teacher}: {run}: {e}") from None
    if record is None:
        raise ArmadaError(f"teacher {teacher}: {run} has no {folder.record_path.name}: it is not an armada distill run folder "
                          "(give the folder passed to armada distill --out)")
    if not record.finished:
        raise ArmadaError(f"teacher {teacher}: the run in {run} is not finished (status {record.status!r}); "
                          f"finish it first (armada distill ... --out {run} --resume)")
    if generative and not declaration(record.objective).generative:
        raise ArmadaError(f"teacher {teacher}: {run} trained a {record.task} classifier, not a causal LM: a SeqKD "
                          "teacher is an armada distill --objective lm run")
    if not generative and declaration(record.objective).generative:
        raise ArmadaError(f"teacher {teacher}: {run} is a generative run (a causal LM); a KD teacher here is a "
                          "classification, regression or multiple-choice run, and a generative run teaches a "
                          "generation task by its responses (SeqKD: armada extract --dataset instruct/...)")
    return record


class TextClassifierTeacher:
    kind = "text-classifier"
    reads_student_input = True

    def __init__(self, name: str, settings: TextClassifierSettings):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from armada.distill.students import student_kind

        self.name, self.settings = name, settings
        if not settings.model:
            raise ConfigError(f'teacher {name}: set model = "<hub id or folder>" in [teachers.{name}]')
        if not settings.task:
            raise ConfigError(f'teacher {name}: set task = "<the task it was fine-tuned on>" in [teachers.{name}] '
                              "(`armada tasks` lists them); its KD cache teaches only that task")
        self.device = resolve_device(settings.device)
        hf_logging.disable_progress_bar()
        revision = {"revision": settings.revision} if settings.revision else {}
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(settings.model, **revision)
            model, info = AutoModelForSequenceClassification.from_pretrained(
                settings.model, output_loading_info=True, **revision)
        except (OSError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ArmadaError(f"teacher {name}: the sequence classifier {settings.model!r} cannot be loaded ({first}); "
                              "give a folder saved with save_pretrained, or a hub id reachable from here") from None
        if student_kind(model.config) != "encoder":
            raise ArmadaError(f"teacher {name}: {settings.model} is a {model.config.model_type} model, not an encoder; a "
                              "text-classifier teacher is an encoder (BERT-like). Train a causal model as an armada "
                              "student and use it as run:PATH")
        self.model = model.to(self.device).eval()
        # The head reads the pooler's output where the checkpoint trained one (BERT), else the first
        # token's state: the pooled state armada.distill.students gives an encoder student.
        self.pooling = ("pooler" if getattr(model.base_model, "pooler", None) is not None
                        and not any(".pooler." in k or k.startswith("pooler.") for k in info["missing_keys"]) else "cls")
        config = model.config
        kind = "regression" if config.num_labels == 1 else "classification"
        self.logits = TeacherLogits(settings.task, kind, classifier_labels(name, settings, config), config.hidden_size)
        self.dim = self.logits.pooled_dim + self.logits.width

    def provenance(self) -> dict[str, Any]:
        s = self.settings
        found: dict[str, Any] = {
            "model": s.model, "revision": s.revision, "architecture": type(self.model).__name__,
            "task": s.task, "labels": list(self.logits.labels), "max_length": s.max_length, "pooling": self.pooling,
            "device": torch.device(self.device).type,
            "torch_version": torch.__version__, "transformers_version": version("transformers"),
        }
        if is_local_path(s.model):
            found["files_sha256"] = folder_sha256(Path(s.model).expanduser())
        else:
            found["commit"] = hub_commit(s.model, s.revision, "config.json")
        return found

    @torch.no_grad()
    def encode_examples(self, split: Split) -> np.ndarray:
        from armada.distill.data import Collator, encode

        check_inputs(self.name, self.logits, split)
        batch = Collator(self.tokenizer, encode(self.tokenizer, split, self.settings.max_length),
                         self.logits.kind)(np.arange(len(split)))
        inputs = {k: v.to(self.device) for k, v in batch.inputs.items()}
        backbone: list = []
        hook = self.model.base_model.register_forward_hook(lambda module, args, output: backbone.append(output))
        try:
            logits = self.model(**inputs).logits
        finally:
            hook.remove()
        states = backbone[0]
        pooled = states.pooler_output if self.pooling == "pooler" else states.last_hidden_state[:, 0]
        return torch.cat([pooled, logits], dim=1).float().cpu().numpy()


def classifier_labels(teacher: str, settings: TextClassifierSettings, config) -> tuple[str, ...]:
    """What each of the classifier's outputs means: the settings' labels, else its config's named id2label."""
    count = config.num_labels
    if count == 1:
        if settings.labels:
            raise ConfigError(f"teacher {teacher}: {settings.model} has one output, a regression score; remove labels")
        return ()
    if settings.labels:
        if len(settings.labels) != count:
            raise ConfigError(f"teacher {teacher}: labels = {list(settings.labels)} names {len(settings.labels)} "
                              f"outputs, but {settings.model} has {count}")
        return tuple(settings.labels)
    named = tuple(str(config.id2label[i]) for i in range(count))
    if named == tuple(f"LABEL_{i}" for i in range(count)):
        raise ConfigError(f"teacher {teacher}: {settings.model} does not name its {count} outputs (its config says "
                          f"{', '.join(named)}); say what each means, in order, with labels = [...] in "
                          f"[teachers.{teacher}], e.g. the label set of {settings.task} (`armada tasks`)")
    return named


def check_inputs(teacher: str, logits: TeacherLogits, split: Split) -> None:
    """Refuse examples the teacher cannot read: generation prompts, or another number of choices than it scores."""
    task = split.task
    if task.kind == "generation":
        raise ArmadaError(f"teacher {teacher} scores classes; {task.name} is a generation task (sequence-level KD "
                          "is not a text teacher's cache)")
    choices = logits.width if logits.kind == "multiple_choice" else 1
    wrong = next((e for e in split.examples if len(e.inputs) != choices), None)
    if wrong is not None:
        raise ArmadaError(f"teacher {teacher} reads {choices} input(s) per example (a {logits.kind} model of "
                          f"{logits.task}); {task.name} example {wrong.id} has {len(wrong.inputs)}: this {task.kind} "
                          "task cannot be read by this teacher")


def output_dim(settings) -> int:
    """[pooled state | logits] width from the model's files alone (`armada teachers`)."""
    if isinstance(settings, ArmadaRunSettings):
        config = heads_config(Path(settings.run).expanduser())
        return config.hidden_size + config.num_labels
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(settings.model, **({"revision": settings.revision} if settings.revision else {}))
    except (OSError, ValueError) as e:
        raise ArmadaError(f"{settings.model}: {e}") from None
    return config.hidden_size + config.num_labels
