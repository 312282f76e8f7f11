"""The scale of each term of the student's loss at initialisation, under each recipe: what "β = 1" means.

    .venv/bin/python bench/loss_scales.py             # minilm-l6 on 32 CoLA dev sentences, teacher vectors N(0, 1)

The student's pooled states h_s come from the real minilm-l6 on the first 32 CoLA dev sentences
(../shared/data/glue), pooled both ways (mean, as the model declares, and the pooler); the teacher
vectors are N(0, 1) of 1024 dimensions (Stable Diffusion's flattened latent, the paper's size).
Fresh heads and aligner of each recipe (seed 0, dropout off to measure the forms alone), labels
from the data. For each term of L_s, the table gives its value as it enters the loss (weights α =
0.5, β = 1, γ = 1) and the norm of its gradient at h_s, the tensor through which it reaches the
backbone. Averages over 5 seeds of the heads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from armada import config as config_module
from armada.distill.build import head_shape
from armada.distill.data import Collator, encode
from armada.distill.heads import StudentHeads, TSAligner
from armada.distill.losses import STUDENT_TERMS, student_losses, weighted_terms
from armada.distill.model import ArmadaStudent, HeadsConfig
from armada.distill.students import load_backbone
from armada.tasks import get_task

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "glue"
TEACHER_DIM, WEIGHTS = 1024, dict(alpha=0.5, beta=1.0, gamma=1.0)


def pooled_states(pooling: str, data_dir: str, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    task = get_task("glue/cola")
    split = task.load("validation", data_dir=data_dir, limit=rows)
    backbone = load_backbone("minilm-l6", pooling=pooling)
    config = HeadsConfig(task.name, task.kind, list(task.labels), 2, 384, 2, 16, backbone.pooling, "encoder", "minilm-l6",
                         backbone.source, 128)
    student = ArmadaStudent(backbone.model, StudentHeads(384, 2, 16), config).eval()
    batch = Collator(backbone.tokenizer, encode(backbone.tokenizer, split, 128), task.kind)(np.arange(len(split)))
    with torch.no_grad():
        return student.pool(batch.inputs), batch.labels


def measure(recipe: str, manifold: str, states: torch.Tensor, labels: torch.Tensor, seed: int) -> dict[str, tuple[float, float]]:
    settings = config_module.load(sets=[f'distill.recipe="{recipe}"', f'distill.manifold="{manifold}"', "distill.dropout=0.0"]).distill
    task = get_task("glue/cola")
    torch.manual_seed(seed)
    shape = head_shape(settings, task)
    heads = StudentHeads(states.shape[1], 2, settings.projection_dim, shape)
    aligner = TSAligner(TEACHER_DIM, settings.aligner_hidden, 2, settings.projection_dim, shape)
    h_s = states.clone().requires_grad_(True)
    teacher = torch.randn(len(states), TEACHER_DIM, generator=torch.Generator().manual_seed(100 + seed))
    parts = student_losses("classification", labels, *heads(h_s), aligner(teacher), tau=settings.tau, soft_form=settings.soft_loss,
                           manifold=manifold, manifold_form=settings.manifold_form, **WEIGHTS)
    terms = weighted_terms(parts, **WEIGHTS)
    return {name: (float(term.detach()), float(torch.autograd.grad(term, h_s, retain_graph=True)[0].norm()))
            for name, term in terms.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DATA), help="the GLUE folder (CoLA/ inside)")
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    if not Path(args.data_dir, "CoLA").is_dir():
        sys.exit(f"{args.data_dir}/CoLA is missing: give --data-dir, the GLUE folder as published")
    print(f"minilm-l6, {args.rows} CoLA dev sentences, teacher N(0, 1) × {TEACHER_DIM}; mean over {args.seeds} head seeds")
    print("value = the term as it enters L_s (α = 0.5, β = 1, γ = 1); ‖∇h_s‖ = its gradient's norm at the pooled states")
    print()
    print("| pooling | recipe  | manifold    | " + " | ".join(f"{t} value | {t} ‖∇h_s‖" for t in STUDENT_TERMS) + " |")
    print("|---" * (3 + 2 * len(STUDENT_TERMS)) + "|")
    for pooling in ("mean", "pooler"):
        states, labels = pooled_states(pooling, args.data_dir, args.rows)
        for recipe in ("paper", "authors"):
            for manifold in ("cosine", "euclid", "elementwise"):
                runs = [measure(recipe, manifold, states, labels, seed) for seed in range(args.seeds)]
                cells = []
                for term in STUDENT_TERMS:
                    cells += [f"{np.mean([r[term][0] for r in runs]):.4g}", f"{np.mean([r[term][1] for r in runs]):.3g}"]
                print(f"| {pooling} | {recipe} | {manifold} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
