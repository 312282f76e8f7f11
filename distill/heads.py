"""ARMADA's trainable parts besides the backbone, named as the paper's Table 1 names them.

Student heads, on the pooled backbone state h_s (dimension d):
  Ftilde_s  F̃_s     d → d, non-linear (Linear + tanh)             h'_s
  O_s       O_s     d → c, the task output layer                   o_s
  P_s       P_s     d → projection_dim, orthogonal, no bias        p_s
  O_aux_s   O_aux_s projection_dim → c, the auxiliary output       o_aux_s

TS Aligner, on the teacher vector h_t (dimension D):
  Ftilde_ts F̃_ts    D → h → h, an MLP (Linear, ReLU, Linear, tanh) h'_ts
  O_ts      O_ts    h → c                                          o_ts
  P_ts      P_ts    h → projection_dim, orthogonal, no bias        p_ts
  O_aux_ts  O_aux_ts projection_dim → c                            o_aux_ts

Generative students (`objective = "lm"`, armada.distill.lm) have no class outputs. Their student
keeps F̃_s and P_s only (`StudentProjection`), and the TS Aligner learns from the teacher vectors
alone (`ReconstructionAligner`): F̃_ts and P_ts as above, and a decoder R_ts from the projection
back to the teacher vector, trained by the mean squared error of its output (the paper's §4:
"pre-trained using reconstruction loss"). The decoder reads p_ts, not h'_ts, so that the projection
the student aligns to is the one forced to carry the teacher's information.

Both non-linear mappings end in tanh, so the manifold projections stay bounded (an orthogonal P
preserves norms) and the manifold losses cannot be lowered by inflating them.

P_s and P_ts are kept orthogonal by `torch.nn.utils.parametrizations.orthogonal` (orthonormal
columns when they map to a larger space, orthonormal rows when to a smaller one), with the
Cayley map: for the paper's sizes it costs a tenth of the Householder or matrix-exponential maps
per step on a CPU. The projections are computed only where a loss needs them: not for predictions,
not for the undistilled baseline. Saved files hold the materialised matrices
(`plain_state_dict`), so inference needs no parametrisation and no ARMADA code.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import orthogonal


def _projection(inputs: int, outputs: int, trained: bool) -> nn.Linear:
    linear = nn.Linear(inputs, outputs, bias=False)
    # No trivialisation base: it would add an n×n product to every step, and no one re-bases it.
    return orthogonal(linear, orthogonal_map="cayley", use_trivialization=False) if trained else linear


class StudentHeads(nn.Module):
    """F̃_s, O_s, P_s, O_aux_s. `orthogonal=False` builds plain layers for loading saved weights."""

    def __init__(self, hidden: int, outputs: int, projection_dim: int, orthogonal: bool = True):
        super().__init__()
        self.Ftilde_s = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh())
        self.O_s = nn.Linear(hidden, outputs)
        self.P_s = _projection(hidden, projection_dim, orthogonal)
        self.O_aux_s = nn.Linear(projection_dim, outputs)

    def forward(self, pooled: torch.Tensor, project: bool = True):
        """(o_s, p_s, o_aux_s) for pooled states [n, d]; (o_s, None, None) without `project`."""
        hidden = self.Ftilde_s(pooled)
        if not project:
            return self.O_s(hidden), None, None
        projection = self.P_s(hidden)
        return self.O_s(hidden), projection, self.O_aux_s(projection)


class TSAligner(nn.Module):
    """F̃_ts, O_ts, P_ts, O_aux_ts: learns the task from the teacher's vectors alone."""

    def __init__(self, teacher_dim: int, hidden: int, outputs: int, projection_dim: int, orthogonal: bool = True):
        super().__init__()
        self.teacher_dim, self.hidden, self.outputs, self.projection_dim = teacher_dim, hidden, outputs, projection_dim
        self.Ftilde_ts = nn.Sequential(nn.Linear(teacher_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.Tanh())
        self.O_ts = nn.Linear(hidden, outputs)
        self.P_ts = _projection(hidden, projection_dim, orthogonal)
        self.O_aux_ts = nn.Linear(projection_dim, outputs)

    def forward(self, features: torch.Tensor, project: bool = True):
        """(o_ts, p_ts, o_aux_ts) for teacher vectors [n, D]; (o_ts, None, None) without `project`."""
        hidden = self.Ftilde_ts(features)
        if not project:
            return self.O_ts(hidden), None, None
        projection = self.P_ts(hidden)
        return self.O_ts(hidden), projection, self.O_aux_ts(projection)

    def config(self) -> dict:
        return {"teacher_dim": self.teacher_dim, "hidden": self.hidden, "outputs": self.outputs,
                "projection_dim": self.projection_dim}


class StudentProjection(nn.Module):
    """F̃_s and P_s: a generative student's way onto the shared manifold (no class outputs)."""

    def __init__(self, hidden: int, projection_dim: int, orthogonal: bool = True):
        super().__init__()
        self.Ftilde_s = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh())
        self.P_s = _projection(hidden, projection_dim, orthogonal)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """p_s [n, projection_dim] for pooled states [n, d]."""
        return self.P_s(self.Ftilde_s(pooled))


class ReconstructionAligner(nn.Module):
    """F̃_ts, P_ts and the decoder R_ts: learns the teacher's vectors by reconstructing them."""

    def __init__(self, teacher_dim: int, hidden: int, projection_dim: int, orthogonal: bool = True):
        super().__init__()
        self.teacher_dim, self.hidden, self.projection_dim = teacher_dim, hidden, projection_dim
        self.Ftilde_ts = nn.Sequential(nn.Linear(teacher_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.Tanh())
        self.P_ts = _projection(hidden, projection_dim, orthogonal)
        self.R_ts = nn.Sequential(nn.Linear(projection_dim, hidden), nn.ReLU(), nn.Linear(hidden, teacher_dim))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(p_ts [n, projection_dim], reconstruction [n, D]) for teacher vectors [n, D]."""
        projection = self.P_ts(self.Ftilde_ts(features))
        return projection, self.R_ts(projection)

    def config(self) -> dict:
        return {"teacher_dim": self.teacher_dim, "hidden": self.hidden, "projection_dim": self.projection_dim}


def plain_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """The weights with every parametrised matrix materialised, keyed as a plain module's."""
    # Not remove_parametrizations on a copy: a copy shares the parametrised class with the original,
    # and removal edits that class.
    state = {k: v for k, v in module.state_dict().items() if ".parametrizations." not in f".{k}"}
    with torch.no_grad():
        for prefix, sub in module.named_modules():
            if parametrize.is_parametrized(sub):
                for name in sub.parametrizations:
                    state[f"{prefix}.{name}" if prefix else name] = getattr(sub, name)
    return {k: v.detach().contiguous() for k, v in state.items()}
