"""ARMADA's trainable parts besides the backbone, named as the paper's Table 1 names them.

Two shapes (`heads` in [distill]): "paper" as Table 1 draws them, "authors" as the authors' code
(LCS2-IIITD/ARMADA, models.py) builds them, which produced the paper's numbers.

Student heads, on the pooled backbone state h_s (dimension d):
  Ftilde_s  F̃_s     paper: d → d, Linear + tanh; authors: none (h'_s = h_s, BERT's pooler already
                    is Linear + tanh)                                      h'_s
  O_s       O_s     d → c, the task output layer                           o_s
  P_s       P_s     d → projection_dim, no bias; paper: orthogonal; authors: plain, N(0, 0.02)  p_s
  O_aux_s   O_aux_s projection_dim → c, the auxiliary output               o_aux_s

TS Aligner, on the teacher vector h_t (dimension D):
  Ftilde_ts F̃_ts    D → h → h; paper: Linear, ReLU, Linear, tanh; authors: Linear, ReLU, Linear, ReLU
  O_ts      O_ts    h → c                                                  o_ts
  P_ts      P_ts    orthogonal, no bias; paper: h'_ts → projection_dim; authors: h_t → projection_dim
                    (the raw teacher vector)                               p_ts
  O_aux_ts  O_aux_ts projection_dim → c                                    o_aux_ts

`dropout` (the authors use 0.1) acts on the inputs of every output layer and after each layer of
the authors' F̃_ts. The authors' regression outputs pass a ReLU (STS-B scores are ≥ 0) and their
linear layers start from N(0, 0.02) with zero biases.

Generative students (`objective = "lm"`, armada.distill.lm) have no class outputs. Their student
keeps F̃_s and P_s only (`StudentProjection`), and the TS Aligner learns from the teacher vectors
alone (`ReconstructionAligner`): F̃_ts and P_ts as above, and a decoder R_ts from the projection
back to the teacher vector, trained by the mean squared error of its output (the paper's §4:
"pre-trained using reconstruction loss"). The decoder reads p_ts, not h'_ts, so that the projection
the student aligns to is the one forced to carry the teacher's information.

In the paper shape both non-linear mappings end in tanh, so the manifold projections stay bounded
(an orthogonal P preserves norms) and the manifold losses cannot be lowered by inflating them.

Orthogonal projections are kept so by `torch.nn.utils.parametrizations.orthogonal` (orthonormal
columns when they map to a larger space, orthonormal rows when to a smaller one), with the map
`orthogonal_map` names: "cayley" (no trivialisation base, so it starts from the embedding of the
identity: for the paper's sizes it costs a tenth of the Householder or matrix-exponential maps per
step on a CPU), or "matrix_exp", what torch's defaults give the authors' square P_ts (models.py
159): the matrix exponential, trivialised around the orthogonalised default-initialised weight, so
it starts from a random rotation. A P_ts that is not square (a 384-d teacher onto the 1024-d
manifold) is given the same map, which torch computes on the square matrix it embeds it in; torch's
own default there, Householder, is not what the authors' P_ts is (and costs more still:
bench/orthogonal_maps.py). The matrix-exponential map is torch's own, the same initialisation and the
same forward bit for bit, with one change: its gradient is the exact derivative computed through an
eigendecomposition (`_SkewExp`) on a CPU, not through torch's exponential of a 2n × 2n block matrix,
which made nine tenths of an aligner step (bench/orthogonal_maps.py measures both). The projections
are computed only where a loss needs them: not for predictions, not for the undistilled baseline.
Saved files hold the materialised matrices (`plain_state_dict`), so inference needs no
parametrisation and no ARMADA code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _Orthogonal, _OrthMaps, orthogonal

SHAPES = ("paper", "authors")


@dataclass(frozen=True)
class HeadShape:
    """How the heads are built: `shape` (paper or authors), dropout, and whether outputs pass a ReLU
    (the authors' regression heads)."""

    shape: str = "paper"
    dropout: float = 0.0
    relu_outputs: bool = False
    orthogonal_map: str = "cayley"      # armada.config.DistillConfig.orthogonal_map

    def __post_init__(self):
        if self.shape not in SHAPES:
            raise ValueError(f"unknown head shape {self.shape!r}; the shapes are {SHAPES}")
        if self.orthogonal_map not in ORTHOGONAL_MAPS:
            raise ValueError(f"unknown orthogonal map {self.orthogonal_map!r}; the maps are {ORTHOGONAL_MAPS}")


ORTHOGONAL_MAPS = ("cayley", "matrix_exp")


def _projection(inputs: int, outputs: int, trained: bool, orthogonal_map: str = "cayley") -> nn.Linear:
    linear = nn.Linear(inputs, outputs, bias=False)
    if not trained:
        return linear
    if orthogonal_map == "matrix_exp":
        # What orthogonal(linear, orthogonal_map="matrix_exp") registers (torch's default trivialisation base, drawn
        # by the same random calls), with the faster exact gradient.
        parametrize.register_parametrization(linear, "weight", _ExpOrthogonal(linear.weight, _OrthMaps.matrix_exp),
                                             unsafe=True)
        return linear
    # No trivialisation base: it would add an n×n product to every step, and no one re-bases it.
    return orthogonal(linear, orthogonal_map="cayley", use_trivialization=False)


class _SkewExp(torch.autograd.Function):
    """exp(A) for a real skew-symmetric A (Aᵀ = −A): torch.matrix_exp forward; backward, the gradient of
    ⟨G, exp(A)⟩, which is the Fréchet derivative of exp at Aᵀ in the direction G, computed through the
    eigendecomposition of the Hermitian iA = V diag(w) Vᴴ. Then Aᵀ = V diag(iw) Vᴴ and the derivative is
    V (Φ ∘ VᴴGV) Vᴴ with
        Φ_jk = (e^{iw_j} − e^{iw_k}) / (i(w_j − w_k)) = e^{i(w_j + w_k)/2} · sin((w_j − w_k)/2) / ((w_j − w_k)/2),
    the second form exact for equal eigenvalues too. On a 1024 × 1024 float32 matrix this is about 1 s against the
    2.8 s of torch's 2n × 2n exponential, and nearer the float64 gradient (2e-6 of its largest entry against 3e-4)."""

    @staticmethod
    def forward(ctx, A: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(A)
        return torch.matrix_exp(A)

    @staticmethod
    def backward(ctx, G: torch.Tensor) -> torch.Tensor:
        (A,) = ctx.saved_tensors
        complex_dtype = torch.complex128 if A.dtype == torch.float64 else torch.complex64
        w, V = torch.linalg.eigh(1j * A.to(complex_dtype))
        half_sum = (w[..., :, None] + w[..., None, :]) / 2
        half_difference = (w[..., :, None] - w[..., None, :]) / 2
        phi = torch.polar(torch.ones_like(half_sum), half_sum) * torch.sinc(half_difference / torch.pi)
        Vh = V.mH
        return (V @ ((Vh @ G.to(complex_dtype) @ V) * phi) @ Vh).real.to(A.dtype)


class _ExpOrthogonal(_Orthogonal):
    """torch's orthogonal parametrisation by the matrix exponential with a trivialisation base: its forward for that
    map, step for step, with exp taken by `_SkewExp` on a CPU."""

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        n, k = X.size(-2), X.size(-1)
        transposed = n < k
        if transposed:
            X, n, k = X.mT, k, n
        X = X.tril()
        if n != k:                                          # embedded in a square matrix
            X = torch.cat([X, X.new_zeros(n, n - k).expand(*X.shape[:-2], -1, -1)], dim=-1)
        A = X - X.mH
        # On a GPU torch's block exponential is a few fast matrix products and an eigendecomposition is not: only the
        # CPU, where it was measured, takes the other gradient.
        Q = self.base @ (_SkewExp.apply(A) if A.device.type == "cpu" else torch.matrix_exp(A))[..., :k]
        return Q.mT if transposed else Q


def _authors_init(*layers: nn.Linear) -> None:
    for layer in layers:
        nn.init.normal_(layer.weight, mean=0.0, std=0.02)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


class _OutputHeads(nn.Module):
    """O and O_aux with dropout on their inputs and the optional ReLU on their outputs."""

    def __init__(self, shape: HeadShape):
        super().__init__()
        self.drop = nn.Dropout(shape.dropout)
        self.relu_outputs = shape.relu_outputs

    def out(self, layer: nn.Linear, inputs: torch.Tensor) -> torch.Tensor:
        outputs = layer(self.drop(inputs))
        return outputs.relu() if self.relu_outputs else outputs


class StudentHeads(_OutputHeads):
    """F̃_s, O_s, P_s, O_aux_s. `orthogonal=False` builds plain layers for loading saved weights."""

    def __init__(self, hidden: int, outputs: int, projection_dim: int, shape: HeadShape = HeadShape(),
                 orthogonal: bool = True):
        super().__init__(shape)
        authors = shape.shape == "authors"
        self.Ftilde_s = nn.Identity() if authors else nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh())
        self.O_s = nn.Linear(hidden, outputs)
        self.P_s = (nn.Linear(hidden, projection_dim, bias=False) if authors
                    else _projection(hidden, projection_dim, orthogonal, shape.orthogonal_map))
        self.O_aux_s = nn.Linear(projection_dim, outputs)
        if authors:
            _authors_init(self.O_s, self.P_s, self.O_aux_s)

    def forward(self, pooled: torch.Tensor, project: bool = True):
        """(o_s, p_s, o_aux_s) for pooled states [n, d]; (o_s, None, None) without `project`."""
        hidden = self.Ftilde_s(pooled)
        if not project:
            return self.out(self.O_s, hidden), None, None
        projection = self.P_s(hidden)
        return self.out(self.O_s, hidden), projection, self.out(self.O_aux_s, projection)


class TSAligner(_OutputHeads):
    """F̃_ts, O_ts, P_ts, O_aux_ts: learns the task from the teacher's vectors alone."""

    def __init__(self, teacher_dim: int, hidden: int, outputs: int, projection_dim: int, shape: HeadShape = HeadShape(),
                 orthogonal: bool = True):
        super().__init__(shape)
        self.teacher_dim, self.hidden, self.outputs, self.projection_dim = teacher_dim, hidden, outputs, projection_dim
        self.shape = shape
        self.authors = shape.shape == "authors"
        first, second = nn.Linear(teacher_dim, hidden), nn.Linear(hidden, hidden)
        if self.authors:
            _authors_init(first, second)
            drop = shape.dropout
            self.Ftilde_ts = nn.Sequential(first, nn.ReLU(), nn.Dropout(drop), second, nn.ReLU(), nn.Dropout(drop))
        else:
            self.Ftilde_ts = nn.Sequential(first, nn.ReLU(), second, nn.Tanh())
        self.O_ts = nn.Linear(hidden, outputs)
        self.P_ts = _projection(teacher_dim if self.authors else hidden, projection_dim, orthogonal, shape.orthogonal_map)
        self.O_aux_ts = nn.Linear(projection_dim, outputs)
        if self.authors:
            _authors_init(self.O_ts, self.O_aux_ts)

    def forward(self, features: torch.Tensor, project: bool = True):
        """(o_ts, p_ts, o_aux_ts) for teacher vectors [n, D]; (o_ts, None, None) without `project`."""
        hidden = self.Ftilde_ts(features)
        if not project:
            return self.out(self.O_ts, hidden), None, None
        # The authors drop out p_ts twice before O_aux_ts (their drop3, then the head's own dropout).
        projection = self.P_ts(features if self.authors else hidden)
        aux_input = self.drop(projection) if self.authors else projection
        return self.out(self.O_ts, hidden), projection, self.out(self.O_aux_ts, aux_input)

    def config(self) -> dict:
        return {"teacher_dim": self.teacher_dim, "hidden": self.hidden, "outputs": self.outputs,
                "projection_dim": self.projection_dim, "shape": asdict(self.shape)}


class StudentProjection(nn.Module):
    """F̃_s and P_s: a generative student's way onto the shared manifold (no class outputs)."""

    def __init__(self, hidden: int, projection_dim: int, orthogonal: bool = True, orthogonal_map: str = "cayley"):
        super().__init__()
        self.Ftilde_s = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh())
        self.P_s = _projection(hidden, projection_dim, orthogonal, orthogonal_map)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """p_s [n, projection_dim] for pooled states [n, d]."""
        return self.P_s(self.Ftilde_s(pooled))


