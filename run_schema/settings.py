"""config.toml: the settings a run trained with, written once when it starts.

It is a pipeline file of two sections ([data]: which rows, [distill]: how), so `armada.config.load`
reads it back; scorers read the rows from it, so a run's dev split can be scored again exactly.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from typing import Any, Mapping

from armada import config as config_module
from armada.config import DistillConfig
from armada.run_schema.records import UnreadableRecord


def settings_text(config: DistillConfig, task: str, data_dir: str, limits: Mapping[str, int], template: str) -> str:
    """The resolved [distill] settings and the [data] that chose the rows."""
    data = {"data_dir": data_dir, "train_limit": limits["train"], "validation_limit": limits["validation"]}
    if template:
        data["teacher_templates"] = {task: template}
    return config_module.to_toml({"data": data, "distill": config_module.to_dict(config)})


@dataclass(frozen=True)
class RunSettings:
    data_dir: str = ""
    train_limit: int = 0
    validation_limit: int = 0
    teacher_templates: Mapping[str, str] = field(default_factory=dict)
    distill: Mapping[str, Any] = field(default_factory=dict)    # as written, by whichever version made the run

    def template(self, task: str) -> str:
        return self.teacher_templates.get(task, "")

    @classmethod
    def from_text(cls, text: str) -> "RunSettings":
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise UnreadableRecord(f"config.toml is not valid TOML: {e}") from None
        data = raw.get("data", {})
        return cls(data_dir=data.get("data_dir", ""), train_limit=data.get("train_limit", 0),
                   validation_limit=data.get("validation_limit", 0), teacher_templates=data.get("teacher_templates", {}),
                   distill=raw.get("distill", raw))    # the first run folders held the [distill] keys alone


def differences(old: str, new: str) -> list[str]:
    """"section.key: old → new" for every setting two config.toml texts disagree on."""
    def flat(text: str) -> dict:
        return {f"{section}.{key}": value for section, table in tomllib.loads(text).items() for key, value in table.items()}

    a, b = flat(old), flat(new)
    return [f"{k}: {a.get(k)!r} → {b.get(k)!r}" for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]
