"""The generative objective (`objective = "lm"`): a causal LM fine-tuned on prompt → response, aligned to
a TS Aligner that learns the teacher's vectors by reconstructing them; the recipe of
armada.distill.recipe with these losses, this dev score and this record.

Losses (the paper's §3 for a student without class outputs; §4 for the aligner of generative tasks):
  L_t = MSE(R_ts(p_ts), h_t)                    the aligner, from the teacher vectors alone
  L_s = L_LM + β·L_manifold(p_ts, p_s)          the student
L_LM is the cross-entropy of the response tokens, averaged over the batch's response tokens (the
prompt and padding carry no loss: armada.distill.lm_data). p_s = P_s(F̃_s(h_s)), h_s the last
layer's state at the prompt's last token; p_ts = P_ts(F̃_ts(h_t)); L_manifold is eq. 3, 4 or 5
(`manifold`), with p_ts a constant for the student. Eq. 2 has no counterpart: neither side has
class logits, so α, τ and the soft-loss form (logit matching) and γ (the auxiliary outputs O_aux)
have no role. The config refuses values other than their defaults; the defaults are ignored and
the run's record lists them under "unused_settings".

Schedule: with `aligner_pretrain_epochs` = 0 the aligner and the student train together at every
step (online, as for NLU); with N > 0 the aligner trains alone for N epochs first (the paper's
"pre-trained using reconstruction loss"), then stays fixed while the student trains.
`aligner = "frozen-random"` keeps a random aligner; `undistilled` is this same recipe without the
aligner and the cache. SeqKD (`seqkd_cache`, Kim & Rush 2016): the training responses are a teacher
LM's own greedy ones (armada.cache_schema.sequences), read and checked before anything is written;
with `undistilled` that is SeqKD alone, with a cache ARMADA and SeqKD together. The validation
split keeps its references, so the dev score measures the task, not agreement with the teacher.

The student: LoRA (`lora_r`; 8 for "lm" by default, armada.distill.build) on the causal LM, F̃_s
and P_s fully trained. After each epoch the student's validation LM loss (mean NLL per response
token over the whole validation split) is its dev score, and the best epoch is the one with the
lowest. A task without a validation split (reasoning/math-train) has no dev score; its last epoch
is kept. The kept student is saved with save_pretrained, LoRA merged, or the adapter alone with
`save_adapter` (armada.distill.model). Scoring generated text (RougeL, answer accuracy) is
`armada eval`'s job (armada.eval.evaluate.evaluate_generative): generating costs far more than a loss.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from armada.cache_schema.sequences import read_sequences
from armada.config import DistillConfig
from armada.distill.build import build_lm_student, build_reconstruction_aligner
from armada.distill.lm_data import LMCollator, encode_lm
from armada.distill.losses import manifold_loss
from armada.distill.training_data import TrainingData
from armada.errors import ArmadaError
from armada.objectives import OBJECTIVES
from armada.tasks import Split, Task

DEV_METRIC = "lm_loss"                          # lower is better


class LMObjective:
    name = "lm"
    lower_is_better = True
    prediction_range = None                     # no regression scores to clip

    def __init__(self, config: DistillConfig, task: Task):
        if task.kind != "generation":
            raise ArmadaError(f'{task.name} is a {task.kind} task; objective "lm" trains generation tasks '
                              "(instruct/..., reasoning/...): drop --objective lm")
        self.config, self.task = config, task
        # Without a validation split there is no dev score: every epoch counts as best and the last is kept.
        self.metric = DEV_METRIC if "validation" in task.splits else ""
        self.selection = self.metric
        self.aligner_selection = "reconstruction_mse"

    def splits(self) -> tuple[str, ...]:
        return ("train", "validation") if "validation" in self.task.splits else ("train",)

    def check(self, splits: dict[str, Split]) -> None:
        """Rows that cannot be trained on are left out, and said, once encoded (data). With seqkd_cache, the
        teacher's responses are read now, so a cache that does not answer these very prompts is refused first."""
        self.seqkd = None
        if self.config.seqkd_cache:
            self.seqkd = read_sequences(self.config.seqkd_cache, self.task, splits["train"])

    def build(self, teacher_dim: int | None):
        student, tokenizer = build_lm_student(self.config, self.task)
        aligner = build_reconstruction_aligner(self.config, teacher_dim) if teacher_dim is not None else None
        return student, tokenizer, aligner

    def data(self, tokenizer, student, splits: dict[str, Split], teacher) -> TrainingData:
        config = self.config
        if self.seqkd is not None:
            splits = {**splits, "train": self.seqkd[0]}     # SeqKD: the teacher's responses are the targets
        self.prompt_style = student.info.prompt_style
        self.encoded = {s: encode_lm(tokenizer, split, config.max_length, self.prompt_style) for s, split in splits.items()}
        self.dev = LMCollator(tokenizer, self.encoded["validation"]) if "validation" in self.encoded else None
        notes = [f"{self.task.name} {name}: {len(data.left_out)} example(s) left out (prompt of {config.max_length} "
                 f"tokens or more), {data.truncated} response(s) cut at {config.max_length} tokens"
                 for name, data in self.encoded.items() if data.left_out or data.truncated]
        return TrainingData(LMCollator(tokenizer, self.encoded["train"], teacher.train if teacher else None), notes)

    def aligner_losses(self, batch, aligner_outputs) -> dict:
        reconstruction = F.mse_loss(aligner_outputs[1].float(), batch.features)
        return {"loss_t": reconstruction, "reconstruction": reconstruction}

    def student_losses(self, student, batch, aligner_outputs) -> dict:
        nll, count, p_s = student(batch, project=aligner_outputs is not None)
        lm = nll / count
        if aligner_outputs is None:
            return {"lm": lm, "loss_s": lm}
        manifold = manifold_loss(self.config.manifold, aligner_outputs[0].detach(), p_s, self.config.manifold_form)
        return {"lm": lm, "manifold": manifold, "loss_s": lm + self.config.beta * manifold}

    def dev_scores(self, accelerator, student, aligner, teacher):
        batch = self.config.eval_batch_size
        dev = {DEV_METRIC: dev_lm_loss(accelerator, student, self.dev, batch)} if self.dev else {}
        aligner_dev = None
        if aligner is not None and teacher.validation is not None:
            count = len(self.encoded["validation"].split)
            aligner_dev = {"reconstruction_mse": dev_reconstruction(accelerator, aligner, teacher.validation, count, batch)}
        return dev, aligner_dev, {}

    def record_details(self) -> dict:
        examples = {name: {"kept": len(data), "left_out": len(data.left_out), "responses_cut": data.truncated}
                    for name, data in self.encoded.items()}
        seqkd = None if self.seqkd is None else {"path": self.config.seqkd_cache, "teacher": self.seqkd[1]["teacher"]["run"],
                                                 "decoding": self.seqkd[1]["decoding"]}
        return {"prompt_style": self.prompt_style, "examples": examples, "seqkd_teacher": seqkd,
                "unused_settings": {k: getattr(self.config, k) for k in OBJECTIVES[self.name].unused}}


