"""Generative students (`objective = "lm"`): a causal LM fine-tuned on prompt → response, aligned to a
TS Aligner that learns the teacher's vectors by reconstructing them.

Losses (the paper's §3 for a student without class outputs; §4 for the aligner of generative tasks):
  L_t = MSE(R_ts(p_ts), h_t)                    the aligner, from the teacher vectors alone
  L_s = L_LM + β·L_manifold(p_ts, p_s)          the student
L_LM is the cross-entropy of the response tokens, averaged over the batch's response tokens (the
prompt and padding carry no loss: armada.distill.lm_data). p_s = P_s(F̃_s(h_s)), h_s the last
layer's state at the prompt's last token; p_ts = P_ts(F̃_ts(h_t)); L_manifold is eq. 3, 4 or 5
(`manifold`), with p_ts a constant for the student. Eq. 2 has no counterpart: neither side has
class logits, so α, τ and the soft-loss form (logit matching) and γ (the auxiliary outputs O_aux)
have no role. The config refuses values other than their defaults; the defaults are ignored and
run.json lists them under "unused_settings".

Schedule: with `aligner_pretrain_epochs` = 0 the aligner and the student train together at every
step (online, as for NLU); with N > 0 the aligner trains alone for N epochs first (the paper's
"pre-trained using reconstruction loss"), then stays fixed while the student trains.
`aligner = "frozen-random"` keeps a random aligner; `undistilled` is this same recipe without the
aligner and the cache.

The student: LoRA (`lora_r`; 8 for "lm" by default, armada.distill.build) on the causal LM, F̃_s
and P_s fully trained. After each epoch the student's validation LM loss (mean NLL per response
token over the whole validation split) is its dev score, and the best epoch is the one with the
lowest. A task without a validation split (reasoning/math-train) has no dev score; its last epoch
is kept. The kept student is saved with save_pretrained, LoRA merged, or the adapter alone with
`save_adapter` (armada.distill.model). Scoring generated text (RougeL, answer accuracy) is
`armada eval`'s job (armada.eval.evaluate.evaluate_generative): generating costs far more than a loss.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from armada.config import LM_UNUSED, DistillConfig
from armada import run_schema
from armada.distill import checkpoint
from armada.distill.build import adamw, build_lm_student, build_reconstruction_aligner, lr_schedule
from armada.distill.data import epoch_batches, process_share
from armada.distill.lm_data import LMCollator, encode_lm
from armada.distill.loop import TrainingLoop, reseed
from armada.distill.model import save_best
from armada.distill.losses import manifold_loss
from armada.distill.inputs import RunResult, finished_run, open_inputs, versions
from armada.distill.teacher_features import load_teacher_features
from armada.errors import ArmadaError
from armada.tasks import Task

DEV_METRIC = "lm_loss"                          # lower is better
SUMMARY_PARTS = ("loss_s", "lm", "manifold", "loss_t")


class LMTrainingLoop(TrainingLoop):
    """The epoch loop of armada.distill.loop with the losses of a generative student."""

    def _losses(self, batch, phase: str) -> dict[str, torch.Tensor]:
        losses = {}
        aligner_out = self._aligner_outputs(batch, phase)
        if aligner_out is not None and phase != "student":
            reconstruction = F.mse_loss(aligner_out[1].float(), batch.features)
            losses.update(loss_t=reconstruction, reconstruction=reconstruction)
        if phase == "aligner":
            return losses
        nll, count, p_s = self.student(batch, project=aligner_out is not None)
        lm = nll / count
        losses["lm"] = lm
        if aligner_out is None:
            losses["loss_s"] = lm
            return losses
        manifold = manifold_loss(self.config.manifold, aligner_out[0].detach(), p_s, self.config.manifold_form)
        losses.update(manifold=manifold, loss_s=lm + self.config.beta * manifold)
        return losses


def train_lm(config: DistillConfig, task: Task, cache_path: str | None, data_dir: str, out_dir: str | Path,
             resume: bool = False, variant: str | None = None, *, train_limit: int | None = None,
             validation_limit: int | None = None, template: str | None = None) -> RunResult:
    """Train one generative student; armada.distill.train.train calls this for `objective = "lm"`."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    if task.kind != "generation":
        raise ArmadaError(f'{task.name} is a {task.kind} task; objective "lm" trains generation tasks '
                          "(instruct/..., reasoning/...): drop --objective lm")
    out = Path(out_dir)
    folder = run_schema.RunFolder(out)
    finished = finished_run(folder, resume)
    if finished is not None:
        return finished
    distilled = not config.undistilled
    # Inputs first: every problem with them is reported before anything is written.
    reader, limits, template = open_inputs(config, task, cache_path, train_limit, validation_limit, template)
    names = ("train", "validation") if "validation" in task.splits else ("train",)
    splits = {s: task.load(s, data_dir=data_dir, limit=limits[s], template=template) for s in names}
    settings = run_schema.settings_text(config, task.name, data_dir, limits, template)
    folder.check_out(resume, settings)
    teacher = load_teacher_features(reader, splits["train"], splits.get("validation")) if distilled else None
    reseed(config.seed, 0, 0)           # the same initial weights in every process
    student, tokenizer = build_lm_student(config, task)
    aligner = build_reconstruction_aligner(config, teacher.dim) if distilled else None
    encoded = {s: encode_lm(tokenizer, split, config.max_length, student.info.prompt_style) for s, split in splits.items()}
    train_data = encoded["train"]
    if config.batch_size > len(train_data):
        raise ArmadaError(f"--batch-size {config.batch_size} is larger than the {len(train_data)} training examples "
                          f"of {task.name} that fit in --max-length {config.max_length}; use a smaller batch")

    AcceleratorState._reset_state()     # `armada run` calls train() many times in one process
    accelerator = Accelerator(cpu=not torch.accelerator.is_available(), mixed_precision=config.mixed_precision)
    main = accelerator.is_main_process
    accelerator.wait_for_everyone()     # every process has checked --out before the main one writes there
    if main:
        folder.write_settings(settings)
        for name, data in encoded.items():
            if data.left_out or data.truncated:
                print(f"{task.name} {name}: {len(data.left_out)} example(s) left out (prompt of {config.max_length} "
                      f"tokens or more), {data.truncated} response(s) cut at {config.max_length} tokens", flush=True)
    collate_train = LMCollator(tokenizer, train_data, teacher.train if teacher else None)
    collate_dev = LMCollator(tokenizer, encoded["validation"]) if "validation" in encoded else None

    processes, index = accelerator.num_processes, accelerator.process_index
    batches_per_epoch = math.ceil(math.ceil(len(train_data) / config.batch_size) / processes)
    steps_per_epoch = math.ceil(batches_per_epoch / config.gradient_accumulation_steps)
    trained_aligner = aligner is not None and config.aligner == "trained"
    pretraining = trained_aligner and config.aligner_pretrain_epochs > 0
    optimizers = {"student": adamw(student, config.lr, config.weight_decay)}
    if trained_aligner and not pretraining:
        optimizers["aligner"] = adamw(aligner, config.aligner_lr, config.weight_decay)
    schedulers = {name: lr_schedule(o, config, steps_per_epoch * config.epochs) for name, o in optimizers.items()}
    student, optimizers["student"] = accelerator.prepare(student, optimizers["student"])
    pretrain_optimizer = None
    if "aligner" in optimizers:
        aligner, optimizers["aligner"] = accelerator.prepare(aligner, optimizers["aligner"])
    elif pretraining:
        aligner, pretrain_optimizer = accelerator.prepare(aligner, adamw(aligner, config.aligner_lr, config.weight_decay))
    elif aligner is not None:
        aligner = aligner.to(accelerator.device)
    plain_student = accelerator.unwrap_model(student)
    plain_aligner = accelerator.unwrap_model(aligner) if aligner is not None else None

    fingerprints = {name: split.fingerprint() for name, split in splits.items()}
    fingerprints["cache"] = teacher.provenance["config_hash"] if teacher else None
    progress = {"best_epoch": 0, "best_dev": None, "seconds": 0.0, "steps": 0, "fingerprints": fingerprints,
                "aligner_pretraining": []}
    done = 0
    newest = checkpoint.newest(folder.checkpoints) if resume else None
    if newest is not None:
        state = checkpoint.restore(newest, plain_student, plain_aligner, optimizers, schedulers)
        if state["progress"]["fingerprints"] != fingerprints:
            raise ArmadaError(f"{out}: the data or cache differ from those the interrupted run trained on; "
                              "resume with the same data, limits and cache, or start a new --out")
        progress, done = state["progress"], state["epoch"]
    record = _Record(config, task, variant, processes, teacher, encoded, plain_student.info.prompt_style)
    if main:
        folder.keep_epochs(done)
        if done:
            print(f"resuming {out} after epoch {done}", flush=True)
        folder.write_record(record(progress, "running"))

    if pretraining and done == 0:
        _pretrain_aligner(accelerator, config, student, aligner, pretrain_optimizer, collate_train, progress,
                          steps_per_epoch, len(train_data))

    loop = LMTrainingLoop(accelerator, config, task.kind, student, aligner, optimizers, schedulers, collate_train)
    for epoch in range(done + 1, config.epochs + 1):
        started = time.time()
        reseed(config.seed, epoch, index)
        batches = process_share(
            epoch_batches(len(train_data), config.batch_size, config.seed, epoch,
                          train_data.lengths if config.group_by_length else None), index, processes)
        parts = loop.epoch(epoch, batches)
        dev = {DEV_METRIC: dev_lm_loss(accelerator, student, collate_dev, config.eval_batch_size)} if collate_dev else {}
        aligner_dev = None
        if aligner is not None and teacher.validation is not None:
            aligner_dev = {"reconstruction_mse": dev_reconstruction(accelerator, aligner, teacher.validation,
                                                                    len(splits["validation"]), config.eval_batch_size)}
        progress["steps"] += len(batches)
        # Without a validation split every epoch "improves": the last one is kept.
        improved = not dev or progress["best_dev"] is None or dev[DEV_METRIC] < progress["best_dev"]
        if improved:
            progress["best_epoch"], progress["best_dev"] = epoch, dev.get(DEV_METRIC)
        if main:
            if improved:
                save_best(folder, plain_student, tokenizer, plain_aligner, task.kind)
            seconds = time.time() - started
            progress["seconds"] += seconds
            folder.append_epoch(run_schema.EpochRecord(epoch, parts, dev, aligner_dev, round(seconds, 3)))
            saved = checkpoint.save(folder.checkpoints, epoch, plain_student, plain_aligner, optimizers, schedulers, progress)
            checkpoint.prune(folder.checkpoints, keep=saved)
            print(_summary(epoch, config.epochs, parts, dev, aligner_dev, progress, seconds), flush=True)
        accelerator.wait_for_everyone()

    steps = accelerator.gather(torch.tensor([progress["steps"]], device=accelerator.device)).tolist()
    if main:
        folder.write_record(record(progress, "finished", steps))
    accelerator.wait_for_everyone()
    accelerator.end_training()          # leaves the process group: a launched process that exits inside it can abort
    if reader is not None:
        reader.close()
    return RunResult(out, task.name, DEV_METRIC if collate_dev else "", progress["best_epoch"], progress["best_dev"],
                     config.epochs, round(progress["seconds"], 3), "finished")


