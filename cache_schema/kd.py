"""Using a KD cache: a text teacher's logits, refused for a task they do not answer.

A text teacher (armada.extract.text) stores per example [pooled state | logits] and says in the
manifest which task it was trained on and what each logit means (manifest.TeacherLogits). Its
logits are soft targets for a student only where logit i is the student's class i: the same task,
kind and labels in the same order. Anything else would train the student on the wrong classes
without an error, so `check_kd_cache` refuses it, naming every difference.
"""

from __future__ import annotations

import numpy as np

from armada.cache_schema.manifest import Manifest, TeacherLogits
from armada.errors import ArmadaError


def check_kd_cache(manifest: Manifest, task, where: str = "the cache") -> TeacherLogits:
    """The cache's logits, if they answer `task` (an armada.tasks.Task); else ArmadaError naming what differs."""
    logits = manifest.teacher.logits
    if logits is None:
        raise ArmadaError(f"{where} holds {manifest.teacher.name}'s features ({manifest.teacher.kind}), no logits: it is "
                          "not a KD cache; extract one from a text teacher (armada extract --teacher run:PATH ...)")
    differences = []
    if manifest.dataset.task != task.name:
        differences.append(f"its rows are {manifest.dataset.task}'s, not {task.name}'s")
    if logits.task != task.name:
        differences.append(f"its teacher was trained on {logits.task}, not {task.name}")
    if logits.kind != task.kind:
        differences.append(f"its teacher is a {logits.kind} model, {task.name} is a {task.kind} task")
    elif logits.labels != tuple(task.labels):
        differences.append(_label_difference(logits.labels, tuple(task.labels), task.name))
    if differences:
        raise ArmadaError(f"{where} cannot teach {task.name} by its logits: " + "; ".join(differences)
                          + f". Extract a KD cache with a teacher trained on {task.name} "
                          f"(armada extract --teacher run:PATH --dataset {task.name})")
    return logits


def _label_difference(teacher: tuple[str, ...], task: tuple[str, ...], name: str) -> str:
    if sorted(teacher) == sorted(task):
        return (f"its teacher's labels are {name}'s in another order ({', '.join(teacher)} against "
                f"{', '.join(task)}): its logit i is not the task's class i")
    return f"its teacher's labels are {list(teacher)}, {name}'s are {list(task)}"


def nonfinite_parts(logits: TeacherLogits, rows: np.ndarray) -> str:
    """Which parts of these feature rows hold a NaN or inf: "the logits", "the pooled state", or both."""
    parts = [name for name, columns in (("the pooled state", logits.columns["pooled"]), ("the logits", logits.columns["logits"]))
             if not np.isfinite(rows[:, columns]).all()]
    return " and ".join(parts)
