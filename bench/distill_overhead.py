"""What ARMADA adds to a training step, and whether the cache keeps up with training, in one run.

    .venv/bin/python bench/distill_overhead.py            # minilm-l6, batch 32, length 128: ~1 min on 2 idle cores

Side by side, interleaved step by step (A B, then B A, so that a busy machine slows both alike),
the training step of ARMADA and of the undistilled baseline on the same student, built and
stepped by the real training loop (armada.distill.loop): the same data, every sequence 128
tokens, teacher vectors of 1024 dimensions (Stable Diffusion's latent, the paper's size) read
from a real cache, the default aligner (hidden 1024, projection 768), joint schedule, euclid
manifold loss. The table shows medians over the rounds (after one unrecorded warm-up round), in
wall time and in the process's CPU time (all threads), and the median of the rounds' ratios: the
two steps of a round run back to back, so they meet the same load from whatever else the machine
runs. A last line times ARMADA's own additions alone (aligner, P_s, O_aux_s, the extra losses):
the fastest of 20.

Then the cache: the rows/s of the features the collator fetches (random batches of 32 through
CacheReader's Features, as training asks for them) and of a whole-split load, against the rows/s
one process consumes in ARMADA training (batch / step time).

Targets (issue 4): ARMADA / undistilled step time ≤ 1.10; loader ≥ 20× consumption.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from armada.cache_schema import (CacheReader, CacheWriter, DatasetInfo, Extraction, Manifest, SplitInfo, TeacherInfo,
                                 chunk_rows_for)
from armada.config import DistillConfig
from armada.distill.data import Collator, encode
from armada.distill.build import adamw, build_aligner, build_student, lr_schedule
from armada.distill.loop import TrainingLoop
from armada.distill.task import TaskObjective
from armada.tasks import get_task
from armada.config import FileTask

TEACHER_DIM = 1024
WORDS = "the film was a quiet study of grief and memory told with patience warmth humour and a great deal of care".split()


def long_task(folder: Path, rows: int):
    """A file task whose texts all exceed 128 tokens, so every batch is 32 × 128."""
    rng = np.random.default_rng(0)
    paths = {}
    for split, count in (("train", rows), ("validation", 8)):
        path = folder / f"{split}.jsonl"
        with open(path, "w") as f:
            for i in range(count):
                text = " ".join(rng.choice(WORDS, size=200))
                f.write(json.dumps({"id": f"{split}-{i}", "text": text, "label": ["neg", "pos"][i % 2]}) + "\n")
        paths[split] = str(path)
    spec = FileTask(train=paths["train"], validation=paths["validation"], labels=("neg", "pos"), id_field="id")
    return get_task("file:bench", {"bench": spec})


def write_cache(path: Path, task, split) -> None:
    shard_rows = 2048
    manifest = Manifest(TeacherInfo("bench", "synthetic", TEACHER_DIM, {}),
                        Extraction("float16", shard_rows, chunk_rows_for(shard_rows, TEACHER_DIM, "float16")),
                        DatasetInfo(task.name, "bench", {"train": SplitInfo.of(split)}))
    writer = CacheWriter.create(path, manifest)
    vectors = np.random.default_rng(1).normal(size=(len(split), TEACHER_DIM)).astype(np.float32)
    for shard in writer.shards("train"):
        writer.write_shard("train", shard.index, vectors[shard.start:shard.stop], split.ids[shard.start:shard.stop],
                           split.teacher_hashes[shard.start:shard.stop])


def make_loop(config: DistillConfig, task, split, features):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    torch.manual_seed(0)
    student, tokenizer = build_student(config, task)
    aligner = None if config.undistilled else build_aligner(config, task, TEACHER_DIM)
    optimizers = {"student": adamw(student, config.lr, config.weight_decay, config.weight_decay_on)}
    if aligner is not None:
        optimizers["aligner"] = adamw(aligner, config.aligner_lr, config.weight_decay, config.weight_decay_on)
    schedulers = {name: lr_schedule(o, config, 10_000) for name, o in optimizers.items()}
    AcceleratorState._reset_state()
    accelerator = Accelerator(cpu=True)
    student, optimizers["student"] = accelerator.prepare(student, optimizers["student"])
    if aligner is not None:
        aligner, optimizers["aligner"] = accelerator.prepare(aligner, optimizers["aligner"])
    collate = Collator(tokenizer, encode(tokenizer, split, config.max_length), task.kind, features)
    return TrainingLoop(accelerator, config, TaskObjective(config, task), student, aligner, optimizers, schedulers,
                        collate), collate


def step_seconds(loop, batch) -> tuple[float, float]:
    """(wall, CPU) seconds of one training step."""
    wall, cpu = time.perf_counter(), time.process_time()
    loop.epoch(1, [batch])
    return time.perf_counter() - wall, time.process_time() - cpu


def armada_extra_seconds(repeats: int = 20) -> float:
    """Wall time of what an ARMADA step adds to an undistilled one, the two timed alike on the heads alone."""
    from armada.distill.heads import StudentHeads, TSAligner
    from armada.distill.losses import aligner_losses, student_losses

    torch.manual_seed(0)
    heads, aligner = StudentHeads(384, 2, 768), TSAligner(TEACHER_DIM, 1024, 2, 768)
    optimizer = torch.optim.AdamW(aligner.parameters())
    pooled, features, labels = torch.randn(32, 384), torch.randn(32, TEACHER_DIM), torch.randint(0, 2, (32,))
    weights = dict(alpha=0.5, beta=1.0, gamma=1.0, tau=5.0, soft_form="l2", manifold="euclid", manifold_form="norm")

    def armada() -> None:
        o_ts, p_ts, o_aux_ts = aligner(features)
        loss_t = aligner_losses("classification", labels, o_ts, o_aux_ts, 1.0)["loss_t"]
        loss_s = student_losses("classification", labels, *heads(pooled, True), (o_ts, p_ts, o_aux_ts), **weights)["loss_s"]
        (loss_s + loss_t).backward()
        optimizer.step()
        optimizer.zero_grad()
        heads.zero_grad()

    def undistilled() -> None:
        student_losses("classification", labels, *heads(pooled, False), None, **weights)["loss_s"].backward()
        heads.zero_grad()

    def fastest(step) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        return min(times)

    armada()
    return fastest(armada) - fastest(undistilled)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12, help="measured rounds of one step each side (after one warm-up)")
    parser.add_argument("--rows", type=int, default=4096, help="rows in the cached training split")
    args = parser.parse_args()
    batch, length = 32, 128

    with tempfile.TemporaryDirectory(prefix="armada-bench-") as tmp:
        root = Path(tmp)
        task = long_task(root, args.rows)
        split = task.load("train")
        write_cache(root / "cache.zarr", task, split)
        reader = CacheReader(root / "cache.zarr")
        start = time.perf_counter()
        features = reader.load("train", split.ids, split.teacher_hashes)
        load_rows_per_s = len(split) / (time.perf_counter() - start)

        base = dict(student="minilm-l6", batch_size=batch, max_length=length, manifold="euclid")
        armada, armada_collate = make_loop(DistillConfig(**base), task, split, features)
        undistilled, _ = make_loop(DistillConfig(**base, undistilled=True), task, split, None)
        assert armada_collate(np.arange(batch)).inputs["input_ids"].shape == (batch, length)

        rng = np.random.default_rng(2)
        times = {"armada": [], "undistilled": []}
        for round_ in range(args.rounds + 1):
            positions = rng.choice(len(split), size=batch, replace=False)
            order = [("armada", armada), ("undistilled", undistilled)]
            measured = {name: step_seconds(loop, positions) for name, loop in (order if round_ % 2 else order[::-1])}
            if round_:
                for name, value in measured.items():
                    times[name].append(value)
            print(f"round {round_}{' (warm-up)' if not round_ else ''}: "
                  + ", ".join(f"{n} {w:.2f} s wall / {c:.2f} s CPU" for n, (w, c) in measured.items()), flush=True)

        draws = [rng.choice(len(split), size=batch, replace=False) for _ in range(200)]
        start = time.perf_counter()
        for positions in draws:
            features[positions]
        batch_rows_per_s = len(draws) * batch / (time.perf_counter() - start)

    median = {name: [statistics.median(v[i] for v in values) for i in (0, 1)] for name, values in times.items()}
    per_round = [statistics.median(a[i] / u[i] for a, u in zip(times["armada"], times["undistilled"])) for i in (0, 1)]
    extra = armada_extra_seconds()
    consumed = batch / median["armada"][0]
    print()
    print(f"minilm-l6, batch {batch}, length {length}, teacher dim {TEACHER_DIM}, aligner hidden 1024, projection 768; "
          f"{args.rounds} rounds, torch threads {torch.get_num_threads()}")
    print()
    print("| training step                        | wall s/step | CPU s/step |")
    print("|--------------------------------------|-------------|------------|")
    for name, label in (("undistilled", "undistilled"), ("armada", "ARMADA (joint, euclid)")):
        print(f"| {label:36} | {median[name][0]:11.2f} | {median[name][1]:10.2f} |")
    print(f"| ARMADA / undistilled (target ≤ 1.10) | {per_round[0]:11.3f} | {per_round[1]:10.3f} |")
    print("(medians over the rounds; the ratio is the median of the rounds' back-to-back ratios)")
    print(f"ARMADA's own work alone (aligner forward/backward/AdamW, P_s and O_aux_s, the extra losses), fastest of 20: "
          f"{extra:.3f} s = {extra / median['undistilled'][0]:.3f} of the median undistilled step")
    print()
    print("| cache rows/s                          | rows/s     | × ARMADA consumption |")
    print("|---------------------------------------|------------|----------------------|")
    print(f"| consumed by ARMADA training (1 proc.) | {consumed:10.1f} | {1:20.0f} |")
    print(f"| {f'random batches of {batch} (Features[idx])':37} | {batch_rows_per_s:10.0f} | {batch_rows_per_s / consumed:20.0f} |")
    print(f"| whole-split load + id/hash checks     | {load_rows_per_s:10.0f} | {load_rows_per_s / consumed:20.0f} |")
    print("(target: loader ≥ 20× consumption)")


if __name__ == "__main__":
    main()