def _pretrain_aligner(accelerator, config: DistillConfig, student, aligner, optimizer, collate, progress: dict,
                      steps_per_epoch: int, count: int) -> None:
    """`aligner_pretrain_epochs` epochs of L_t alone; their losses go to run.json (metrics.jsonl holds student epochs)."""
    epochs = config.aligner_pretrain_epochs
    scheduler = lr_schedule(optimizer, config, steps_per_epoch * epochs)
    loop = LMTrainingLoop(accelerator, config, "generation", student, aligner, {"aligner": optimizer},
                          {"aligner": scheduler}, collate)
    reseed(config.seed, 0, accelerator.process_index)
    rng = np.random.default_rng([config.seed, 0])     # student epochs draw their orders from [seed, epoch >= 1]
    for epoch in range(1, epochs + 1):
        started = time.time()
        order = rng.permutation(count)
        batches = [order[i:i + config.batch_size] for i in range(0, count, config.batch_size)]
        parts = loop.aligner_epoch(f"aligner pre-training {epoch}/{epochs}",
                                   process_share(batches, accelerator.process_index, accelerator.num_processes))
        seconds = time.time() - started
        progress["aligner_pretraining"].append({"epoch": epoch, "train": parts, "seconds": round(seconds, 3)})
        if accelerator.is_main_process:
            print(f"aligner pre-training {epoch}/{epochs}  loss_t {parts['loss_t']:.4f}  {seconds:.1f} s", flush=True)


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


