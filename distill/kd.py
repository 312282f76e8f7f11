"""Hinton KD (`objective = "kd"`): the task objective plus a text teacher's soft targets (Hinton et al., 2015).

  L_s = (1 − kd_alpha)·L + kd_alpha·τ²·KL(softmax(z_t/τ) ‖ softmax(o_s/τ))

z_t are the teacher's logits for the training example, read from a KD cache (a text teacher's
[pooled state | logits] rows: `armada extract --teacher run:PATH`, armada.extract.text), refused
unless the teacher answers this very task with its labels in the task's order
(armada.cache_schema.kd). L is the task loss L_T with `undistilled` (KD alone, the paper's Table 7
and Table 11 baselines), or ARMADA's whole L_s with a multimodal cache beside it (both teachers
at once). For regression the KD term is the mean squared difference of the scores
(armada.distill.losses.kd_loss). The soft targets are read once, before anything is written, so a
wrong or damaged cache is refused at the start. Batches, dev scores and the best epoch are the
task objective's; the KD term takes its share of the loss balance beside the others.
"""

from __future__ import annotations

import numpy as np

from armada.distill.loop import gradient_shares
from armada.distill.losses import kd_loss
from armada.distill.training_data import TrainingData
from armada.distill.task import TaskObjective
from armada.distill.teacher_features import open_cache
from armada.errors import ArmadaError
from armada.tasks import Split


class KDObjective(TaskObjective):
    name = "kd"

    def check(self, splits: dict[str, Split]) -> None:
        super().check(splits)
        self.targets, self.teacher = kd_targets(self.config.kd_cache, self.task, splits["train"])

    def data(self, tokenizer, student, splits: dict[str, Split], teacher) -> TrainingData:
        data = super().data(tokenizer, student, splits, teacher)
        data.train.targets = self.targets
        return data

    def student_losses(self, student, batch, aligner_outputs) -> dict:
        weight = self.config.kd_alpha
        losses, terms, out = self.student_terms(student, batch, aligner_outputs)
        kd = kd_loss(self.task.kind, batch.targets, out.outputs, self.config.tau)
        terms = {name: (1 - weight) * term for name, term in terms.items()} | {"kd": weight * kd}
        losses.update({"loss_s": (1 - weight) * losses["loss_s"] + weight * kd, "kd": kd})
        losses.update(gradient_shares(terms, out.states))
        return losses

    def record_details(self) -> dict:
        return {"kd_teacher": self.teacher}


def kd_targets(path: str, task, train: Split) -> tuple[np.ndarray, dict]:
    """(the teacher's logits [n, width] for every training example, in the split's order; what the run's
    record says of the KD cache), after refusing a cache that does not answer `task`."""
    from armada.cache_schema.kd import check_kd_cache, nonfinite_parts

    where = f"the KD cache {path} (distill.kd_cache)"
    reader = open_cache(path)
    try:
        manifest = reader.manifest
        logits = check_kd_cache(manifest, task, where)
        if "train" not in manifest.dataset.splits:
            raise ArmadaError(f"{where} has no train split (it has {sorted(manifest.dataset.splits)}); extract the "
                              f"teacher's logits for the training rows: armada extract --split train ...")
        features = reader.load("train", train.ids, train.teacher_hashes_for(manifest.extraction.teacher_template))
        rows = np.asarray(features[np.arange(len(train))], dtype=np.float32)
    finally:
        reader.close()
    bad = nonfinite_parts(logits, rows)
    if bad:
        raise ArmadaError(f"{where} holds non-finite values in {bad}; re-extract it (`armada cache verify` lists the rows)")
    provenance = {"path": path, "config_hash": manifest.config_hash, "teacher": manifest.teacher.name,
                  "source": manifest.teacher.provenance}
    return np.ascontiguousarray(rows[:, logits.columns["logits"]]), provenance
