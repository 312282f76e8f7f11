"""Batches: tokenised once, padded per batch, each with the teacher vectors of the same examples.

An example is addressed by its position in the split everywhere: the collator takes positions,
gathers their token ids, labels and teacher vectors (`features[positions]`, rows the cache reader
matched to the split's ids and teacher-text hashes), so nothing depends on the order of lines in a
file. A multiple-choice example is one sequence per choice, laid out example-major
([e0c0, e0c1, e1c0, …]).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from armada.errors import ArmadaError
from armada.tasks import Split


@dataclass
class EncodedSplit:
    split: Split
    tokens: list[list[dict[str, list[int]]]]   # per example, per choice: the tokenizer's ids by input name
    lengths: np.ndarray                        # per example: its longest choice, in tokens

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass(frozen=True)
class TextHandling:
    """How the student's text becomes tokens beyond its tokenizer: the authors lowercase it
    (utils_superglue.py 538, 542) and give [CLS] the token type 1 (main.py 112, utils_superglue.py 564)
    where the student has token types (a tokenizer without token_type_ids has nothing to set)."""

    lowercase: bool = False
    cls_segment_id: int = 0


def encode(tokenizer, split: Split, max_length: int, handling: TextHandling = TextHandling()) -> EncodedSplit:
    """Tokenise every choice of every example, truncated to `max_length` tokens, unpadded."""
    texts = [inputs for example in split.examples for inputs in example.inputs]
    if handling.lowercase:
        texts = [tuple(text.lower() for text in t) for t in texts]
    names = [n for n in tokenizer.model_input_names if n in ("input_ids", "attention_mask", "token_type_ids")]
    firsts = [t[0] for t in texts]
    seconds = [t[1] for t in texts] if all(len(t) == 2 for t in texts) else None
    if seconds is None and any(len(t) != 1 for t in texts):
        raise ArmadaError(f"{split.task.name} {split.name}: examples mix single texts and text pairs")
    encoded = tokenizer(firsts, seconds, truncation=True, max_length=max_length)
    rows = [{n: encoded[n][i] for n in names} for i in range(len(texts))]
    if handling.cls_segment_id and "token_type_ids" in names:
        for row in rows:
            if row["input_ids"][0] != tokenizer.cls_token_id:
                raise ArmadaError(f"cls_segment_id = {handling.cls_segment_id}: the student's tokenizer does not start "
                                  f"its inputs with a [CLS] token; set distill.cls_segment_id = 0")
            row["token_type_ids"] = [handling.cls_segment_id, *row["token_type_ids"][1:]]
    tokens, lengths, at = [], [], 0
    for example in split.examples:
        choices = rows[at:at + len(example.inputs)]
        at += len(example.inputs)
        tokens.append(choices)
        lengths.append(max(len(c["input_ids"]) for c in choices))
    return EncodedSplit(split, tokens, np.asarray(lengths))


@dataclass
class Batch:
    positions: np.ndarray
    inputs: dict[str, torch.Tensor]            # [examples × choices, length]
    choices: int
    labels: torch.Tensor | None                # None when the split has unlabeled rows
    features: torch.Tensor | None              # teacher vectors [examples, D]; None without a cache
    targets: torch.Tensor | None = None        # a text teacher's logits [examples, width] (KD); None without

    def to(self, device) -> "Batch":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Batch(self.positions, {k: v.to(device) for k, v in self.inputs.items()}, self.choices,
                     move(self.labels), move(self.features), move(self.targets))


class Collator:
    """Positions → a Batch padded to its own longest sequence, on the tokenizer's padding side; `targets`
    (an array [examples, width], checked finite) gives each example's KD targets."""

    def __init__(self, tokenizer, encoded: EncodedSplit, kind: str, features=None, targets: np.ndarray | None = None):
        self.encoded, self.kind, self.features, self.targets = encoded, kind, features, targets
        self.pad_id = tokenizer.pad_token_id
        self.left = tokenizer.padding_side == "left"
        labels = encoded.split.labels
        self.labels = None if any(label is None for label in labels) else np.asarray(
            labels, dtype=np.float32 if kind == "regression" else np.int64)

    def __call__(self, positions: np.ndarray) -> Batch:
        positions = np.asarray(positions)
        rows = [row for p in positions for row in self.encoded.tokens[p]]
        width = max(len(r["input_ids"]) for r in rows)
        inputs = {}
        for name in rows[0]:
            fill = self.pad_id if name == "input_ids" else 0
            padded = np.full((len(rows), width), fill, dtype=np.int64)
            for i, row in enumerate(rows):
                values = row[name]
                if self.left:
                    padded[i, width - len(values):] = values
                else:
                    padded[i, :len(values)] = values
            inputs[name] = torch.from_numpy(padded)
        labels = None if self.labels is None else torch.from_numpy(self.labels[positions])
        targets = None if self.targets is None else torch.from_numpy(self.targets[positions])
        return Batch(positions, inputs, len(self.encoded.tokens[positions[0]]), labels, self._features(positions), targets)

    def _features(self, positions: np.ndarray) -> torch.Tensor | None:
        if self.features is None:
            return None
        rows = np.asarray(self.features[positions], dtype=np.float32)
        bad = ~np.isfinite(rows).all(axis=1)
        if bad.any():
            ids = [self.encoded.split.examples[p].id for p in positions[bad]]
            raise ArmadaError(f"the cache holds non-finite teacher vectors for examples {ids[:5]}; "
                              "re-extract them (`armada cache verify` lists every such row)")
        return torch.from_numpy(rows)


def epoch_batches(count: int, batch_size: int, seed: int, epoch: int, lengths: np.ndarray | None = None,
                  phase: int = 0) -> list[np.ndarray]:
    """One epoch's batches of positions, a function of (seed, epoch, phase) alone, so a resumed run sees the same order.

    `phase` 0 is the student's order (and the aligner's, where the phases share it); 1 the aligner's own
    (`reshuffle_per_phase`: the authors iterate one RandomSampler DataLoader per phase, so each draws anew).
    With `lengths`, examples of similar length share batches (less padding): shuffle, cut into
    windows of 50 batches, sort each window by length, then shuffle the batches.
    """
    rng = np.random.default_rng([seed, epoch] if phase == 0 else [seed, epoch, phase])
    order = rng.permutation(count)
    if lengths is not None:
        window = 50 * batch_size
        order = np.concatenate([chunk[np.argsort(-lengths[chunk], kind="stable")]
                                for chunk in np.array_split(order, range(window, count, window))])
    batches = [order[i:i + batch_size] for i in range(0, count, batch_size)]
    if lengths is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def process_share(batches: list[np.ndarray], process: int, processes: int) -> list[np.ndarray]:
    """This process's batches: every `processes`-th, the list first topped up from its start so all get as many."""
    short = -len(batches) % processes
    return (batches + batches[:short])[process::processes]