@torch.no_grad()
def dev_lm_loss(accelerator, student, collate: LMCollator, batch_size: int) -> float:
    """Mean NLL per response token over the whole split, each process scoring a share."""
    model = accelerator.unwrap_model(student)
    model.eval()
    order = np.argsort(-collate.encoded.lengths, kind="stable")     # similar lengths together: less padding
    mine = order[accelerator.process_index::accelerator.num_processes]
    nll, count = 0.0, 0
    for start in range(0, len(mine), batch_size):
        batch = collate(mine[start:start + batch_size]).to(accelerator.device)
        with accelerator.autocast():
            batch_nll, batch_count, _ = model(batch)
        nll, count = nll + float(batch_nll), count + int(batch_count)
    totals = torch.tensor([nll, count], dtype=torch.float64, device=accelerator.device)
    if accelerator.num_processes > 1:
        totals = accelerator.reduce(totals, reduction="sum")
    return round(float(totals[0] / totals[1]), 6)


@torch.no_grad()
def dev_reconstruction(accelerator, aligner, features, count: int, batch_size: int) -> float:
    """The aligner's mean squared reconstruction error over `count` teacher vectors (features[positions] → [k, D])."""
    model = accelerator.unwrap_model(aligner)
    model.eval()
    mine = np.arange(count)[accelerator.process_index::accelerator.num_processes]
    total, values = 0.0, 0
    for start in range(0, len(mine), batch_size):
        vectors = torch.from_numpy(np.asarray(features[mine[start:start + batch_size]], dtype=np.float32)).to(accelerator.device)
        total += float((model(vectors)[1].float() - vectors).pow(2).sum())
        values += vectors.numel()
    totals = torch.tensor([total, values], dtype=torch.float64, device=accelerator.device)
    if accelerator.num_processes > 1:
        totals = accelerator.reduce(totals, reduction="sum")
    return round(float(totals[0] / totals[1]), 6)
