"""The training objectives, each declared once in a module of this package: what `distill.objective` names.

A declaration (`Objective`) says all that the config, the pipeline, eval, the report and extraction ask
of an objective, without loading its training code:

  name, summary     the value of distill.objective, and what its help says of it
  trainer           "module:Class" of its training (armada.distill), imported only when a run trains
  settings          a frozen dataclass of the [distill] settings it alone reads (keys of [distill] like
                    any other, e.g. kd_cache); set under another objective, they are refused
  defaults          shared [distill] settings whose defaults it changes (lm: LoRA rank 8, 3 epochs, …)
  unused            shared settings it has no role for, refused unless left at their default
  retired           keys [distill] no longer has, with the value this objective implies for each: older
                    pipeline files and run folders that say what is now implied still load
  generative        whether it trains a causal LM on generation tasks, and so how a run is evaluated:
                    by what the student writes (armada eval generates), else by its outputs on a split
  terms             the terms of the student's loss whose gradient shares a run records (its loss
                    balance), with the colour each has in the report's loss-balance plot
  check(config)     a further rule between settings (kd: a KD cache is given), raising ConfigError

A new objective is one module here (a module-level OBJECTIVE) and its trainer: nothing else lists them.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from armada.errors import ConfigError


@dataclass(frozen=True)
class Term:
    name: str                           # its key in the student's losses and in an epoch's balance
    colour: str                         # matplotlib colour in the loss-balance plot


@dataclass(frozen=True)
class Objective:
    name: str
    summary: str
    trainer: str
    settings: type | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    unused: tuple[str, ...] = ()
    retired: Mapping[str, Any] = field(default_factory=dict)
    generative: bool = False
    terms: tuple[Term, ...] = ()
    check: Callable[[Any], None] | None = None

    def trainer_class(self) -> type:
        module, _, cls = self.trainer.partition(":")
        return getattr(importlib.import_module(module), cls)


def _discover() -> dict[str, Objective]:
    found = {}
    for module in sorted(info.name for info in pkgutil.iter_modules(__path__)):
        declared = importlib.import_module(f"{__name__}.{module}").OBJECTIVE
        found[declared.name] = declared
    return found


OBJECTIVES: dict[str, Objective] = _discover()


def declaration(name: str) -> Objective:
    """The declaration of objective `name` (as a run's record or a pipeline names it)."""
    if name not in OBJECTIVES:
        raise ConfigError(f"unknown objective {name!r}; the objectives are {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]


def term_colours() -> dict[str, str]:
    """Every objective's loss terms with their colours, each once, in the order the objectives declare them."""
    colours: dict[str, str] = {}
    for declared in OBJECTIVES.values():
        for term in declared.terms:
            colours.setdefault(term.name, term.colour)
    return colours
