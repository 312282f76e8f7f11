"""The teacher registry: names → (family, settings), and the factory that builds a teacher. The families
declare themselves in armada.extract.settings.

`armada teachers` lists it. A [teachers.NAME] table in the pipeline file changes a registered
teacher's settings, or adds a teacher of any family with `kind = "<family>"`. A name run:PATH is
the text teacher made of a finished `armada distill` run at PATH (family armada-run), as file:NAME
is a task made of local files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from armada.config import build
from armada.errors import ConfigError
from armada.extract.settings import FAMILIES, ArmadaRunSettings

RUN_PREFIX = "run:"                         # run:PATH, an armada-run teacher


@dataclass(frozen=True)
class Registered:
    family: str
    settings: Mapping[str, Any]             # over the family's defaults
    description: str


TEACHERS: dict[str, Registered] = {
    "sd14": Registered("diffusers-t2i", {}, "Stable Diffusion v1-4, 20 steps, guidance 7.5 (paper §4)"),
    "mj": Registered("diffusers-t2i", {"lora": "prompthero/openjourney-lora", "lora_weight_name": "openjourneyLora.safetensors"},
                     "Stable Diffusion v1-4 with a Midjourney-style LoRA (Openjourney)"),
    "modelscope-t2v": Registered("text-to-video", {}, "ModelScope text-to-video 1.7B"),
    "speecht5": Registered("speecht5", {}, "SpeechT5 TTS + HiFi-GAN, wav2vec2-base → 768 (paper §4)"),
    "piper-whisper": Registered("piper-whisper", {}, "Piper en_US-joe-medium, Whisper tiny.en encoder → 384 (offline)"),
    "piper-whisper-base": Registered("piper-whisper", {"whisper": "base"},
                                     "Piper en_US-joe-medium, Whisper base encoder → 512 (offline)"),
    "http": Registered("http", {}, "a black-box service; set url and dim in [teachers.http]"),
}


def resolve(name: str, tables: Mapping[str, Mapping[str, Any]] | None = None, where: Callable[[str], str] | None = None):
    """The family and settings of teacher `name`: registry defaults ← its [teachers.NAME] table."""
    tables = tables or {}
    origin = where or (lambda key: "pipeline")
    if name.startswith(RUN_PREFIX):
        if not name[len(RUN_PREFIX):]:
            raise ConfigError("teacher run: needs the folder of a finished armada distill run: run:PATH")
        if name in tables:
            raise ConfigError(f"{origin(f'teachers.{name}')}: {name} names its run itself; to set more, define "
                              f'[teachers.OTHER_NAME] with kind = "armada-run" and run = "{name[len(RUN_PREFIX):]}"')
        return "armada-run", build(ArmadaRunSettings, {"run": name[len(RUN_PREFIX):]}, f"teachers.{name}", origin)
    table = dict(tables.get(name, {}))
    kind = table.pop("kind", None)
    if name in TEACHERS:
        registered = TEACHERS[name]
        if kind is not None and kind != registered.family:
            raise ConfigError(f"{origin(f'teachers.{name}.kind')}: teachers.{name}.kind = {kind!r}: {name} is a "
                              f"registered {registered.family} teacher; give a new name to define a {kind} teacher")
        kind, defaults = registered.family, registered.settings
    elif kind is None:
        raise ConfigError(
            f"unknown teacher {name!r}; the teachers are {', '.join(sorted(TEACHERS))}, run:PATH (a finished armada "
            f"distill run), or define one in the pipeline file as [teachers.{name}] with kind = one of "
            f"{', '.join(sorted(FAMILIES))}"
        )
    elif kind not in FAMILIES:
        raise ConfigError(f"{origin(f'teachers.{name}.kind')}: teachers.{name}.kind = {kind!r} is not one of {sorted(FAMILIES)}")
    else:
        defaults = {}
    settings = build(FAMILIES[kind].settings, {**defaults, **table}, f"teachers.{name}", origin)
    return kind, settings


def check_teacher_tables(config, where: Callable[[str], str]) -> None:
    """Every [teachers.NAME] table of a loaded pipeline resolves (a config.load check)."""
    for name in config.teachers:
        resolve(name, config.teachers, where)


def load_teacher(name: str, tables: Mapping[str, Mapping[str, Any]] | None = None):
    """Build teacher `name` (importing its family's module only now: the heavy libraries load here)."""
    kind, settings = resolve(name, tables)
    return FAMILIES[kind].teacher_class()(name, settings)
