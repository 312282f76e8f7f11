"""Seconds per training step of an orthogonal projection under each map torch offers, on a CPU.

The authors' P_ts is `torch.nn.utils.parametrizations.orthogonal(nn.Linear(1024, 1024))`: torch's defaults, which
for a square matrix are matrix_exp with a trivialisation base; for a non-square one (piper-whisper's 384-d vectors
onto the 1024-d manifold) torch's default is Householder. ARMADA's own choice was Cayley without a base. One step =
forward of a batch through the projection, backward, an AdamW step (the trivialised maps re-base nothing).

    OMP_NUM_THREADS=1 .venv/bin/python bench/orthogonal_maps.py [--steps 20]
"""

import argparse
import time

import torch
from torch import nn
from torch.nn.utils.parametrizations import orthogonal

SHAPES = ((1024, 1024), (384, 1024))          # theirs (SD latent → manifold); ours (piper-whisper → manifold)
MAPS = {"cayley (no base)": dict(orthogonal_map="cayley", use_trivialization=False),
        "matrix_exp (torch's default, square)": dict(orthogonal_map="matrix_exp"),
        "householder (torch's default, not square)": dict(orthogonal_map="householder")}


def seconds_per_step(inputs: int, outputs: int, settings: dict, steps: int, batch: int = 8) -> float:
    torch.manual_seed(0)
    layer = orthogonal(nn.Linear(inputs, outputs, bias=False), **settings)
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
    print("| map | 1024 → 1024 (s/step) | 384 → 1024 (s/step) |")
    print("| --- | --- | --- |")
    for name, settings in MAPS.items():
        times = [seconds_per_step(i, o, settings, steps) for i, o in SHAPES]
        print(f"| {name} | " + " | ".join(f"{t:.4f}" for t in times) + " |")


if __name__ == "__main__":
    main()
