"""ARMADA training: a student and a TS Aligner trained together against a teacher-feature cache.

`train()` is what `armada distill` and `armada run` call. One run:
  1. reads the task's train and validation splits and, unless undistilled, the teacher's vectors
     for exactly those examples from the cache (refusing any mismatch before training);
  2. builds the student (backbone + F̃_s, O_s, P_s, O_aux_s) and the TS Aligner;
  3. trains for `epochs` epochs, with Accelerate (one or several processes, mixed precision,
     gradient accumulation), on the `joint` schedule (the aligner and the student both updated
     every step: the paper's online distillation) or the `alternating` one (an aligner epoch,
     then a student epoch: the authors' code). Two AdamW optimizers with their own learning
     rates and a constant or linear schedule with warmup;
  4. after each epoch scores the student (and the aligner) on the validation split, keeps the
     best epoch's student and aligner, appends a line to metrics.jsonl and writes a checkpoint.

The aligner learns only from L_t; the student's losses see the aligner's outputs as constants
(armada.distill.losses). `undistilled` is the same code with the aligner and its losses off;
`aligner = "frozen-random"` keeps a randomly initialised aligner that is never trained;
`teacher_noise` adds Gaussian noise to the aligner's inputs during training.

`batch_size` is per process; with P processes and A accumulation steps an optimizer step sees
batch_size × P × A examples. Only the main process writes files. See armada.distill.model for
the layout of the run directory.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from armada import config as config_module
from armada.config import DistillConfig
from armada.distill import checkpoint
from armada.distill.data import Collator, encode, epoch_batches, process_share
from armada.distill.heads import StudentHeads, TSAligner
from armada.distill.losses import aligner_losses, student_losses
from armada.distill.model import ALIGNER_FILE, ArmadaStudent, HeadsConfig, predictions_from, save_aligner, save_student
from armada.distill.students import load_backbone
from armada.distill.teacher_features import check_task, load_teacher_features, open_cache, split_settings
from armada.errors import ArmadaError
from armada.eval.metrics import compute, primary
from armada.tasks import Split, Task

TASK_KINDS = ("classification", "regression", "multiple_choice")
STUDENT_PARTS = ("loss_s", "task", "soft", "manifold", "aux")
ALIGNER_PARTS = ("loss_t", "aligner_task", "aligner_aux")


@dataclass(frozen=True)
class RunResult:
    out_dir: Path
    task: str
    metric: str                 # the primary metric's name
    best_epoch: int
    best_dev: float | None      # None when the metric was undefined in every epoch
    epochs: int
    seconds: float
    status: str                 # "finished"


def train(config: DistillConfig, task: Task, cache_path: str | None, data_dir: str, out_dir: str | Path,
          resume: bool = False, variant: str | None = None, *, train_limit: int | None = None,
          validation_limit: int | None = None, template: str | None = None) -> RunResult:
    """Train one student; returns where it went and its best validation score.

    The limits and the teacher template default to those the cache's splits were extracted with
    (0 and the task's default without a cache). `resume` continues from the newest complete
    checkpoint in `out_dir` (or starts, if there is none; a finished run is returned as it is).
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    if task.kind not in TASK_KINDS:
        raise ArmadaError(f"{task.name} is a {task.kind} task; armada distill trains {', '.join(TASK_KINDS)} tasks")
    out = Path(out_dir)
    finished = _finished(out, resume)
    if finished is not None:
        return finished
    if config.mixed_precision == "fp16" and not torch.accelerator.is_available():
        raise ArmadaError("mixed_precision = \"fp16\" needs a GPU; on a CPU use \"bf16\" or \"no\"")
    distilled = not config.undistilled
    if distilled and not cache_path:
        raise ArmadaError("ARMADA needs the teacher's features: give --cache PATH (or train the baseline with --undistilled)")

    # Inputs first: every problem with them is reported before anything is written. The cache decides
    # the rows even for the undistilled baseline, so that it trains on the very examples ARMADA does.
    reader = open_cache(cache_path) if cache_path else None
    if reader is not None:
        check_task(reader, task.name)
    limits = {}
    for split, given in (("train", train_limit), ("validation", validation_limit)):
        limits[split] = (split_settings(reader, split)[0] if reader else 0) if given is None else given
    if template is None:
        template = reader.manifest.extraction.teacher_template if reader else ""
    splits = {s: task.load(s, data_dir=data_dir, limit=limits[s], template=template) for s in ("train", "validation")}
    for split in splits.values():
        _check_labels(split)
    if config.batch_size > len(splits["train"]):
        raise ArmadaError(f"--batch-size {config.batch_size} is larger than the {len(splits['train'])} training examples "
                          f"of {task.name}; use a batch size of at most {len(splits['train'])}")
    run_config = _run_config(config, task, data_dir, limits, template)
    _check_out(out, resume, run_config)
    teacher = load_teacher_features(reader, splits["train"], splits["validation"]) if distilled else None
    _reseed(config.seed, 0, 0)          # the same initial weights in every process
    student, tokenizer = _build_student(config, task)
    aligner = _build_aligner(config, task, teacher.dim) if distilled else None

    AcceleratorState._reset_state()     # `armada run` calls train() many times in one process
    accelerator = Accelerator(cpu=not torch.accelerator.is_available(), mixed_precision=config.mixed_precision)
    main = accelerator.is_main_process
    accelerator.wait_for_everyone()     # every process has checked --out before the main one writes there
    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.toml").write_text(run_config)
    train_data = encode(tokenizer, splits["train"], config.max_length)
    dev_data = encode(tokenizer, splits["validation"], config.max_length)
    collate_train = Collator(tokenizer, train_data, task.kind, teacher.train if teacher else None)
    collate_dev = Collator(tokenizer, dev_data, task.kind)

    processes = accelerator.num_processes
    batches_per_epoch = math.ceil(math.ceil(len(train_data) / config.batch_size) / processes)
    steps_per_epoch = math.ceil(batches_per_epoch / config.gradient_accumulation_steps)
    optimizers, schedulers = {}, {}
    optimizers["student"] = _adamw(student, config.lr, config.weight_decay)
    if aligner is not None and config.aligner == "trained":
        optimizers["aligner"] = _adamw(aligner, config.aligner_lr, config.weight_decay)
    for name, optimizer in optimizers.items():
        schedulers[name] = _schedule(optimizer, config, steps_per_epoch * config.epochs)
    student, optimizers["student"] = accelerator.prepare(student, optimizers["student"])
    if "aligner" in optimizers:
        aligner, optimizers["aligner"] = accelerator.prepare(aligner, optimizers["aligner"])
    elif aligner is not None:
        aligner = aligner.to(accelerator.device)

    fingerprints = {"train": splits["train"].fingerprint(), "validation": splits["validation"].fingerprint(),
                    "cache": teacher.provenance["config_hash"] if teacher else None}
    progress = {"best_epoch": 0, "best_dev": None, "seconds": 0.0, "fingerprints": fingerprints, "steps": 0}
    first_epoch = 1
    newest = checkpoint.newest(out / "checkpoints") if resume else None
    if newest is not None:
        state = checkpoint.restore(newest, accelerator.unwrap_model(student),
                                   accelerator.unwrap_model(aligner) if aligner is not None else None, optimizers, schedulers)
        if state["progress"]["fingerprints"] != fingerprints:
            raise ArmadaError(f"{out}: the data or cache differ from those the interrupted run trained on; "
                              "resume with the same data, limits and cache, or start a new --out")
        progress, first_epoch = state["progress"], state["epoch"] + 1
        if main:
            _truncate_metrics(out / "metrics.jsonl", state["epoch"])
            print(f"resuming {out} after epoch {state['epoch']}", flush=True)
    if main:
        _write_json(out / "run.json", _run_record(config, task, variant, progress, processes, teacher, "running"))

    loop = _Loop(accelerator, config, task, student, aligner, optimizers, schedulers, collate_train)
    metric = primary(task.metric)
    for epoch in range(first_epoch, config.epochs + 1):
        epoch_started = time.time()
        _reseed(config.seed, epoch, accelerator.process_index)
        batches = process_share(
            epoch_batches(len(train_data), config.batch_size, config.seed, epoch,
                          train_data.lengths if config.group_by_length else None),
            accelerator.process_index, processes)
        parts = loop.epoch(epoch, batches)
        width = task.num_labels         # outputs per example: classes, choices, or 1 for regression
        dev = _score(task, splits["validation"],
                     _student_logits(accelerator, student, collate_dev, config.eval_batch_size, width))
        aligner_dev = None
        if aligner is not None and teacher.validation is not None:
            aligner_dev = _score(task, splits["validation"],
                                 _aligner_logits(accelerator, aligner, teacher.validation, config.eval_batch_size, width))
        progress["steps"] += len(batches)
        improved = _better(dev.get(metric), progress["best_dev"]) or progress["best_epoch"] == 0
        if improved:
            progress["best_epoch"], progress["best_dev"] = epoch, dev.get(metric)
        if main:
            if improved:
                _export(out, accelerator.unwrap_model(student), tokenizer,
                        accelerator.unwrap_model(aligner) if aligner is not None else None, task.kind)
            seconds = time.time() - epoch_started
            progress["seconds"] += seconds
            line = {"epoch": epoch, "train": parts, "dev": dev, "aligner_dev": aligner_dev, "seconds": round(seconds, 3)}
            with open(out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(line) + "\n")
            saved = checkpoint.save(out / "checkpoints", epoch, accelerator.unwrap_model(student),
                                    accelerator.unwrap_model(aligner) if aligner is not None else None,
                                    optimizers, schedulers, progress)
            checkpoint.prune(out / "checkpoints", keep=saved)
            print(_summary(epoch, config.epochs, parts, metric, dev, aligner_dev, progress, seconds), flush=True)
        accelerator.wait_for_everyone()

    steps = accelerator.gather(torch.tensor([progress["steps"]], device=accelerator.device)).tolist()
    if main:
        record = _run_record(config, task, variant, progress, processes, teacher, "finished")
        record["steps_per_process"] = steps
        record["seconds"] = round(progress["seconds"], 3)
        _write_json(out / "run.json", record)
    accelerator.wait_for_everyone()
    return RunResult(out, task.name, metric, progress["best_epoch"], progress["best_dev"], config.epochs,
                     round(progress["seconds"], 3), "finished")


# --- one epoch ---------------------------------------------------------------------------------

class _Loop:
    """The training steps of an epoch: which losses, which models, which optimizers."""

    def __init__(self, accelerator, config: DistillConfig, task: Task, student, aligner, optimizers, schedulers, collate):
        self.accelerator, self.config, self.kind = accelerator, config, task.kind
        self.student, self.aligner, self.optimizers, self.schedulers = student, aligner, optimizers, schedulers
        self.collate = collate
        self.aligner_trained = "aligner" in optimizers

    def epoch(self, epoch: int, batches: list[np.ndarray]) -> dict[str, float]:
        if self.config.schedule == "alternating" and self.aligner_trained:
            parts = self._phase(epoch, batches, "aligner")
            parts.update(self._phase(epoch, batches, "student"))
            return parts
        return self._phase(epoch, batches, "joint")

    def _phase(self, epoch: int, batches: list[np.ndarray], phase: str) -> dict[str, float]:
        from tqdm import tqdm

        accelerator, accumulate = self.accelerator, self.config.gradient_accumulation_steps
        trained = self._trained_models(phase)
        names = [n for n in self.optimizers if (n == "aligner") == (phase == "aligner") or phase == "joint"]
        for model in (self.student, self.aligner):
            if model is not None:
                model.train(model in trained)
        sums, counts = defaultdict(float), defaultdict(int)
        label = f"epoch {epoch}/{self.config.epochs}" + ("" if phase == "joint" else f" {phase}")
        bar = tqdm(total=len(batches), desc=label, disable=not accelerator.is_main_process, leave=False, dynamic_ncols=True)
        for start in range(0, len(batches), accumulate):
            window = batches[start:start + accumulate]
            for i, positions in enumerate(window):
                batch = self.collate(positions).to(accelerator.device)
                last = i == len(window) - 1
                with contextlib.ExitStack() as stack:
                    if not last:        # gradients are averaged across processes once per window
                        for model in trained:
                            stack.enter_context(accelerator.no_sync(model))
                    losses = self._losses(batch, phase)
                    total = sum(losses[k] for k in self._optimised(phase))
                    accelerator.backward(total / len(window))
                for key, value in losses.items():
                    sums[key] += value.item()
                    counts[key] += 1
                bar.update(1)
                bar.set_postfix({k: f"{sums[k] / counts[k]:.3f}" for k in sums}, refresh=False)
            for name in names:
                self.optimizers[name].step()
                self.schedulers[name].step()
                self.optimizers[name].zero_grad(set_to_none=True)
        bar.close()
        keys = sorted(sums)
        totals = torch.tensor([[sums[k], counts[k]] for k in keys], dtype=torch.float64, device=accelerator.device)
        totals = accelerator.reduce(totals, reduction="sum") if accelerator.num_processes > 1 else totals
        return {k: round(float(s / c), 6) for k, (s, c) in zip(keys, totals.tolist())}

    def _trained_models(self, phase: str) -> list:
        if phase == "aligner":
            return [self.aligner]
        return [self.student] + ([self.aligner] if phase == "joint" and self.aligner_trained else [])

    def _optimised(self, phase: str) -> tuple[str, ...]:
        if phase == "aligner":
            return ("loss_t",)
        return ("loss_s", "loss_t") if phase == "joint" and self.aligner_trained else ("loss_s",)

    def _losses(self, batch, phase: str) -> dict[str, torch.Tensor]:
        config = self.config
        aligner_out = None
        if self.aligner is not None:
            features = batch.features
            if config.teacher_noise > 0:
                features = features + config.teacher_noise * torch.randn_like(features)
            grad = phase in ("aligner", "joint") and self.aligner_trained
            with contextlib.nullcontext() if grad else torch.no_grad():
                model = self.aligner if grad else self.accelerator.unwrap_model(self.aligner)
                aligner_out = model(features)
        losses = {}
        if aligner_out is not None:
            losses.update(aligner_losses(self.kind, batch.labels, aligner_out[0], aligner_out[2], config.gamma))
        if phase == "aligner":
            return losses
        o_s, p_s, o_aux_s, _ = self.student(batch.inputs, batch.choices)
        losses.update(student_losses(self.kind, batch.labels, o_s, p_s, o_aux_s, aligner_out, alpha=config.alpha,
                                     beta=config.beta, gamma=config.gamma, tau=config.tau, soft_form=config.soft_loss,
                                     manifold=config.manifold))
        return losses


# --- building ----------------------------------------------------------------------------------

def _build_student(config: DistillConfig, task: Task) -> tuple[ArmadaStudent, object]:
    backbone = load_backbone(config.student)
    model = backbone.model
    if backbone.pooling != "pooler" and getattr(model, "pooler", None) is not None:
        model.pooler.requires_grad_(False)      # unused: keep it out of the optimizer and of DDP's reduction
    if config.lora_r:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=config.lora_r, lora_alpha=2 * config.lora_r, target_modules="all-linear"))
    hidden = backbone.model.config.hidden_size
    outputs = 1 if task.kind in ("multiple_choice", "regression") else task.num_labels
    heads = StudentHeads(hidden, outputs, config.projection_dim)
    if config.undistilled:
        for unused in (heads.P_s, heads.O_aux_s):
            unused.requires_grad_(False)
    heads_config = HeadsConfig(task.name, task.kind, list(task.labels), task.num_labels, hidden, outputs,
                               config.projection_dim, backbone.pooling, backbone.kind, config.student, backbone.source,
                               config.max_length)
    return ArmadaStudent(model, heads, heads_config), backbone.tokenizer