class _Record:
    """run.json of a generative run."""

    def __init__(self, config: DistillConfig, task: Task, variant, processes: int, teacher, encoded: dict, prompt_style: str):
        self.config, self.task, self.variant, self.processes, self.teacher = config, task, variant, processes, teacher
        self.prompt_style = prompt_style
        self.examples = {name: {"kept": len(data), "left_out": len(data.left_out), "responses_cut": data.truncated}
                         for name, data in encoded.items()}

    def __call__(self, progress: dict, status: str, steps: list[int] | None = None) -> run_schema.RunRecord:
        config = self.config
        return run_schema.RunRecord(
            task=self.task.name, student=config.student, seed=config.seed,
            metric=DEV_METRIC if "validation" in self.examples else "", status=status, undistilled=config.undistilled,
            objective="lm", variant=self.variant, best_epoch=progress["best_epoch"], best_dev=progress["best_dev"],
            epochs=config.epochs, seconds=round(progress["seconds"], 3), processes=self.processes,
            cache=self.teacher.provenance if self.teacher else None, versions=versions(), steps_per_process=steps,
            details={"prompt_style": self.prompt_style, "examples": self.examples,
                     "aligner_pretraining": progress.get("aligner_pretraining", []),
                     "unused_settings": {k: getattr(config, k) for k in LM_UNUSED}})


def _summary(epoch, epochs, parts, dev, aligner_dev, progress, seconds) -> str:
    losses = "  ".join(f"{k} {parts[k]:.4f}" for k in SUMMARY_PARTS if k in parts)
    text = f"epoch {epoch}/{epochs}  {losses}"
    if dev:
        text += f"  dev {DEV_METRIC} {dev[DEV_METRIC]:.4f} (best {progress['best_dev']:.4f} at epoch {progress['best_epoch']})"
    if aligner_dev is not None:
        text += f"  aligner dev reconstruction_mse {aligner_dev['reconstruction_mse']:.4f}"
    return text + f"  {seconds:.1f} s"
