"""Seconds per training step of an orthogonal projection under each map torch offers, on a CPU.

The authors' P_ts is `torch.nn.utils.parametrizations.orthogonal(nn.Linear(1024, 1024))`: torch's defaults, which
for a square matrix are matrix_exp with a trivialisation base; for a non-square one (piper-whisper's 384-d vectors
onto the 1024-d manifold) torch's default is Householder. ARMADA's own choice was Cayley without a base. ARMADA's
matrix_exp is torch's with the gradient computed through an eigendecomposition (armada.distill.heads._SkewExp): the
two are timed side by side. One step = forward of a batch through the projection, backward, an AdamW step (the
trivialised maps re-base nothing). Each map is timed at its initialisation and moved away from it (every parameter
drawn from N(0, 0.03), about where a few hundred AdamW steps at the authors' aligner lr of 3e-3 take it): the cost of
torch's matrix-exponential gradient grows with the matrix's norm, an eigendecomposition's does not.

    OMP_NUM_THREADS=1 .venv/bin/python bench/orthogonal_maps.py [--steps 20]
"""

import argparse
import time

import torch
from torch import nn
from torch.nn.utils.parametrizations import orthogonal

from armada.distill.heads import _projection

SHAPES = ((1024, 1024), (384, 1024))          # theirs (SD latent → manifold); ours (piper-whisper → manifold)


def _torch(**settings):
    return lambda inputs, outputs: orthogonal(nn.Linear(inputs, outputs, bias=False), **settings)


MAPS = {"cayley (no base)": _torch(orthogonal_map="cayley", use_trivialization=False),
        "matrix_exp (torch's default, square)": _torch(orthogonal_map="matrix_exp"),
        "matrix_exp, ARMADA's gradient (recipe = \"authors\")": lambda i, o: _projection(i, o, True, "matrix_exp"),
        "householder (torch's default, not square)": _torch(orthogonal_map="householder")}


def seconds_per_step(inputs: int, outputs: int, build, moved: float, steps: int, batch: int = 8) -> float:
    torch.manual_seed(0)
    layer = build(inputs, outputs)
    if moved:
        with torch.no_grad():
            layer.parametrizations.weight.original.normal_(0, moved)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=1e-3)
    x = torch.randn(batch, inputs)
    for i in range(steps + 2):                  # two warm-up steps
        if i == 2:
            started = time.perf_counter()
        optimizer.zero_grad()
        layer(x).pow(2).mean().backward()
        optimizer.step()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    steps = parser.parse_args().steps
    print(f"threads {torch.get_num_threads()}, {steps} steps each, batch 8")
    print("| map | 1024 → 1024, at init (s/step) | moved | 384 → 1024, at init | moved |")
    print("| --- | --- | --- | --- | --- |")
    for name, build in MAPS.items():
        times = [seconds_per_step(i, o, build, moved, steps) for i, o in SHAPES for moved in (0.0, 0.03)]
        print(f"| {name} | " + " | ".join(f"{t:.4f}" for t in times) + " |")


if __name__ == "__main__":
    main()
