"""The task objective (`objective = "task"`): ARMADA on classification, regression and multiple choice
(paper §3), the recipe of armada.distill.recipe with these losses and this dev score.

  L_t = L_T(Y, o_ts) + γ·L_T(Y, o_aux_ts)                                     the TS Aligner (eq. 1)
  L_s = (1−α)·L_T(Y, o_s) + α·soft(o_ts, o_s) + γ·L_T(Y, o_aux_s) + β·L_manifold(p_ts, p_s)
(armada.distill.losses; the aligner's outputs are constants for the student). `undistilled` is the
same student and head with L_T alone; `aligner = "frozen-random"` keeps a randomly initialised
aligner that is never trained; `teacher_noise` adds Gaussian noise to the aligner's inputs.

Every step of a distilled student also measures each term's share of the gradient reaching the
backbone (armada.distill.loop.gradient_shares): the epoch's loss balance. After each epoch the
student (and the aligner, from the teacher's vectors alone) is scored on the validation split by the
task's metric, regression scores clipped to the task's range with `clip_predictions`; the best epoch
is the one with the highest primary score, or with `selection = "authors"` the score the authors'
code selects by (armada.tasks.metrics.selection_score: CB by macro-F1).
"""

from __future__ import annotations

import math

import numpy as np

from armada.config import DistillConfig
from armada.distill.build import build_aligner, build_student, prediction_range
from armada.distill.data import Collator, encode
from armada.distill.loop import aligner_logits, gradient_shares, student_logits
from armada.distill.losses import aligner_losses, student_losses, weighted_terms
from armada.distill.model import predictions_from
from armada.distill.training_data import TrainingData
from armada.errors import ArmadaError
from armada.tasks import OUTPUT_KINDS, Split, Task
from armada.tasks.metrics import compute, primary, selection_score


class TaskObjective:
    name = "task"
    lower_is_better = False

    def __init__(self, config: DistillConfig, task: Task):
        if task.kind == "generation":
            raise ArmadaError(f"{task.name} is a generation task: train a causal LM on it with --objective lm")
        if task.kind not in OUTPUT_KINDS:
            raise ArmadaError(f"{task.name} is a {task.kind} task; armada distill trains {', '.join(OUTPUT_KINDS)} tasks")
        self.config, self.task = config, task
        self.metric = primary(task.metric)
        self.selection = self.aligner_selection = selection_score(task.metric, config.selection)
        self.prediction_range = prediction_range(config, task)     # where regression scores are clipped, or None

    def splits(self) -> tuple[str, ...]:
        return ("train", "validation")

    def check(self, splits: dict[str, Split]) -> None:
        for split in splits.values():
            _check_labels(split)

    def build(self, teacher_dim: int | None):
        student, tokenizer = build_student(self.config, self.task)
        aligner = build_aligner(self.config, self.task, teacher_dim) if teacher_dim is not None else None
        return student, tokenizer, aligner

    def data(self, tokenizer, student, splits: dict[str, Split], teacher) -> TrainingData:
        config, kind = self.config, self.task.kind
        self.validation = splits["validation"]
        handling = student.config.handling()
        self.dev = Collator(tokenizer, encode(tokenizer, self.validation, config.max_length, handling), kind)
        train = encode(tokenizer, splits["train"], config.max_length, handling)
        return TrainingData(Collator(tokenizer, train, kind, teacher.train if teacher else None))

    def aligner_losses(self, batch, aligner_outputs) -> dict:
        o_ts, _, o_aux_ts = aligner_outputs
        return aligner_losses(self.task.kind, batch.labels, o_ts, o_aux_ts, self.config.gamma)

    def student_losses(self, student, batch, aligner_outputs) -> dict:
        losses, terms, out = self.student_terms(student, batch, aligner_outputs)
        if len(terms) > 1:
            losses.update(gradient_shares(terms, out.states))
        return losses

    def student_terms(self, student, batch, aligner_outputs) -> tuple[dict, dict, object]:
        """(L_s and its parts, L_s's terms as they are summed, the student's outputs)."""
        config = self.config
        out = student(batch.inputs, batch.choices, project=aligner_outputs is not None)
        losses = student_losses(self.task.kind, batch.labels, out.outputs, out.projection, out.aux, aligner_outputs,
                                alpha=config.alpha, beta=config.beta, gamma=config.gamma, tau=config.tau,
                                soft_form=config.soft_loss, manifold=config.manifold, manifold_form=config.manifold_form)
        terms = (weighted_terms(losses, alpha=config.alpha, beta=config.beta, gamma=config.gamma)
                 if aligner_outputs is not None else {"task": losses["task"]})
        return losses, terms, out

    def dev_scores(self, accelerator, student, aligner, teacher):
        batch, width = self.config.eval_batch_size, self.task.num_labels   # outputs per example: classes, choices or 1
        dev, predicted = self._score(student_logits(accelerator, student, self.dev, batch, width))
        aligner_dev = None
        if aligner is not None and teacher.validation is not None:
            aligner_dev, _ = self._score(aligner_logits(accelerator, aligner, teacher.validation, batch, width))
        return dev, aligner_dev, {} if predicted is None else {"dev_predicted_classes": predicted}

    def record_details(self) -> dict:
        return {}

    def _score(self, logits: np.ndarray) -> tuple[dict[str, float | None], int | None]:
        """(every score of the task's metric, as fractions, None where undefined (e.g. constant predictions);
        how many distinct classes or choices were predicted, None for regression)."""
        predictions = predictions_from(self.task.kind, logits, self.prediction_range)
        scores = compute(self.task.metric, predictions, self.validation.labels)
        predicted = None if self.task.kind == "regression" else len(np.unique(predictions))
        return {k: (None if math.isnan(v) else round(v, 6)) for k, v in scores.items()}, predicted


def _check_labels(split: Split) -> None:
    task = split.task
    for example in split.examples:
        label = example.label
        if label is None:
            raise ArmadaError(f"{task.name} {split.name}: example {example.id!r} has no label; training and "
                              "validation need labelled rows")
        if task.kind == "regression":
            if not math.isfinite(label):
                raise ArmadaError(f"{task.name} {split.name}: example {example.id!r} has the label {label!r}, not a finite number")
        elif not (isinstance(label, int) and 0 <= label < task.num_labels):
            raise ArmadaError(f"{task.name} {split.name}: example {example.id!r} has the label {label!r}, outside the "
                              f"task's label set {list(task.labels)} (class ids 0..{task.num_labels - 1})")
