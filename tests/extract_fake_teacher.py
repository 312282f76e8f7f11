"""A test-only teacher for the runner's mechanics: cheap, deterministic per text, and observable.

It is built through ExtractJob.teacher_loader = "extract_fake_teacher:load" (the tests put this
folder on PYTHONPATH, so spawned workers find it too). Its [teachers.NAME] table sets:
  dim       vector size
  calls     a file that gets one JSON line per encode call: pid and texts (calls are counted from it)
  hang_at   the call number (1-based, counted in `calls`) that never returns, to kill a process mid-shard
  sleep     seconds each call takes
  nan_text  a text whose vector is NaN
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import numpy as np


class FakeTeacher:
    kind = "fake"

    def __init__(self, name: str, table: dict):
        self.name = name
        self.dim = int(table.get("dim", 6))
        self.calls = table.get("calls", "")
        self.hang_at = int(table.get("hang_at", 0))
        self.nan_text = table.get("nan_text")
        self.sleep = float(table.get("sleep", 0))

    def provenance(self) -> dict:
        return {"model": "fake", "dim": self.dim}

    def encode(self, texts: list[str]) -> np.ndarray:
        count = 0
        if self.calls:
            with open(self.calls, "a", encoding="utf-8") as f:
                f.write(json.dumps({"pid": os.getpid(), "texts": texts}) + "\n")
            with open(self.calls, encoding="utf-8") as f:
                count = sum(1 for _ in f)
        if self.hang_at and count >= self.hang_at:
            time.sleep(3600)
        time.sleep(self.sleep)
        rows = [vector(text, self.dim) for text in texts]
        out = np.stack(rows).astype(np.float32)
        for i, text in enumerate(texts):
            if text == self.nan_text:
                out[i, 0] = np.nan
        return out


def vector(text: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


def load(name: str, tables: dict) -> FakeTeacher:
    return FakeTeacher(name, dict(tables.get(name, {})))
