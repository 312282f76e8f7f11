"""Batched generation with fixed decoding settings: prompts in, continuations out.

Prompts are encoded one by one (so a prompt's tokens never depend on its batch), left-padded,
and decoded greedily (or by beam search) until EOS or `max_new_tokens`; the text returned is
the continuation only. The batched output equals one-at-a-time generation (tested), so the batch
size is a speed setting, not a result setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from armada.errors import ArmadaError
from armada.tasks.generative import encode_prompt


@dataclass(frozen=True)
class Decoding:
    max_new_tokens: int = 256
    num_beams: int = 1                      # 1: greedy; LLM-Adapters' own evaluation uses 4
    batch_size: int = 8


def check_fits(model, length: int, text: str) -> None:
    """Refuse a sequence longer than the model's positions, rather than cut it or let it index past them."""
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if limit and length > limit:
        raise ArmadaError(f"the prompt {text[:80]!r}... needs {length} positions (with what is generated or scored after it), "
                          f"more than the model's {limit}; shorten the prompts or lower max_new_tokens")


def eos_ids(model, tokenizer) -> list[int]:
    """Every id that ends a response: the model's generation config may list several (chat models' end-of-turn)."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = configured if isinstance(configured, list) else [configured]
    ids = [i for i in ids if i is not None] or [tokenizer.eos_token_id]
    if ids[0] is None:
        raise ArmadaError("the model and its tokenizer define no end-of-sequence token, so generation could not stop; "
                          "give the tokenizer an eos_token (or the model's generation_config an eos_token_id)")
    return ids


def pad_id(model, tokenizer) -> int:
    # Many causal LMs ship no pad token; the attention mask hides padding, so EOS serves.
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids(model, tokenizer)[0]


def pad_batch(sequences: Sequence[Sequence[int]], pad: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), padded on `side` ("left" or "right") to the longest sequence."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        span = slice(width - len(sequence), width) if side == "left" else slice(0, len(sequence))
        ids[row, span] = torch.tensor(sequence, dtype=torch.long)
        mask[row, span] = 1
    return ids, mask


def generate(model, tokenizer, prompts: Sequence[str], decoding: Decoding = Decoding()) -> list[str]:
    """The continuation of each prompt, special tokens removed."""
    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    for prompt, ids in zip(prompts, encoded):
        check_fits(model, len(ids) + decoding.max_new_tokens, prompt)
    eos = eos_ids(model, tokenizer)
    pad = pad_id(model, tokenizer)
    # Longest first: similar lengths share a batch (less padding) and running out of memory shows at once.
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    outputs: list[str] = [""] * len(prompts)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(order), decoding.batch_size):
                batch = order[start:start + decoding.batch_size]
                ids, mask = pad_batch([encoded[i] for i in batch], pad, "left")
                # Every setting that shapes a greedy or beam search is given, so the model's own
                # generation config (sampling, repetition penalties) cannot change the decoding.
                generated = model.generate(
                    input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                    max_new_tokens=decoding.max_new_tokens, do_sample=False, num_beams=decoding.num_beams,
                    repetition_penalty=1.0, length_penalty=1.0, no_repeat_ngram_size=0,
                    pad_token_id=pad, eos_token_id=eos,
                )
                for i, row in zip(batch, generated[:, ids.shape[1]:].tolist()):
                    outputs[i] = tokenizer.decode(_until_eos(row, eos), skip_special_tokens=True)
    finally:
        model.train(was_training)
    return outputs


def _until_eos(tokens: list[int], eos: Sequence[int]) -> list[int]:
    for position, token in enumerate(tokens):
        if token in eos:
            return tokens[:position]
    return tokens