class ReconstructionAligner(nn.Module):
    """F̃_ts, P_ts and the decoder R_ts: learns the teacher's vectors by reconstructing them."""

    def __init__(self, teacher_dim: int, hidden: int, projection_dim: int, orthogonal: bool = True,
                 orthogonal_map: str = "cayley"):
        super().__init__()
        self.teacher_dim, self.hidden, self.projection_dim = teacher_dim, hidden, projection_dim
        self.Ftilde_ts = nn.Sequential(nn.Linear(teacher_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.Tanh())
        self.P_ts = _projection(hidden, projection_dim, orthogonal, orthogonal_map)
        self.R_ts = nn.Sequential(nn.Linear(projection_dim, hidden), nn.ReLU(), nn.Linear(hidden, teacher_dim))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(p_ts [n, projection_dim], reconstruction [n, D]) for teacher vectors [n, D]."""
        projection = self.P_ts(self.Ftilde_ts(features))
        return projection, self.R_ts(projection)

    def config(self) -> dict:
        return {"teacher_dim": self.teacher_dim, "hidden": self.hidden, "projection_dim": self.projection_dim}


def fixed_twin(aligner: TSAligner | ReconstructionAligner) -> TSAligner | ReconstructionAligner:
    """The aligner in eval mode with its orthogonal projection materialised once into a plain matrix: its outputs for
    as long as the aligner is not trained, without computing the projection again at every step (a linear solve, or
    for the authors' recipe a matrix exponential of the 1024×1024 P_ts)."""
    config = aligner.config()
    if "shape" in config:
        config["shape"] = HeadShape(**config["shape"])
    twin = type(aligner)(**config, orthogonal=False)
    twin.load_state_dict(plain_state_dict(aligner))
    with torch.no_grad():
        for prefix, module in aligner.named_modules():
            for name in module.parametrizations if parametrize.is_parametrized(module) else ():
                # Its own strides, not plain_state_dict's contiguous copy: a transposed matrix multiplies with other
                # rounding than its contiguous copy (up to 2.4e-7 apart).
                setattr(twin.get_submodule(prefix), name, nn.Parameter(getattr(module, name).clone(), requires_grad=False))
    return twin.to(next(aligner.parameters()).device).eval()


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
