"""What every teacher is, and the small pieces all teacher families share."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from armada.errors import ArmadaError


class Teacher(Protocol):
    """A frozen teacher: text in, one float32 vector per text out.

    `encode` must give a row that depends only on its text and the settings, never on the batch
    it fell in or its position: randomness is drawn from a generator seeded by `row_seed`.

    A text teacher (armada.extract.text) reads what the student reads instead of a teacher text: it
    has `reads_student_input = True` and `encode_examples(split: armada.tasks.Split)` in place of
    `encode` (the runner gives it the examples themselves), and `logits`, an
    armada.cache_schema.TeacherLogits saying how its [pooled state | logits] rows read. Other
    teachers need neither attribute.
    """

    name: str                               # the registry name ("sd14")
    kind: str                               # the family ("diffusers-t2i")
    dim: int                                # known before anything is encoded

    def provenance(self) -> dict[str, Any]:
        """Model ids, revisions or weight hashes, and every setting that changes the output (JSON-able)."""

    def encode(self, texts: list[str]) -> np.ndarray:
        """float32 [len(texts), dim]."""


class NonFiniteVectors(ArmadaError):
    """A teacher got NaN or inf for some texts; `positions` are their indices in the encode() call."""

    def __init__(self, message: str, positions: list[int]):
        super().__init__(message)
        self.positions = positions


def row_seed(text: str, seed: int) -> int:
    """A per-text seed: the same text gives the same noise in any batch, position or process."""
    digest = hashlib.sha256(f"{seed}\x00{text}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def is_local_path(model: str) -> bool:
    return os.path.exists(os.path.expanduser(model)) or model.startswith(("/", "./", "../", "~"))


def hub_commit(model: str, revision: str, file: str) -> str:
    """The commit of the cached snapshot from_pretrained just loaded (its folder is named by it), found by one of its files."""
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model, file, revision=revision or None)
    return Path(cached).parent.name if isinstance(cached, str) else ""


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
