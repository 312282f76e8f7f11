"""ARMADA's losses, as the paper's equations 1-5 and §3.3 write them.

Task loss L_T: cross-entropy for classification and multiple choice (over the choices), mean
squared error for regression. Φ is softmax for classification and multiple choice, identity for
regression.

  L_ts¹ = L_T(Y, o_ts)                                                      (eq. 1)
  L_s¹  = (1 − α)·L_T(Y, o_s) + α·soft(o_ts, o_s)                          (eq. 2)
  L_ts² = L_T(Y, o_aux_ts);  L_s² = (1 − α)·L_T(Y, o_aux_s) + α·soft(o_aux_ts, o_aux_s)
  L_t   = L_ts¹ + γ·L_ts²
  L_s   = L_s¹ + γ·L_s² + β·L_manifold(p_ts, p_s)                            (eq. 3-5)

soft(a, b) is `soft_loss = "l2"`: eq. 2 as written, the batch mean of the per-example
‖Φ(a/τ) − Φ(b/τ)‖₂; or `"mse"`: the authors' code, the mean squared difference of the softened
outputs times τ².

The manifold losses compare projections [n, projection_dim]; `form = "norm"` is eq. 3-5 as printed,
`"mse"` the authors' code (`F.mse_loss`: the mean of squared differences over the P dimensions,
(1/P)·‖·‖², which at initialisation is 40-100× smaller than the norm for P = 768-1024):
               form "norm"                       form "mse"
  cosine       1 − cos(mean p_ts, mean p_s)      the same                        (eq. 3)
  euclid       ‖mean p_ts − mean p_s‖₂           (1/P)·‖mean p_ts − mean p_s‖²   (eq. 4)
  elementwise  mean_i ‖p_ts_i − p_s_i‖₂          (1/(nP))·Σ_i ‖p_ts_i − p_s_i‖²  (eq. 5)
Eq. 3 writes ⟨·,·⟩; the proof of Proposition 1 expands ‖a − b‖² as ‖a‖² + ‖b‖² − 2‖a‖‖b‖⟨a, b⟩,
so ⟨·,·⟩ there is the cosine of the angle, which is what "cosine" computes.

The student's losses take the aligner's outputs as constants: `student_losses` detaches them,
so the aligner learns only from L_t.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MANIFOLD_LOSSES = ("cosine", "euclid", "elementwise")
STUDENT_TERMS = ("task", "soft", "aux", "manifold")      # the parts of L_s, in the order of eq. 2 and §3.3


def task_loss(kind: str, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L_T: outputs [n, c] (regression: [n, 1]) against class ids, choice ids or targets."""
    if kind == "regression":
        return F.mse_loss(outputs.squeeze(-1).float(), labels.float())
    return F.cross_entropy(outputs.float(), labels)


def soften(kind: str, outputs: torch.Tensor, tau: float) -> torch.Tensor:
    """Φ(o / τ)."""
    scaled = outputs.float() / tau
    return scaled if kind == "regression" else scaled.softmax(dim=-1)


def soft_loss(kind: str, teacher: torch.Tensor, student: torch.Tensor, tau: float, form: str) -> torch.Tensor:
    """The logit-matching term of eq. 2 between aligner outputs `teacher` and student outputs."""
    difference = soften(kind, teacher, tau) - soften(kind, student, tau)
    if form == "l2":
        return difference.norm(dim=-1).mean()
    if form == "mse":
        return difference.pow(2).mean() * tau**2
    raise ValueError(f"unknown soft loss form {form!r}")


def kd_loss(kind: str, teacher: torch.Tensor, student: torch.Tensor, tau: float) -> torch.Tensor:
    """Hinton KD's term, τ²·KL(softmax(z_t/τ) ‖ softmax(o_s/τ)) averaged over the batch, for teacher logits z_t
    and student outputs [n, c] (over the choices for multiple choice); for regression, where Φ is the identity,
    τ²·MSE(z_t/τ, o_s/τ) = MSE(z_t, o_s): the student matches the teacher's scores."""
    if kind == "regression":
        return F.mse_loss(student.float(), teacher.float())
    return F.kl_div((student.float() / tau).log_softmax(dim=-1), (teacher.float() / tau).log_softmax(dim=-1),
                    reduction="batchmean", log_target=True) * tau**2


def manifold_loss(name: str, p_ts: torch.Tensor, p_s: torch.Tensor, form: str) -> torch.Tensor:
    p_ts, p_s = p_ts.float(), p_s.float()
    if form not in ("norm", "mse"):
        raise ValueError(f"unknown manifold loss form {form!r}")
    if name == "cosine":
        return 1 - F.cosine_similarity(p_ts.mean(dim=0), p_s.mean(dim=0), dim=0)
    if name == "euclid":
        difference = p_ts.mean(dim=0) - p_s.mean(dim=0)
        return difference.norm() if form == "norm" else difference.pow(2).mean()
    if name == "elementwise":
        difference = p_ts - p_s
        return difference.norm(dim=-1).mean() if form == "norm" else difference.pow(2).mean()
    raise ValueError(f"unknown manifold loss {name!r}; the losses are {MANIFOLD_LOSSES}")


def aligner_losses(kind: str, labels: torch.Tensor, o_ts, o_aux_ts, gamma: float) -> dict[str, torch.Tensor]:
    """L_t and its parts: {"loss_t", "aligner_task" (L_ts¹), "aligner_aux" (L_ts²)}."""
    first = task_loss(kind, o_ts, labels)
    second = task_loss(kind, o_aux_ts, labels)
    return {"loss_t": first + gamma * second, "aligner_task": first, "aligner_aux": second}


def student_losses(kind: str, labels: torch.Tensor, o_s, p_s, o_aux_s, aligner: tuple | None, *,
                   alpha: float, beta: float, gamma: float, tau: float, soft_form: str, manifold: str,
                   manifold_form: str) -> dict[str, torch.Tensor]:
    """L_s and its parts. `aligner` = (o_ts, p_ts, o_aux_ts), or None for the undistilled baseline.

    Distilled: {"loss_s", "task" (L_T(Y, o_s)), "soft", "manifold", "aux" (L_s²)}.
    Undistilled: {"loss_s", "task"} with loss_s = L_T(Y, o_s): the task loss alone.
    `weighted_terms` gives each part as it enters loss_s.
    """
    task = task_loss(kind, o_s, labels)
    if aligner is None:
        return {"loss_s": task, "task": task}
    o_ts, p_ts, o_aux_ts = (t.detach() for t in aligner)
    soft = soft_loss(kind, o_ts, o_s, tau, soft_form)
    aux = (1 - alpha) * task_loss(kind, o_aux_s, labels) + alpha * soft_loss(kind, o_aux_ts, o_aux_s, tau, soft_form)
    manifold_value = manifold_loss(manifold, p_ts, p_s, manifold_form)
    total = (1 - alpha) * task + alpha * soft + gamma * aux + beta * manifold_value
    return {"loss_s": total, "task": task, "soft": soft, "manifold": manifold_value, "aux": aux}


def weighted_terms(losses: dict[str, torch.Tensor], *, alpha: float, beta: float, gamma: float) -> dict[str, torch.Tensor]:
    """The terms of L_s as they are summed: (1 − α)·task, α·soft, γ·aux, β·manifold (distilled runs)."""
    weights = {"task": 1 - alpha, "soft": alpha, "aux": gamma, "manifold": beta}
    return {term: weights[term] * losses[term] for term in STUDENT_TERMS if term in losses}
