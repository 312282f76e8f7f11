"""Log-likelihood scoring of multiple-choice items: which continuation does the model find most likely?

For each choice: the sum of the log-probabilities of its tokens given the prompt, and that sum
over the number of its tokens (the length-normalised mean). The prompt and the choice are
encoded separately and joined, so a choice's tokens are the same after any prompt. Padding
goes on the tokenizer's side; position ids come from the attention mask, so a sequence scores
the same whichever side its batch is padded on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from armada.errors import ArmadaError
from armada.eval.generation import check_fits, pad_batch, pad_id
from armada.tasks.generative import encode_prompt


@dataclass(frozen=True)
class ChoiceScores:
    sums: tuple[float, ...]                 # Σ log p(choice tokens | prompt), one per choice
    lengths: tuple[int, ...]                # tokens per choice

    @property
    def means(self) -> tuple[float, ...]:
        return tuple(s / n for s, n in zip(self.sums, self.lengths))

    @property
    def best(self) -> int:
        """The choice with the highest total log-probability (the first on ties)."""
        return max(range(len(self.sums)), key=lambda i: (self.sums[i], -i))

    @property
    def best_mean(self) -> int:
        """The choice with the highest mean log-probability per token (the first on ties)."""
        means = self.means
        return max(range(len(means)), key=lambda i: (means[i], -i))


def score_choices(model, tokenizer, items: Sequence[tuple[str, Sequence[str]]], batch_size: int = 8) -> list[ChoiceScores]:
    """Score every (prompt, choices) item; one ChoiceScores per item."""
    sequences, spans = [], []
    for prompt, choices in items:
        prompt_ids = encode_prompt(tokenizer, prompt)
        if not prompt_ids or not choices:
            raise ArmadaError(f"cannot score choices {list(choices)!r} after prompt {prompt[:60]!r}: "
                              "both the prompt and the list of choices must be non-empty")
        for choice in choices:
            choice_ids = list(tokenizer(choice, add_special_tokens=False)["input_ids"])
            if not choice_ids:
                raise ArmadaError(f"the choice {choice!r} (prompt {prompt[:60]!r}) has no tokens to score; fix the item")
            check_fits(model, len(prompt_ids) + len(choice_ids), prompt)
            sequences.append(prompt_ids + choice_ids)
            spans.append(len(choice_ids))
    totals = _continuation_log_probs(model, tokenizer, sequences, spans, batch_size)
    out, position = [], 0
    for _, choices in items:
        count = len(choices)
        out.append(ChoiceScores(tuple(totals[position:position + count]), tuple(spans[position:position + count])))
        position += count
    return out


def _continuation_log_probs(model, tokenizer, sequences, spans, batch_size) -> list[float]:
    side = tokenizer.padding_side
    pad = pad_id(model, tokenizer)
    totals = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(sequences), batch_size):
                batch = sequences[start:start + batch_size]
                ids, mask = pad_batch(batch, pad, side)
                positions = (mask.cumsum(-1) - 1).clamp(min=0)
                logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                               position_ids=positions.to(model.device)).logits
                for row, (sequence, span) in enumerate(zip(batch, spans[start:start + batch_size])):
                    end = ids.shape[1] if side == "left" else len(sequence)
                    # Token t is predicted by the logits at t - 1.
                    predicted = torch.log_softmax(logits[row, end - span - 1:end - 1].float(), dim=-1)
                    targets = ids[row, end - span:end].to(predicted.device)
                    totals.append(float(predicted.gather(-1, targets[:, None]).sum()))
    finally:
        model.train(was_training)
    return totals
