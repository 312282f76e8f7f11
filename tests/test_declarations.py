"""Teacher families declare themselves once, and every stage asks the declaration.

A teacher family's declaration (armada.extract.settings.family) is the only list of them: the registry
and `armada teachers` are made from it, with nothing else to keep in step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from typer.testing import CliRunner

from armada.cli import app
from armada.extract.settings import FAMILIES, family


@dataclass(frozen=True)
class ToySettings:
    model: str = "toy/echo"
    dim: int = 3


class ToyTeacher:
    kind = "toy"

    def __init__(self, name: str, settings: ToySettings):
        self.name, self.dim = name, settings.dim

    def provenance(self) -> dict:
        return {}

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.zeros((len(texts), self.dim), np.float32)


def output_dim(settings: ToySettings) -> int:
    return settings.dim


def test_a_family_declared_over_its_settings_is_listed_by_armada_teachers(tmp_path, monkeypatch):
    monkeypatch.setitem(FAMILIES, "toy", None)          # removed again after the test
    family("toy", teacher=f"{__name__}:ToyTeacher", description="a toy family", models=("model",))(ToySettings)
    (tmp_path / "p.toml").write_text('[teachers.echo]\nkind = "toy"\ndim = 5\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["teachers", "--config", str(tmp_path / "p.toml")])
    assert result.exit_code == 0, result.output
    row = next(line.split() for line in result.output.splitlines() if line.startswith("echo "))
    assert row[:4] == ["echo", "toy", "5", "toy/echo"]
    assert any(line.split()[:1] == ["toy"] and "a toy family" in line for line in result.output.splitlines())