def _build_aligner(config: DistillConfig, task: Task, teacher_dim: int) -> TSAligner:
    aligner = TSAligner(teacher_dim, config.aligner_hidden, task.num_labels, config.projection_dim)
    if config.aligner == "frozen-random":
        aligner.requires_grad_(False)
    return aligner


def _adamw(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW; no decay on biases and normalisation weights (1-d tensors), as BERT fine-tuning does."""
    decay, plain = [], []
    for p in model.parameters():
        if p.requires_grad:
            (plain if p.ndim < 2 else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}], lr=lr)


def _schedule(optimizer, config: DistillConfig, total_steps: int):
    warmup = int(config.warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if config.lr_schedule == "linear":
            return max(0.0, (total_steps - step) / max(1, total_steps - warmup))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _reseed(seed: int, epoch: int, process: int) -> None:
    value = int(np.random.SeedSequence([seed, epoch, process]).generate_state(1)[0])
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


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


# --- evaluation --------------------------------------------------------------------------------

@torch.no_grad()
def _student_logits(accelerator, student, collate: Collator, batch_size: int, width: int) -> np.ndarray:
    """The student's outputs for every validation example, each process scoring a share."""
    model = accelerator.unwrap_model(student)
    model.eval()
    order = np.argsort(-collate.encoded.lengths, kind="stable")
    mine = order[accelerator.process_index::accelerator.num_processes]
    rows = []
    for start in range(0, len(mine), batch_size):
        batch = collate(mine[start:start + batch_size]).to(accelerator.device)
        with accelerator.autocast():
            rows.append(model(batch.inputs, batch.choices)[0].float())
    return _gather_rows(accelerator, rows, order, width)


@torch.no_grad()
def _aligner_logits(accelerator, aligner, features, batch_size: int, width: int) -> np.ndarray:
    model = accelerator.unwrap_model(aligner)
    model.eval()
    order = np.arange(len(features))
    mine = order[accelerator.process_index::accelerator.num_processes]
    rows = [model(torch.from_numpy(features[mine[s:s + batch_size]]).to(accelerator.device))[0].float()
            for s in range(0, len(mine), batch_size)]
    return _gather_rows(accelerator, rows, order, width)


def _gather_rows(accelerator, rows: list[torch.Tensor], order: np.ndarray, width: int) -> np.ndarray:
    """Process p scored order[p::P] (rows of `width` outputs); put every row back at its position."""
    processes = accelerator.num_processes
    local = torch.cat(rows) if rows else torch.empty(0, width, device=accelerator.device)
    if processes > 1:
        per = math.ceil(len(order) / processes)
        padded = torch.zeros(per, width, device=accelerator.device)
        padded[:len(local)] = local
        gathered = accelerator.gather(padded).view(processes, per, -1).cpu().numpy()
        local = np.concatenate([gathered[p, :len(order[p::processes])] for p in range(processes)])
        owners = np.concatenate([order[p::processes] for p in range(processes)])
    else:
        local, owners = local.cpu().numpy(), order
    out = np.empty_like(local)
    out[owners] = local
    return out


def _score(task: Task, split: Split, logits: np.ndarray) -> dict[str, float | None]:
    scores = compute(task.metric, predictions_from(task.kind, logits), split.labels)
    return {k: (None if math.isnan(v) else round(v, 6)) for k, v in scores.items()}


def _better(score: float | None, best: float | None) -> bool:
    return score is not None and (best is None or score > best)


# --- outputs -----------------------------------------------------------------------------------

def _finished(out: Path, resume: bool) -> RunResult | None:
    """A finished run in `out` when resuming: returned as it is (nothing is trained again)."""
    record_path = out / "run.json"
    if not (resume and record_path.is_file()):
        return None
    record = json.loads(record_path.read_text())
    if record.get("status") != "finished":
        return None
    print(f"{out} is already finished (best {record['metric']} {record['best_dev']} at epoch {record['best_epoch']})", flush=True)
    return RunResult(out, record["task"], record["metric"], record["best_epoch"], record["best_dev"], record["epochs"],
                     record["seconds"], "finished")


def _run_config(config: DistillConfig, task: Task, data_dir: str, limits: dict, template: str) -> str:
    data = {"data_dir": data_dir, "train_limit": limits["train"], "validation_limit": limits["validation"]}
    if template:
        data["teacher_templates"] = {task.name: template}
    return config_module.to_toml({"data": data, "distill": config_module.to_dict(config)})


def _check_out(out: Path, resume: bool, run_config: str) -> None:
    saved = out / "config.toml"
    if out.exists() and any(out.iterdir()):
        if not resume:
            raise ArmadaError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
        if saved.is_file() and saved.read_text() != run_config:
            raise ArmadaError(f"{out} was started with other settings:\n  " + "\n  ".join(_differences(saved.read_text(), run_config))
                              + "\nresume with the same settings, or choose another --out")


def _differences(old: str, new: str) -> list[str]:
    import tomllib

    def flat(text: str) -> dict:
        out = {}
        for section, table in tomllib.loads(text).items():
            for key, value in table.items():
                out[f"{section}.{key}"] = value
        return out

    a, b = flat(old), flat(new)
    return [f"{k}: {a.get(k)!r} → {b.get(k)!r}" for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]


def _export(out: Path, student: ArmadaStudent, tokenizer, aligner: TSAligner | None, kind: str) -> None:
    """The best epoch so far: student/ and aligner.safetensors, each replaced whole."""
    building = out / ".student.partial"
    shutil.rmtree(building, ignore_errors=True)
    save_student(building, student, tokenizer)
    shutil.rmtree(out / "student", ignore_errors=True)
    os.rename(building, out / "student")
    if aligner is not None:
        save_aligner(out / f".{ALIGNER_FILE}.partial", aligner, kind)
        os.replace(out / f".{ALIGNER_FILE}.partial", out / ALIGNER_FILE)


def _truncate_metrics(path: Path, epoch: int) -> None:
    if path.is_file():
        kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["epoch"] <= epoch]
        path.write_text("".join(line + "\n" for line in kept))


