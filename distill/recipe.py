"""The one training recipe: every objective's run, from its inputs to its finished run folder.

`train()` is what `armada distill` and `armada run` call. One run:
  1. checks its inputs before anything is written: the task's splits (the objective says which and
     what it refuses), the teacher's vectors for exactly those examples unless undistilled, the
     settings against those of a run already in the folder;
  2. builds the student and (where the objective has one) the TS Aligner, its batches, two AdamW
     optimizers with their own learning rates and a constant or linear schedule with warmup;
  3. with `aligner_pretrain_epochs`, trains the aligner alone first, then keeps it fixed;
  4. trains `epochs` epochs with Accelerate (one or several processes, mixed precision, gradient
     accumulation) on the `joint` or `alternating` schedule, each optimizer step read top to bottom in
     armada.distill.loop.TrainingLoop.step (batches in, loss terms out, backward, clip, step); after each it
     scores the student and the aligner on the validation split, keeps the best epoch's student in
     the run folder (by the objective's selection score) and the aligner of the same epoch or, with
     `aligner_kept = "own-best"`, of its own best one, records the epoch (losses, dev scores, the
     loss balance) and writes a checkpoint, so an interrupted run resumes exactly where its last
     checkpoint left it;
  5. records the run, with what its epochs warn about (armada.distill.health).
What differs between objectives (the student's losses, the dev score, the record) is the
objective's (armada.distill.objective).

`batch_size` is per process; with P processes and A accumulation steps an optimizer step sees
batch_size × P × A examples. Only the main process writes files; the run's record says the process
count and each process's batches. Several processes: `torchrun --nproc-per-node 2 --no-python armada
distill ...`, or `accelerate launch --multi_gpu --num_processes 2 ...` (on a CPU, `accelerate launch
--cpu --num_processes 2` silently runs one process).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from armada import run_schema
from armada.config import DistillConfig
from armada.distill import checkpoint
from armada.distill.build import adamw, lr_schedule
from armada.distill.data import epoch_batches, process_share
from armada.distill.inputs import RunResult, finished_run, open_inputs, versions
from armada.distill.health import training_warnings
from armada.distill.loop import TrainingLoop, refuse_non_finite_weights, reseed, split_shares
from armada.distill.model import save_best
from armada.distill.objective import objective_for
from armada.distill.students import refuse_long_inputs
from armada.distill.teacher_features import load_teacher_features
from armada.errors import ArmadaError
from armada.files import check_writable_folder
from armada.objectives import declaration
from armada.tasks import Task


def train(config: DistillConfig, task: Task, cache, data_dir: str, out_dir: str | Path,
          resume: bool = False, variant: str | None = None, *, train_limit: int | None = None,
          validation_limit: int | None = None, template: str | None = None) -> RunResult:
    """Train one student; returns where it went and its best validation score.

    `cache`: the teacher's vectors (a path or URL, or a CacheReader open on one; None for the baseline). The limits and the teacher template default to those the cache's splits were extracted with
    (0 and the task's default without a cache). `resume` continues from the newest complete
    checkpoint in `out_dir` (or starts, if there is none; a finished run is returned as it is).
    One process trains a run folder at a time: another that asks for it is refused (armada.run_schema.exclusive).
    """
    check_writable_folder(out_dir, "--out")
    with run_schema.exclusive(Path(out_dir)):
        objective = objective_for(config, task)
        folder = run_schema.RunFolder(out_dir)
        result = finished_run(folder, resume)
        if result is None:
            try:
                result = _train(objective, config, task, data_dir, folder, resume, variant,
                                open_inputs(config, task, cache, train_limit, validation_limit, template))
            except KeyboardInterrupt:
                if folder.stopped("interrupted"):
                    print(f"\ninterrupted: {folder.path} keeps {len(folder.read_epochs())} finished epoch(s); run the "
                          "same command with --resume to go on from there (armada run resumes by itself)", flush=True)
                raise
            except ArmadaError:
                folder.stopped("failed")
                raise
    _leave_process_group()
    return result


def _leave_process_group() -> None:
    """Leave the process group of a launched run (torchrun, accelerate launch) once the run's models are gone.

    The order matters. A DDP wrapper freed after the group is destroyed is the group's last owner: its
    destructor joins gloo's worker threads while holding the GIL, and a worker that still has to free its
    last collective needs the GIL for the tensors in it: both wait forever (seen under load, a rank stuck
    after training). Freed first, while the group is still registered, a wrapper only drops a reference;
    the group is then destroyed from Python, which releases the GIL while the workers finish. Leaving the
    group before exit also keeps those workers out of interpreter shutdown (where they abort the process).
    """
    import gc

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        gc.collect()                    # DDP wrappers caught in reference cycles go now, not after the group
        dist.destroy_process_group()


def _train(objective, config: DistillConfig, task: Task, data_dir: str, folder: run_schema.RunFolder,
           resume: bool, variant: str | None, inputs) -> RunResult:
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    reader, limits, template = inputs
    splits = {s: task.load(s, data_dir=data_dir, limit=limits[s], template=template) for s in objective.splits()}
    objective.check(splits)
    settings = run_schema.settings_text(config, task.name, data_dir, limits, template)
    folder.check_out(resume, settings)
    teacher = (load_teacher_features(reader, splits["train"], splits.get("validation"))
               if not config.undistilled else None)
    reseed(config.seed, 0, 0)           # the same initial weights in every process
    student, tokenizer, aligner = objective.build(teacher.dim if teacher else None)
    refuse_long_inputs(config.max_length, config.student, student.backbone.config, tokenizer)
    data = objective.data(tokenizer, student, splits, teacher)
    examples = len(data.train.encoded)
    if config.batch_size > examples:
        raise ArmadaError(f"--batch-size {config.batch_size} is larger than the {examples} training examples of "
                          f"{task.name} it can train on; use a batch size of at most {examples}")

    AcceleratorState._reset_state()     # `armada run` calls train() many times in one process
    accelerator = Accelerator(cpu=not torch.accelerator.is_available(), mixed_precision=config.mixed_precision)
    main = accelerator.is_main_process
    accelerator.wait_for_everyone()     # every process has checked --out before the main one writes there
    if main:
        folder.write_settings(settings)
        for note in data.notes:
            print(note, flush=True)

    processes = accelerator.num_processes
    steps_per_epoch = math.ceil(math.ceil(math.ceil(examples / config.batch_size) / processes)
                                / config.gradient_accumulation_steps)
    student, aligner, optimizers, schedulers, pretrain_optimizer = _optimizers(accelerator, config, student, aligner,
                                                                               steps_per_epoch)
    plain_student = accelerator.unwrap_model(student)
    plain_aligner = accelerator.unwrap_model(aligner) if aligner is not None else None

    progress, done = _resume(folder, resume, splits, teacher, plain_student, plain_aligner, optimizers, schedulers)

    if main:
        folder.keep_epochs(done)        # lines of an epoch whose checkpoint was not finished
        if done:
            print(f"resuming {folder.path} after epoch {done}", flush=True)
        folder.write_record(_run_record("running", objective, config, task, variant, progress, processes, teacher))

    if pretrain_optimizer is not None and done == 0:
        _pretrain_aligner(accelerator, config, objective, student, aligner, pretrain_optimizer, data.train, progress,
                          steps_per_epoch, examples)

    loop = TrainingLoop(accelerator, config, objective, student, aligner, optimizers, schedulers, data.train)
    for epoch in range(done + 1, config.epochs + 1):
        started = time.time()
        reseed(config.seed, epoch, accelerator.process_index)
        lengths = data.train.encoded.lengths if config.group_by_length else None
        batches, aligner_batches = (
            process_share(epoch_batches(examples, config.batch_size, config.seed, epoch, lengths, phase),
                          accelerator.process_index, processes)
            for phase in (0, 1 if config.reshuffle_per_phase else 0))
        parts, balance = split_shares(loop.epoch(epoch, batches, aligner_batches))
        refuse_non_finite_weights(f"epoch {epoch}/{config.epochs}", {"student": plain_student, "aligner": plain_aligner})
        dev, aligner_dev, diagnostics = objective.dev_scores(accelerator, student, aligner, teacher)
        progress["steps"] += len(batches)
        improved = _improved(objective, objective.selection, dev, progress["best_epoch"],
                             progress.get("best_selection", progress["best_dev"]))
        if improved:
            progress["best_epoch"], progress["best_dev"] = epoch, dev.get(objective.metric)
            progress["best_selection"] = dev.get(objective.selection)
        # With aligner_kept = "own-best" the aligner is saved at its own best dev epoch (the authors keep theirs so,
        # trainer_superglue.py 221-236 and 357); else with the student of its best epoch.
        own_best = config.aligner_kept == "own-best" and aligner_dev is not None
        aligner_improved = own_best and _improved(objective, objective.aligner_selection, aligner_dev,
                                                  progress.get("aligner_best_epoch", 0), progress.get("aligner_best_selection"))
        if aligner_improved:
            progress["aligner_best_epoch"] = epoch
            progress["aligner_best_selection"] = aligner_dev.get(objective.aligner_selection)
        if main:
            if improved or aligner_improved:
                kept_aligner = aligner_improved if own_best else improved
                save_best(folder, plain_student if improved else None, tokenizer,
                          plain_aligner if kept_aligner else None, task.kind, objective.prediction_range)
            seconds = time.time() - started
            progress["seconds"] += seconds
            folder.append_epoch(run_schema.EpochRecord(epoch, parts, dev, aligner_dev, round(seconds, 3), balance,
                                                       diagnostics))
            saved = checkpoint.save(folder.checkpoints, epoch, plain_student, plain_aligner, optimizers, schedulers, progress)
            checkpoint.prune(folder.checkpoints, keep=saved)
            print(_summary(epoch, config, parts, objective.metric, dev, aligner_dev, progress, seconds), flush=True)
        accelerator.wait_for_everyone()

    steps = accelerator.gather(torch.tensor([progress["steps"]], device=accelerator.device)).tolist()
    if main:
        warnings = training_warnings(folder.read_epochs(), progress["best_epoch"])
        for warning in warnings:
            print(f"warning: {warning}", flush=True)
        folder.write_record(_run_record("finished", objective, config, task, variant, progress, processes, teacher,
                                        steps, warnings))
    accelerator.wait_for_everyone()
    if reader is not None:
        reader.close()
    return RunResult(folder.path, task.name, objective.metric, progress["best_epoch"], progress["best_dev"],
                     config.epochs, round(progress["seconds"], 3), "finished")


def _resume(folder: run_schema.RunFolder, resume: bool, splits: dict, teacher, student, aligner, optimizers: dict,
            schedulers: dict) -> tuple[dict, int]:
    """(the run's progress, the epochs finished before this call): a fresh start, or, with `resume`, the newest
    complete checkpoint restored into the models, optimizers and schedules, refused where its data or cache differ."""
    fingerprints = {name: split.fingerprint() for name, split in splits.items()}
    fingerprints["cache"] = teacher.provenance["config_hash"] if teacher else None
    progress = {"best_epoch": 0, "best_dev": None, "seconds": 0.0, "steps": 0, "fingerprints": fingerprints,
                "aligner_pretraining": []}
    newest = checkpoint.newest(folder.checkpoints) if resume else None
    if newest is None:
        return progress, 0
    state = checkpoint.restore(newest, student, aligner, optimizers, schedulers)
    if state["progress"]["fingerprints"] != fingerprints:
        raise ArmadaError(f"{folder.path}: the data or cache differ from those the interrupted run trained on; "
                          "resume with the same data, limits and cache, or start a new --out")
    return state["progress"], state["epoch"]


def _optimizers(accelerator, config: DistillConfig, student, aligner, steps_per_epoch: int):
    """(student, aligner, optimizers, schedulers, the aligner's pre-training optimizer or None), the models as
    accelerator.prepare returned them: an AdamW and a schedule for the student and for an aligner trained with it;
    an aligner pre-trained alone gets its optimizer here and its schedule when it trains (_pretrain_aligner)."""
    pretraining = aligner is not None and config.aligner == "trained" and config.aligner_pretrain_epochs > 0
    optimizers = {"student": adamw(student, config.lr, config.weight_decay, config.weight_decay_on)}
    if aligner is not None and config.aligner == "trained" and not pretraining:
        optimizers["aligner"] = adamw(aligner, config.aligner_lr, config.weight_decay, config.weight_decay_on)
    schedulers = {name: lr_schedule(o, config, steps_per_epoch * config.epochs) for name, o in optimizers.items()}
    student, optimizers["student"] = accelerator.prepare(student, optimizers["student"])
    pretrain_optimizer = None
    if "aligner" in optimizers:
        aligner, optimizers["aligner"] = accelerator.prepare(aligner, optimizers["aligner"])
    elif pretraining:
        aligner, pretrain_optimizer = accelerator.prepare(
            aligner, adamw(aligner, config.aligner_lr, config.weight_decay, config.weight_decay_on))
    elif aligner is not None:
        aligner = aligner.to(accelerator.device)
    return student, aligner, optimizers, schedulers, pretrain_optimizer


def _run_record(status: str, objective, config: DistillConfig, task: Task, variant: str | None, progress: dict,
                processes: int, teacher, steps: list[int] | None = None,
                warnings: list[str] | None = None) -> run_schema.RunRecord:
    """run.json as the run stands: "running" when training starts, "finished" with each process's steps and the
    warnings at the end."""
    details = objective.record_details()
    if "aligner_best_epoch" in progress:
        details["aligner_best_epoch"] = progress["aligner_best_epoch"]
    if config.aligner_pretrain_epochs:
        details["aligner_pretraining"] = progress.get("aligner_pretraining", [])
    return run_schema.RunRecord(
        task=task.name, student=config.student, seed=config.seed, metric=objective.metric, status=status,
        undistilled=config.undistilled, objective=objective.name, variant=variant,
        best_epoch=progress["best_epoch"], best_dev=progress["best_dev"], epochs=config.epochs,
        seconds=round(progress["seconds"], 3), processes=processes, cache=teacher.provenance if teacher else None,
        versions=versions(), steps_per_process=steps, details=details,
        warnings=None if warnings is None else tuple(warnings))


def _improved(objective, key: str, dev: dict, best_epoch: int, best: float | None) -> bool:
    """Whether this epoch's dev scores `dev` beat the best so far by their score `key` (`best`: that of `best_epoch`,
    0 for none yet); without a dev score every epoch does (the last is kept)."""
    if not objective.metric or best_epoch == 0:
        return True
    score = dev.get(key)
    if score is None:
        return False
    return best is None or (score < best if objective.lower_is_better else score > best)


def _pretrain_aligner(accelerator, config: DistillConfig, objective, student, aligner, optimizer, collate, progress: dict,
                      steps_per_epoch: int, count: int) -> None:
    """`aligner_pretrain_epochs` epochs of L_t alone; their losses go to the run's record (its epoch records are the student's)."""
    epochs = config.aligner_pretrain_epochs
    scheduler = lr_schedule(optimizer, config, steps_per_epoch * epochs)
    loop = TrainingLoop(accelerator, config, objective, student, aligner, {"aligner": optimizer}, {"aligner": scheduler},
                        collate)
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


def _summary(epoch, config: DistillConfig, parts, metric, dev, aligner_dev, progress, seconds) -> str:
    """An epoch's line on stdout: L_s, the terms its objective declares, L_t; the dev scores."""
    shown = ("loss_s", *(term.name for term in declaration(config.objective).terms), "loss_t")
    losses = "  ".join(f"{k} {parts[k]:.4f}" for k in shown if k in parts)
    text = f"epoch {epoch}/{config.epochs}  {losses}"
    if metric:
        text += f"  dev {metric} {_show(dev.get(metric))} (best {_show(progress['best_dev'])} at epoch {progress['best_epoch']})"
    if aligner_dev:
        name, value = next(iter(aligner_dev.items()))   # the aligner's primary score comes first
        text += f"  aligner dev {name} {_show(value)}"
    return text + f"  {seconds:.1f} s"


def _show(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4f}"
