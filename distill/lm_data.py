"""Prompt → response sequences for causal-LM students: token ids, labels on the response only, the pooled position.

An example becomes its prompt (armada.tasks.generative.build_prompt, encoded as generation encodes
it: encode_prompt) followed by its first reference as the model must write
it: in the chat style, what the tokenizer's chat template writes for an assistant turn holding the
reference (so the end-of-turn mark is learnt, and generation stops on it); in the Alpaca style, the
reference and the EOS token. The two parts are encoded separately, as generation sees the prompt.

Labels are -100 on the prompt and on padding: the loss is on the response's tokens only. A
sequence longer than `max_length` loses the end of its response; an example whose prompt leaves
no room for one response token is left out of training, and the run says how many were.

The pooled state h_s that the manifold losses align is the one at the prompt's last token: the
teacher read the instruction and input, not the response, and that state has seen exactly the
prompt (the attention is causal) and is the state generation starts from at inference. The last
token of prompt + response would tie the teacher's view of the instruction to a state that has
also read the reference answer, which no student has when it is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from armada.errors import ArmadaError
from armada.tasks import Split
from armada.tasks.generative import build_prompt, encode_prompt

IGNORE = -100                                   # the label cross-entropy skips


def resolve_style(style: str, tokenizer) -> str:
    """The prompt style a run uses: "auto" becomes "chat" where the tokenizer has a chat template, else "alpaca"."""
    if style == "auto":
        return "chat" if getattr(tokenizer, "chat_template", None) else "alpaca"
    return style


def response_ids(tokenizer, instruction: str, input: str, prompt: str, reference: str, style: str) -> list[int]:
    """The tokens the model learns to write after `prompt`: the reference and the end of the turn."""
    if style == "alpaca":
        if tokenizer.eos_token_id is None:
            raise ArmadaError("the student's tokenizer has no EOS token to end a response with; give it one, or use "
                              "a tokenizer with a chat template and prompt_style = \"chat\"")
        return list(tokenizer(reference, add_special_tokens=False)["input_ids"]) + [tokenizer.eos_token_id]
    content = f"{instruction}\n\n{input}" if input else instruction
    whole = tokenizer.apply_chat_template([{"role": "user", "content": content}, {"role": "assistant", "content": reference}],
                                          tokenize=False)
    if not whole.startswith(prompt):
        raise ArmadaError("the student's chat template writes the user turn differently when an assistant turn follows, "
                          "so the response cannot be cut from the prompt; use prompt_style = \"alpaca\"")
    return list(tokenizer(whole[len(prompt):], add_special_tokens=False)["input_ids"])


@dataclass
class LMSplit:
    split: Split
    rows: np.ndarray                            # the kept examples' positions in the split
    tokens: list[list[int]]                     # prompt + response ids, per kept example
    prompt_lengths: np.ndarray
    truncated: int                              # responses cut at max_length
    left_out: list[str]                         # ids of examples whose prompt alone reaches max_length

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def lengths(self) -> np.ndarray:
        return np.asarray([len(t) for t in self.tokens])


def encode_lm(tokenizer, split: Split, max_length: int, style: str) -> LMSplit:
    """Every example of `split` as prompt + response ids (see the module's docstring)."""
    rows, tokens, prompt_lengths, truncated, left_out = [], [], [], 0, []
    for position, example in enumerate(split.examples):
        if not example.references:
            raise ArmadaError(f"{split.task.name} {split.name}: example {example.id!r} has no reference response to learn")
        instruction, input = example.inputs[0]
        prompt = build_prompt(instruction, input, tokenizer=tokenizer, style=style)
        prompt_ids = encode_prompt(tokenizer, prompt)
        if len(prompt_ids) >= max_length:
            left_out.append(example.id)
            continue
        response = response_ids(tokenizer, instruction, input, prompt, example.references[0], style)
        room = max_length - len(prompt_ids)
        truncated += len(response) > room
        rows.append(position)
        tokens.append(prompt_ids + response[:room])
        prompt_lengths.append(len(prompt_ids))
    if not tokens:
        raise ArmadaError(f"{split.task.name} {split.name}: every prompt is {max_length} tokens or longer; "
                          f"raise --max-length")
    return LMSplit(split, np.asarray(rows), tokens, np.asarray(prompt_lengths), truncated, left_out)


@dataclass
class LMBatch:
    positions: np.ndarray                       # into the LMSplit
    input_ids: torch.Tensor                     # [n, length], right-padded
    attention_mask: torch.Tensor
    labels: torch.Tensor                        # input ids on response tokens, -100 elsewhere
    pool_index: torch.Tensor                    # [n]: each row's last prompt token
    features: torch.Tensor | None               # teacher vectors [n, D]; None without a cache

    def to(self, device) -> "LMBatch":
        return LMBatch(self.positions, self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device),
                       self.pool_index.to(device), None if self.features is None else self.features.to(device))


class LMCollator:
    """Positions → an LMBatch padded on the right to its longest sequence (positions then count from 0 in every row)."""

    def __init__(self, tokenizer, encoded: LMSplit, features=None):
        self.encoded, self.features = encoded, features
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def __call__(self, positions: np.ndarray) -> LMBatch:
        positions = np.asarray(positions)
        rows = [self.encoded.tokens[p] for p in positions]
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        labels = np.full((len(rows), width), IGNORE, dtype=np.int64)
        for i, (row, prompt) in enumerate(zip(rows, self.encoded.prompt_lengths[positions])):
            ids[i, :len(row)] = row
            mask[i, :len(row)] = 1
            labels[i, prompt:len(row)] = row[prompt:]
        pool = torch.from_numpy(self.encoded.prompt_lengths[positions] - 1)
        return LMBatch(positions, torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(labels), pool,
                       self._features(positions))

    def _features(self, positions: np.ndarray) -> torch.Tensor | None:
        if self.features is None:
            return None
        rows = np.asarray(self.features[self.encoded.rows[positions]], dtype=np.float32)
        bad = ~np.isfinite(rows).all(axis=1)
        if bad.any():
            examples = self.encoded.split.examples
            ids = [examples[r].id for r in self.encoded.rows[positions][bad]]
            raise ArmadaError(f"the cache holds non-finite teacher vectors for examples {ids[:5]}; "
                              "re-extract them (`armada cache verify` lists every such row)")
        return torch.from_numpy(rows)