def _run_record(config: DistillConfig, task: Task, variant: str | None, progress: dict, processes: int, teacher,
                status: str) -> dict:
    import importlib.metadata

    import accelerate
    import transformers

    record = {"task": task.name, "student": config.student, "undistilled": config.undistilled}
    if variant:
        record["variant"] = variant
    record.update({
        "seed": config.seed, "metric": primary(task.metric), "best_epoch": progress["best_epoch"],
        "best_dev": progress["best_dev"], "epochs": config.epochs, "seconds": round(progress["seconds"], 3),
        "processes": processes, "cache": teacher.provenance if teacher else None,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "accelerate": accelerate.__version__, "armada": importlib.metadata.version("armada")},
        "status": status,
    })
    return record


def _write_json(path: Path, data: dict) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(partial, path)


def _summary(epoch, epochs, parts, metric, dev, aligner_dev, progress, seconds) -> str:
    losses = "  ".join(f"{k} {parts[k]:.4f}" for k in (*STUDENT_PARTS, "loss_t") if k in parts)
    score = dev.get(metric)
    text = f"epoch {epoch}/{epochs}  {losses}  dev {metric} {_show(score)}"
    text += f" (best {_show(progress['best_dev'])} at epoch {progress['best_epoch']})"
    if aligner_dev is not None:
        text += f"  aligner dev {metric} {_show(aligner_dev.get(metric))}"
    return text + f"  {seconds:.1f} s"


def _show(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4f}"

