"""What an objective hands the training loop: its batches and what to say about them (armada.distill.objective)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass
class TrainingData:
    train: Callable                 # positions → a batch of training examples; .encoded: its split (len, lengths)
    notes: list[str] = field(default_factory=list)  # said once when training starts (e.g. rows left out)
