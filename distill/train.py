"""ARMADA training: a student and a TS Aligner trained together against a teacher-feature cache.

`train()` is what `armada distill` and `armada run` call. One run:
  1. reads the task's train and validation splits and, unless undistilled, the teacher's vectors
     for exactly those examples from the cache (refusing any mismatch before anything is written);
  2. builds the student (backbone + F̃_s, O_s, P_s, O_aux_s) and the TS Aligner;
  3. trains for `epochs` epochs, with Accelerate (one or several processes, mixed precision,
     gradient accumulation), on the `joint` schedule (the aligner and the student both updated
     every step: the paper's online distillation) or the `alternating` one (an aligner epoch,
     then a student epoch: the authors' code). Two AdamW optimizers with their own learning
     rates and a constant or linear schedule with warmup (armada.distill.loop);
  4. after each epoch scores the student (and the aligner) on the validation split, keeps the
     best epoch's student and aligner, appends a line to metrics.jsonl and writes a checkpoint.

The aligner learns only from L_t; the student's losses see the aligner's outputs as constants
(armada.distill.losses). `undistilled` is the same code with the aligner and its losses off;
`aligner = "frozen-random"` keeps a randomly initialised aligner that is never trained;
`teacher_noise` adds Gaussian noise to the aligner's inputs during training. `objective = "lm"`
(generation tasks) is the recipe of armada.distill.lm, which train() hands over to.

`batch_size` is per process; with P processes and A accumulation steps an optimizer step sees
batch_size × P × A examples. Only the main process writes files. See armada.distill.model for
the layout of the run directory.

Several processes: `torchrun --nproc-per-node 2 --no-python armada distill ...`, or `accelerate
launch --multi_gpu --num_processes 2 ...` (on a CPU, `accelerate launch --cpu --num_processes 2`
silently runs one process); run.json records the process count and each process's batches.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from armada.config import DistillConfig
from armada import run_schema
from armada.distill import checkpoint
from armada.distill.build import adamw, build_aligner, build_student, lr_schedule, prediction_range
from armada.distill.data import Collator, encode, epoch_batches, process_share
from armada.distill.loop import TrainingLoop, aligner_logits, reseed, split_shares, student_logits
from armada.distill.model import predictions_from, save_best
from armada.distill.inputs import RunResult, finished_run, open_inputs, versions
from armada.distill.teacher_features import load_teacher_features
from armada.errors import ArmadaError
from armada.tasks.metrics import compute, primary
from armada.tasks import OUTPUT_KINDS, Split, Task

SUMMARY_PARTS = ("loss_s", "task", "soft", "manifold", "aux", "loss_t")
ALIGNMENT_TERMS = ("soft", "aux", "manifold")
SWAMPED = 0.8                   # an alignment term with more of the gradient than this has taken over


def train(config: DistillConfig, task: Task, cache_path: str | None, data_dir: str, out_dir: str | Path,
          resume: bool = False, variant: str | None = None, *, train_limit: int | None = None,
          validation_limit: int | None = None, template: str | None = None) -> RunResult:
    """Train one student; returns where it went and its best validation score.

    The limits and the teacher template default to those the cache's splits were extracted with
    (0 and the task's default without a cache). `resume` continues from the newest complete
    checkpoint in `out_dir` (or starts, if there is none; a finished run is returned as it is).
    One process trains a run folder at a time: another that asks for it is refused (armada.run_schema.exclusive).
    """
    with run_schema.exclusive(Path(out_dir)):
        if config.objective == "lm":
            from armada.distill.lm import train_lm

            return train_lm(config, task, cache_path, data_dir, out_dir, resume, variant, train_limit=train_limit,
                            validation_limit=validation_limit, template=template)
        return _train_task(config, task, cache_path, data_dir, out_dir, resume, variant, train_limit=train_limit,
                           validation_limit=validation_limit, template=template)


def _train_task(config: DistillConfig, task: Task, cache_path: str | None, data_dir: str, out_dir: str | Path,
                resume: bool, variant: str | None, *, train_limit: int | None, validation_limit: int | None,
                template: str | None) -> RunResult:
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    if task.kind == "generation":
        raise ArmadaError(f"{task.name} is a generation task: train a causal LM on it with --objective lm")
    if task.kind not in OUTPUT_KINDS:
        raise ArmadaError(f"{task.name} is a {task.kind} task; armada distill trains {', '.join(OUTPUT_KINDS)} tasks")
    out = Path(out_dir)
    folder = run_schema.RunFolder(out)
    finished = finished_run(folder, resume)
    if finished is not None:
        return finished
    distilled = not config.undistilled
    # Inputs first: every problem with them is reported before anything is written.
    reader, limits, template = open_inputs(config, task, cache_path, train_limit, validation_limit, template)
    splits = {s: task.load(s, data_dir=data_dir, limit=limits[s], template=template) for s in ("train", "validation")}
    for split in splits.values():
        _check_labels(split)
    if config.batch_size > len(splits["train"]):
        raise ArmadaError(f"--batch-size {config.batch_size} is larger than the {len(splits['train'])} training examples "
                          f"of {task.name}; use a batch size of at most {len(splits['train'])}")
    settings = run_schema.settings_text(config, task.name, data_dir, limits, template)
    folder.check_out(resume, settings)
    teacher = load_teacher_features(reader, splits["train"], splits["validation"]) if distilled else None
    reseed(config.seed, 0, 0)           # the same initial weights in every process
    student, tokenizer = build_student(config, task)
    aligner = build_aligner(config, task, teacher.dim) if distilled else None

    AcceleratorState._reset_state()     # `armada run` calls train() many times in one process
    accelerator = Accelerator(cpu=not torch.accelerator.is_available(), mixed_precision=config.mixed_precision)
    main = accelerator.is_main_process
    accelerator.wait_for_everyone()     # every process has checked --out before the main one writes there
    if main:
        folder.write_settings(settings)
    train_data = encode(tokenizer, splits["train"], config.max_length)
    collate_train = Collator(tokenizer, train_data, task.kind, teacher.train if teacher else None)
    collate_dev = Collator(tokenizer, encode(tokenizer, splits["validation"], config.max_length), task.kind)

    processes = accelerator.num_processes
    batches_per_epoch = math.ceil(math.ceil(len(train_data) / config.batch_size) / processes)
    steps_per_epoch = math.ceil(batches_per_epoch / config.gradient_accumulation_steps)
    optimizers = {"student": adamw(student, config.lr, config.weight_decay)}
    if aligner is not None and config.aligner == "trained":
        optimizers["aligner"] = adamw(aligner, config.aligner_lr, config.weight_decay)
    schedulers = {name: lr_schedule(o, config, steps_per_epoch * config.epochs) for name, o in optimizers.items()}
    student, optimizers["student"] = accelerator.prepare(student, optimizers["student"])
    if "aligner" in optimizers:
        aligner, optimizers["aligner"] = accelerator.prepare(aligner, optimizers["aligner"])
    elif aligner is not None:
        aligner = aligner.to(accelerator.device)
    plain_student = accelerator.unwrap_model(student)
    plain_aligner = accelerator.unwrap_model(aligner) if aligner is not None else None

    fingerprints = {"train": splits["train"].fingerprint(), "validation": splits["validation"].fingerprint(),
                    "cache": teacher.provenance["config_hash"] if teacher else None}
    progress = {"best_epoch": 0, "best_dev": None, "seconds": 0.0, "steps": 0, "fingerprints": fingerprints}
    done = 0                            # epochs finished before this call
    newest = checkpoint.newest(folder.checkpoints) if resume else None
    if newest is not None:
        state = checkpoint.restore(newest, plain_student, plain_aligner, optimizers, schedulers)
        if state["progress"]["fingerprints"] != fingerprints:
            raise ArmadaError(f"{out}: the data or cache differ from those the interrupted run trained on; "
                              "resume with the same data, limits and cache, or start a new --out")
        progress, done = state["progress"], state["epoch"]
    if main:
        folder.keep_epochs(done)        # lines of an epoch whose checkpoint was not finished
        if done:
            print(f"resuming {out} after epoch {done}", flush=True)
        folder.write_record(_record(config, task, variant, progress, processes, teacher, "running"))

    loop = TrainingLoop(accelerator, config, task.kind, student, aligner, optimizers, schedulers, collate_train)
    metric = primary(task.metric)
    value_range = prediction_range(config, task)
    for epoch in range(done + 1, config.epochs + 1):
        started = time.time()
        reseed(config.seed, epoch, accelerator.process_index)
        batches = process_share(
            epoch_batches(len(train_data), config.batch_size, config.seed, epoch,
                          train_data.lengths if config.group_by_length else None),
            accelerator.process_index, processes)
        parts, balance = split_shares(loop.epoch(epoch, batches))
        width = task.num_labels         # outputs per example: classes, choices, or 1 for regression
        dev, predicted = _score(task, splits["validation"], value_range,
                                student_logits(accelerator, student, collate_dev, config.eval_batch_size, width))
        aligner_dev = None
        if aligner is not None and teacher.validation is not None:
            aligner_dev, _ = _score(task, splits["validation"], value_range,
                                    aligner_logits(accelerator, aligner, teacher.validation, config.eval_batch_size, width))
        progress["steps"] += len(batches)
        improved = progress["best_epoch"] == 0 or _better(dev.get(metric), progress["best_dev"])
        if improved:
            progress["best_epoch"], progress["best_dev"] = epoch, dev.get(metric)
        if main:
            if improved:
                save_best(folder, plain_student, tokenizer, plain_aligner, task.kind, value_range)
            seconds = time.time() - started
            progress["seconds"] += seconds
            folder.append_epoch(run_schema.EpochRecord(epoch, parts, dev, aligner_dev, round(seconds, 3), balance,
                                                       {} if predicted is None else {"dev_predicted_classes": predicted}))
            saved = checkpoint.save(folder.checkpoints, epoch, plain_student, plain_aligner, optimizers, schedulers, progress)
            checkpoint.prune(folder.checkpoints, keep=saved)
            print(_summary(epoch, config.epochs, parts, metric, dev, aligner_dev, progress, seconds), flush=True)
        accelerator.wait_for_everyone()

    steps = accelerator.gather(torch.tensor([progress["steps"]], device=accelerator.device)).tolist()
    if main:
        warnings = training_warnings(folder.read_epochs(), progress["best_epoch"])
        for warning in warnings:
            print(f"warning: {warning}", flush=True)
        folder.write_record(_record(config, task, variant, progress, processes, teacher, "finished", steps, warnings))
    accelerator.wait_for_everyone()
    accelerator.end_training()          # leaves the process group: a launched process that exits inside it can abort
    if reader is not None:
        reader.close()
    return RunResult(out, task.name, metric, progress["best_epoch"], progress["best_dev"], config.epochs,
                     round(progress["seconds"], 3), "finished")


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


def _score(task: Task, split: Split, value_range, logits: np.ndarray) -> tuple[dict[str, float | None], int | None]:
    """(every score of the task's metric, as fractions, None where undefined (e.g. constant predictions);
    how many distinct classes or choices were predicted, None for regression)."""
    predictions = predictions_from(task.kind, logits, value_range)
    scores = compute(task.metric, predictions, split.labels)
    predicted = None if task.kind == "regression" else len(np.unique(predictions))
    return {k: (None if math.isnan(v) else round(v, 6)) for k, v in scores.items()}, predicted


def training_warnings(epochs: tuple[run_schema.EpochRecord, ...], best_epoch: int) -> list[str]:
    """What a user must see at once: an alignment term that took over the student's gradient, or a kept
    student that predicts one class for every dev example."""
    warnings = []
    for term in ALIGNMENT_TERMS:
        swamped = [line.epoch for line in epochs if (line.balance or {}).get(term, 0.0) > SWAMPED]
        if swamped:
            worst = max(line.balance[term] for line in epochs if line.epoch in swamped)
            warnings.append(f"the {term} term took more than {SWAMPED:.0%} of the gradient reaching the backbone in "
                            f"epoch(s) {swamped} (up to {worst:.0%}): it, not the task, trained the student; lower its "
                            "weight (beta for manifold, alpha for soft, gamma for aux) or use manifold_form = \"mse\"")
    best = next((line for line in epochs if line.epoch == best_epoch), None)
    if best is not None and best.diagnostics.get("dev_predicted_classes") == 1:
        warnings.append(f"the kept student (epoch {best_epoch}) predicts one class for every dev example: it has "
                        "learned the majority class, not the task")
    return warnings


def _better(score: float | None, best: float | None) -> bool:
    return score is not None and (best is None or score > best)


def _record(config: DistillConfig, task: Task, variant: str | None, progress: dict, processes: int, teacher,
            status: str, steps: list[int] | None = None, warnings: list[str] | None = None) -> run_schema.RunRecord:
    """run.json; `steps`: the batches each process trained on, gathered at the end."""
    return run_schema.RunRecord(
        task=task.name, student=config.student, seed=config.seed, metric=primary(task.metric), status=status,
        undistilled=config.undistilled, variant=variant, best_epoch=progress["best_epoch"], best_dev=progress["best_dev"],
        epochs=config.epochs, seconds=round(progress["seconds"], 3), processes=processes,
        cache=teacher.provenance if teacher else None, versions=versions(), steps_per_process=steps,
        warnings=None if warnings is None else tuple(warnings))


def _summary(epoch, epochs, parts, metric, dev, aligner_dev, progress, seconds) -> str:
    losses = "  ".join(f"{k} {parts[k]:.4f}" for k in SUMMARY_PARTS if k in parts)
    text = f"epoch {epoch}/{epochs}  {losses}  dev {metric} {_show(dev.get(metric))}"
    text += f" (best {_show(progress['best_dev'])} at epoch {progress['best_epoch']})"
    if aligner_dev is not None:
        text += f"  aligner dev {metric} {_show(aligner_dev.get(metric))}"
    return text + f"  {seconds:.1f} s"


def _show(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4f}"
