"""`armada distill`'s undistilled training steps against a plain `transformers.Trainer` fine-tune, in one run.

    .venv/bin/python bench/trainer_parity.py                      # CoLA from ../shared/data/glue, 256 rows a side
    .venv/bin/python bench/trainer_parity.py --threads 1 2        # also on one thread and on two

The same student (minilm-l6: all-MiniLM-L6-v2's weights), the same first `--rows` CoLA training
rows, batch 32, max length 128, AdamW at lr 2e-5 with weight decay 0.01, padding to each batch's
longest row. ARMADA's side is the real training loop (armada.distill.loop, built as `armada
distill --undistilled --recipe authors --pooling pooler` builds it: the pooler output through
dropout 0.1 to one linear layer, which is exactly BertForSequenceClassification, the model
Trainer fine-tunes). Trainer's side is `Trainer.train()` with evaluation, saving and logging off.

Each round trains one pass over the rows on each side, back to back, alternating which goes
first, for every setting: ARMADA with random batches and with `group_by_length`, Trainer with and
without its own `group_by_length`, at each thread count. The table gives median rows/s over the
rounds (after one unrecorded warm-up round) and the median of the rounds' ratios against Trainer
at the same thread count: the sides of a round meet the same load from whatever else the machine
runs. Target (issue 12): ARMADA / Trainer ≥ 1.0 with random batches.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from distill_overhead import make_loop  # noqa: E402  (the real loop, built as train() builds it)

from armada import config as config_module  # noqa: E402
from armada.distill.data import epoch_batches  # noqa: E402
from armada.distill.students import locate  # noqa: E402
from armada.tasks import get_task  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "glue"
BATCH, LENGTH, LR, DECAY = 32, 128, 2e-5, 0.01


def armada_epoch(loop, count: int, grouped: bool, lengths: np.ndarray, seed: int) -> float:
    """Seconds for one pass over `count` rows through ARMADA's training loop."""
    batches = epoch_batches(count, BATCH, seed, 1, lengths if grouped else None)
    start = time.perf_counter()
    loop.epoch(1, batches)
    return time.perf_counter() - start


def trainer_epoch(folder: str, rows: list[dict], tokenizer, grouped: bool, seed: int, out: str) -> float:
    """Seconds `Trainer.train()` takes for one pass over `rows` (model built before the clock starts)."""
    from transformers import (AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer, TrainingArguments)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2)
    args = TrainingArguments(output_dir=out, per_device_train_batch_size=BATCH, num_train_epochs=1, learning_rate=LR,
                             weight_decay=DECAY, lr_scheduler_type="constant", logging_strategy="no", save_strategy="no",
                             eval_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True, seed=seed,
                             dataloader_num_workers=0,
                             train_sampling_strategy="group_by_length" if grouped else "random")
    trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=DataCollatorWithPadding(tokenizer))
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=256, help="CoLA training rows a side in each round")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (after one warm-up)")
    parser.add_argument("--threads", type=int, nargs="+", default=[os.cpu_count() or 1], help="torch thread counts to try")
    parser.add_argument("--data-dir", default=str(DATA), help="the GLUE folder (CoLA/ inside)")
    args = parser.parse_args()
    if not Path(args.data_dir, "CoLA").is_dir():
        sys.exit(f"{args.data_dir}/CoLA is missing: give --data-dir, the GLUE folder as published")

    pipeline = config_module.load(sets=['distill.recipe="authors"', 'distill.pooling="pooler"', "distill.undistilled=true",
                                        f"distill.batch_size={BATCH}", f"distill.max_length={LENGTH}", f"distill.lr={LR}",
                                        f"distill.weight_decay={DECAY}"])
    task = get_task("glue/cola")
    split = task.load("train", data_dir=args.data_dir, limit=args.rows)
    config = pipeline.distill_for(task.name)
    loop, collate = make_loop(config, task, split, None)
    lengths = collate.encoded.lengths
    folder = locate("minilm-l6").path
    tokenizer = AutoTokenizer.from_pretrained(folder)
    rows = [{"input_ids": row[0]["input_ids"], "attention_mask": row[0]["attention_mask"],
             "token_type_ids": row[0]["token_type_ids"], "labels": int(label)}
            for row, label in zip(collate.encoded.tokens, split.labels)]

    sides = ["armada", "armada group_by_length", "trainer", "trainer group_by_length"]
    rates = {(t, s): [] for t in args.threads for s in sides}
    ratios = {(t, s): [] for t in args.threads for s in sides}
    with tempfile.TemporaryDirectory(prefix="armada-bench-") as out:
        for round_ in range(args.rounds + 1):
            for threads in args.threads:
                torch.set_num_threads(threads)
                order = sides if round_ % 2 else sides[::-1]
                seconds = {}
                for side in order:
                    grouped = side.endswith("group_by_length")
                    if side.startswith("armada"):
                        seconds[side] = armada_epoch(loop, len(rows), grouped, lengths, round_)
                    else:
                        seconds[side] = trainer_epoch(folder, rows, tokenizer, grouped, round_, out)
                print(f"round {round_}{' (warm-up)' if not round_ else ''}, {threads} thread(s): "
                      + ", ".join(f"{s} {len(rows) / seconds[s]:.1f} rows/s" for s in sides), flush=True)
                if round_:
                    for side in sides:
                        rates[threads, side].append(len(rows) / seconds[side])
                        ratios[threads, side].append(seconds["trainer"] / seconds[side])

    print()
    print(f"minilm-l6 on the first {len(rows)} CoLA training rows, batch {BATCH}, max length {LENGTH} "
          f"(mean row {lengths.mean():.1f} tokens); {args.rounds} rounds")
    print()
    print("| threads | side                       | rows/s (median) | × Trainer (median of rounds) |")
    print("|---------|----------------------------|-----------------|------------------------------|")
    for threads in args.threads:
        for side in sides:
            print(f"| {threads:7} | {side:26} | {statistics.median(rates[threads, side]):15.1f} | "
                  f"{statistics.median(ratios[threads, side]):28.3f} |")
    print("(target: armada / trainer ≥ 1.0 with random batches)")


if __name__ == "__main__":
    main()
