"""Objectives and teacher families declare themselves once, and every stage asks the declaration.

An objective's declaration (armada.objectives) and a teacher family's (armada.extract.settings.family)
are the only lists of them: the config's settings, the report's loss terms and `armada teachers` are
made from them, with nothing else to keep in step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest
from typer.testing import CliRunner

from armada import config as config_module
from armada.cli import app
from armada.errors import ConfigError
from armada.extract.settings import FAMILIES, family
from armada.objectives import OBJECTIVES, declaration
from armada.reporting.plots import balance_terms


def test_each_objective_names_its_trainer_and_owns_its_settings():
    fields = {f.name for f in dataclasses.fields(config_module.DistillConfig)}
    for name, declared in OBJECTIVES.items():
        assert declared.trainer_class().name == name
        own = {f.name for f in dataclasses.fields(declared.settings)} if declared.settings else set()
        assert own <= fields and not own & {f.name for f in dataclasses.fields(config_module.SharedDistillConfig)}
        assert set(declared.defaults) | set(declared.unused) <= fields
    assert [n for n, d in OBJECTIVES.items() if d.generative] == ["lm"]
    with pytest.raises(ConfigError, match="unknown objective 'contrastive'; the objectives are kd, lm, task"):
        declaration("contrastive")


def test_a_setting_of_one_objective_is_refused_under_another_naming_its_owner():
    with pytest.raises(ConfigError, match='distill.seqkd_cache applies to distill.objective = "lm" only'):
        config_module.build(config_module.DistillConfig, {"objective": "kd", "kd_cache": "c.zarr", "seqkd_cache": "s"},
                            "distill", "test")
    lm = config_module.build(config_module.DistillConfig, {"objective": "lm"}, "distill", "test")
    assert {k: getattr(lm, k) for k in declaration("lm").defaults} == declaration("lm").defaults


def test_the_loss_balance_shows_every_term_a_run_recorded():
    """Declared terms in their declared order with their colours; a term no objective declares still shows."""
    terms = balance_terms([{"manifold": 0.2, "task": 0.5}, {"kd": 0.1, "contrast": 0.2}])
    assert list(terms) == ["task", "manifold", "kd", "contrast"]
    assert terms["kd"] == "tab:purple" and terms["contrast"] is None


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
