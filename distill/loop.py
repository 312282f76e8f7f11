"""The training step, the epochs made of it, and scoring on the validation split, across processes.

`TrainingLoop.step` is one optimizer step, read top to bottom: batches in, loss terms out, backward,
clip, step. `TrainingLoop.epoch` runs one epoch of steps over this process's batches:
  joint        every step: the aligner's L_t and the student's L_s, both optimizers step
  alternating  an aligner epoch (L_t only), then a student epoch (L_s, the aligner fixed)
Gradients are accumulated over windows of `gradient_accumulation_steps` batches and averaged
across processes once per window; with `max_grad_norm` each model's gradient is then clipped to
that norm on its own (the authors clip the student's and the aligner's). The aligner's outputs
reach the student's losses detached (armada.distill.losses), so one backward of L_s + L_t trains
each model on its own loss only. Teacher noise (`teacher_noise`) is added to the aligner's inputs
during training.

Loss balance: at every step of a distilled student, each term of L_s ((1 − α)·task, α·soft, γ·aux,
β·manifold) is differentiated alone with respect to the student's pooled states h_s, the one
tensor through which every term reaches the backbone (so the backbone's gradient is the sum of the
terms' gradients there, pulled back). A term's share is its gradient's norm over the sum of the
four norms; an epoch reports the mean share over its steps (the epoch record's "balance"). A share
near 1 means that term alone moves the backbone.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections import defaultdict

import numpy as np
import torch

from armada.config import DistillConfig
from armada.distill.data import Collator
from armada.distill.heads import fixed_twin
from armada.errors import ArmadaError

SHARE = "share:"                # loss-dict keys that carry a term's gradient share, not a loss


def reseed(seed: int, epoch: int, process: int) -> None:
    """Every generator from (seed, epoch, process): what an epoch draws does not depend on what came before."""
    value = int(np.random.SeedSequence([seed, epoch, process]).generate_state(1)[0])
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


class TrainingLoop:
    def __init__(self, accelerator, config: DistillConfig, objective, student, aligner, optimizers: dict, schedulers: dict,
                 collate):
        """`objective` gives each batch's losses (armada.distill.objective); `student` and `aligner` as
        accelerator.prepare returned them (aligner None when undistilled); `optimizers`/`schedulers` keyed
        "student" and, for a trained aligner, "aligner"."""
        self.accelerator, self.config, self.objective = accelerator, config, objective
        self.student, self.aligner, self.optimizers, self.schedulers = student, aligner, optimizers, schedulers
        self.collate = collate
        self.aligner_trained = "aligner" in optimizers

    def epoch(self, epoch: int, batches: list[np.ndarray], aligner_batches: list[np.ndarray] | None = None
              ) -> dict[str, float]:
        """Train on `batches` (the alternating schedule's aligner epoch on `aligner_batches` where given); the loss
        parts (and "share:TERM", each term's gradient share) averaged over the epoch's steps in all processes."""
        label = f"epoch {epoch}/{self.config.epochs}"
        if self.config.schedule == "alternating" and self.aligner_trained:
            parts = self._phase(f"{label} aligner", batches if aligner_batches is None else aligner_batches, "aligner")
            parts.update(self._phase(f"{label} student", batches, "student"))
            return parts
        return self._phase(label, batches, "joint")

    def aligner_epoch(self, label: str, batches: list[np.ndarray]) -> dict[str, float]:
        """Train the aligner alone on `batches` (L_t only): pre-training before the student starts."""
        return self._phase(label, batches, "aligner")

    def step(self, window: list[np.ndarray], phase: str, fixed, label: str, done: int,
             steps: int) -> list[dict[str, float]]:
        """One optimizer step, top to bottom; returns each batch's losses (`fixed`: the aligner's fixed twin in a
        phase that does not train it; `label`, `done` batches of `steps` before this window: where a loss that is
        not finite is said to be).

        For each batch of the window (its gradients accumulated): the batch in; the aligner's outputs on its
        teacher vectors; the objective's loss terms out (L_t and its parts unless the phase trains the student
        alone, L_s and its parts unless it trains the aligner alone); backward through the losses the phase
        optimises, scaled by the window. Then for each model the phase steps: its gradient clipped, its
        optimizer and learning-rate schedule stepped, its gradient cleared. A loss that is not finite stops training
        before its backward."""
        accelerator, config = self.accelerator, self.config
        trained, optimised, stepped = self._plan(phase)
        losses_by_batch = []
        for i, positions in enumerate(window):
            batch = self.collate(positions).to(accelerator.device)
            with contextlib.ExitStack() as stack:
                if i < len(window) - 1:             # processes average gradients once, at the window's end
                    for model in trained:
                        stack.enter_context(accelerator.no_sync(model))
                aligner_out = self._aligner_outputs(batch, fixed)
                losses = {}
                if aligner_out is not None and phase != "student":    # a student epoch reports the student's losses only
                    losses.update(self.objective.aligner_losses(batch, aligner_out))
                if phase != "aligner":
                    losses.update(self.objective.student_losses(self.student, batch, aligner_out))
                values = {key: value.item() for key, value in losses.items()}
                _refuse_non_finite(values, label, done + i + 1, steps)     # before its gradient reaches a weight
                accelerator.backward(sum(losses[k] for k in optimised) / len(window))
            losses_by_batch.append(values)
        for name in stepped:
            if config.max_grad_norm > 0:
                model = self.student if name == "student" else self.aligner
                accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            self.optimizers[name].step()
            self.schedulers[name].step()
            self.optimizers[name].zero_grad(set_to_none=True)
        return losses_by_batch

    def _phase(self, label: str, batches: list[np.ndarray], phase: str) -> dict[str, float]:
        """Steps over `batches`, `gradient_accumulation_steps` batches each; the mean of each loss over all processes."""
        from tqdm import tqdm

        accelerator, accumulate = self.accelerator, self.config.gradient_accumulation_steps
        trained = self._plan(phase)[0]
        for model in (self.student, self.aligner):
            if model is not None:
                model.train(any(model is t for t in trained))
        fixed = self._fixed_aligner(phase)
        sums, counts = defaultdict(float), defaultdict(int)
        quiet = {} if accelerator.is_main_process else {"disable": True}   # an explicit disable=False would override TQDM_DISABLE
        bar = tqdm(total=len(batches), desc=label, leave=False, dynamic_ncols=True, **quiet)
        for start in range(0, len(batches), accumulate):
            for losses in self.step(batches[start:start + accumulate], phase, fixed, label, start, len(batches)):
                for key, value in losses.items():
                    sums[key] += value
                    counts[key] += 1
                bar.update(1)
            bar.set_postfix({k: f"{sums[k] / counts[k]:.3f}" for k in sums}, refresh=False)
        bar.close()
        keys = sorted(sums)
        totals = torch.tensor([[sums[k], counts[k]] for k in keys], dtype=torch.float64, device=accelerator.device)
        if accelerator.num_processes > 1:
            totals = accelerator.reduce(totals, reduction="sum")
        return {k: round(float(s / c), 6) for k, (s, c) in zip(keys, totals.tolist())}

    def _plan(self, phase: str) -> tuple[list, tuple[str, ...], tuple[str, ...]]:
        """(the models a phase trains, the losses it optimises, the optimizers it steps)."""
        if phase == "aligner":
            return [self.aligner], ("loss_t",), ("aligner",)
        if phase == "joint" and self.aligner_trained:
            return [self.student, self.aligner], ("loss_s", "loss_t"), tuple(self.optimizers)
        return [self.student], ("loss_s",), (("student",) if phase == "student" else tuple(self.optimizers))

    def _fixed_aligner(self, phase: str):
        """In a phase that does not train the aligner, its twin with P_ts computed once for the phase (heads.fixed_twin)."""
        if self.aligner is None or (phase in ("aligner", "joint") and self.aligner_trained):
            return None
        return fixed_twin(self.accelerator.unwrap_model(self.aligner))

    def _aligner_outputs(self, batch, fixed):
        """The aligner's outputs on the batch's teacher vectors (noised as `teacher_noise` says): with gradients from the
        aligner itself in a phase that trains it, from its `fixed` twin in one that does not; None without an aligner."""
        if self.aligner is None:
            return None
        features = batch.features
        if self.config.teacher_noise > 0:
            features = features + self.config.teacher_noise * torch.randn_like(features)
        if fixed is None:
            return self.aligner(features)
        with torch.no_grad():
            return fixed(features)


# What to try when training stops on a value that is not finite.
ADVICE = ("Lower lr or aligner_lr, lower the term's weight, check the cache and the data for values that are not "
          "finite (armada cache verify), or train with mixed_precision = \"no\"")


class NonFiniteTraining(ArmadaError):
    """A loss or a weight became NaN or infinite: training stops before it spreads or is saved."""


def _refuse_non_finite(values: dict[str, float], label: str, step: int, steps: int) -> None:
    """Stop at the first step whose loss is NaN or infinite, before its gradient reaches a weight."""
    bad = [key for key, value in values.items() if not math.isfinite(value)]
    if bad:
        raise NonFiniteTraining(
            f"{label}, step {step} of {steps}: the {bad[0]} loss is {values[bad[0]]} (terms not finite: {', '.join(bad)}); "
            "training stopped before that step changed any weight, and the student kept so far is untouched. "
            f"{ADVICE}")


def refuse_non_finite_weights(label: str, models: dict) -> None:
    """Refuse to keep or checkpoint a model with a weight that is NaN or infinite (a step that overflowed)."""
    for name, model in models.items():
        if model is None:
            continue
        for parameter_name, parameter in model.named_parameters():
            if not torch.isfinite(parameter.detach()).all():
                raise NonFiniteTraining(f"{label}: the {name}'s {parameter_name} holds values that are not finite after "
                                        f"the epoch's last step; nothing of the epoch was kept or checkpointed. {ADVICE}")


def gradient_shares(terms: dict[str, torch.Tensor], states: torch.Tensor) -> dict[str, torch.Tensor]:
    """{"share:TERM": ‖∂term/∂h_s‖ / Σ ‖∂term'/∂h_s‖} for the weighted terms of L_s (see the module docstring)."""
    norms = {}
    for name, term in terms.items():
        gradient = torch.autograd.grad(term, states, retain_graph=True, allow_unused=True)[0]
        norms[name] = torch.zeros((), device=states.device) if gradient is None else gradient.detach().float().norm()
    total = sum(norms.values())
    return {f"{SHARE}{name}": norm / total if total > 0 else norm for name, norm in norms.items()}


def split_shares(parts: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """An epoch's averages → (loss parts, gradient shares by term)."""
    losses = {k: v for k, v in parts.items() if not k.startswith(SHARE)}
    shares = {k[len(SHARE):]: v for k, v in parts.items() if k.startswith(SHARE)}
    return losses, shares


@torch.no_grad()
def student_logits(accelerator, student, collate: Collator, batch_size: int, width: int) -> np.ndarray:
    """The student's outputs [n, width] for every example of `collate`'s split, each process scoring a share."""
    model = accelerator.unwrap_model(student)
    model.eval()
    order = np.argsort(-collate.encoded.lengths, kind="stable")     # similar lengths together: less padding
    mine = order[accelerator.process_index::accelerator.num_processes]
    rows = []
    for start in range(0, len(mine), batch_size):
        batch = collate(mine[start:start + batch_size]).to(accelerator.device)
        with accelerator.autocast():
            rows.append(model(batch.inputs, batch.choices)[0].float())
    return _gather_rows(accelerator, rows, order, width)


@torch.no_grad()
def aligner_logits(accelerator, aligner, features, batch_size: int, width: int) -> np.ndarray:
    """The aligner's outputs [n, width] for the teacher vectors `features` (feats[positions] → [k, D])."""
    model = accelerator.unwrap_model(aligner)
    model.eval()
    order = np.arange(len(features))
    mine = order[accelerator.process_index::accelerator.num_processes]
    rows = [model(torch.from_numpy(features[mine[s:s + batch_size]]).to(accelerator.device), project=False)[0].float()
            for s in range(0, len(mine), batch_size)]
    return _gather_rows(accelerator, rows, order, width)


def _gather_rows(accelerator, rows: list[torch.Tensor], order: np.ndarray, width: int) -> np.ndarray:
    """Process p scored order[p::P] (rows of `width` outputs); every row put back at its position."""
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
