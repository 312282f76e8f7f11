"""A digest of what training produces, to compare before and after a change to the training code.

Four tiny runs (the tests' tiny BERT and LLaMA, synthetic teacher vectors, one thread): the authors' alternating
schedule with gradient accumulation 2, teacher noise and a linear schedule; the paper's joint schedule with
the cosine loss; undistilled; lm with its aligner pre-trained for an epoch. Each prints a digest of every
weight file it wrote (student, aligner, the checkpoint's optimizer states) and of metrics.jsonl less its
seconds. Equal digests before and after a change: training results did not change, bit for bit (on one
machine; other CPUs may round differently).

    OMP_NUM_THREADS=1 .venv/bin/python bench/training_digest.py
"""
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
torch.set_num_threads(1)
import distill_tiny as tiny  # noqa: E402
import lm_tiny  # noqa: E402
from armada.distill.recipe import train  # noqa: E402
from armada.tasks import get_task  # noqa: E402


def digest(run: Path) -> str:
    h = hashlib.sha256()
    files = sorted(p for p in run.rglob("*.safetensors"))
    for p in files:
        h.update(p.relative_to(run).as_posix().encode())
        h.update(p.read_bytes())
    for line in (run / "metrics.jsonl").read_text().splitlines():
        h.update(json.dumps({**json.loads(line), "seconds": 0}, sort_keys=True).encode())
    return h.hexdigest()[:16] + f" ({len(files)} weight files)"


root = Path(tempfile.mkdtemp(prefix="training-digest-"))
torch.manual_seed(0)
encoder = tiny.make_encoder(root / "encoder")
name, tables = tiny.file_task(root / "data", train=24)
task = get_task(f"file:{name}", tables)
splits = {s: task.load(s) for s in ("train", "validation")}
cache = tiny.write_cache(root / "cache.zarr", task, splits)
runs = {
    "authors (alternating), accumulation 2, noise, linear": tiny.tiny_config(encoder, gradient_accumulation_steps=2,
                                                                            teacher_noise=0.2, lr_schedule="linear",
                                                                            warmup_ratio=0.2),
    "paper (joint), cosine": tiny.tiny_config(encoder, recipe="paper", schedule="joint", manifold="cosine",
                                              dropout=0.0, max_grad_norm=0.0, heads="paper", clip_predictions=False),
    "undistilled": tiny.tiny_config(encoder, undistilled=True),
}
for label, config in runs.items():
    out = root / label.split()[0]
    train(config, task, None if config.undistilled else str(cache), "", out)
    print(f"{label}: {digest(out)}", flush=True)
lm_student = lm_tiny.make_lm(root / "lm", "llama")
lm_name, lm_tables = lm_tiny.instruction_task(root / "lm-data")
lm_task = get_task(f"file:{lm_name}", lm_tables)
lm_splits = {s: lm_task.load(s) for s in ("train", "validation")}
lm_cache = tiny.write_cache(root / "lm-cache.zarr", lm_task, lm_splits,
                            vectors=lambda split, dim: np.random.default_rng(0).normal(size=(len(split), dim)).astype("float32"))
config = lm_tiny.lm_config(lm_student, epochs=2, aligner_pretrain_epochs=1)
train(config, lm_task, str(lm_cache), "", root / "lm-run")
print(f"lm, aligner pre-trained 1 epoch: {digest(root / 'lm-run')}", flush=True)
shutil.rmtree(root)
