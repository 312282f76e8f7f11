"""Command-line options made from the config dataclasses' fields: a setting's flag, type, help and
example are written once, on its field (armada.fields.setting), and every command that sets it
takes them from there.

`--lr` sets distill.lr, `--group-by-length/--no-group-by-length` a true/false one; an option left
out is None and changes nothing, so the pipeline file and `--set` decide.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from typing import Callable, Literal, Optional

import typer


def with_settings_of(cls) -> Callable:
    """A decorator: the command takes one more option per field of `cls`, and receives them (None where not
    given) in its **settings."""
    def decorate(command: Callable) -> Callable:
        own = [p for p in inspect.signature(command).parameters.values() if p.kind != p.VAR_KEYWORD]

        @functools.wraps(command)
        def wrapper(**given):
            return command(**given)

        wrapper.__signature__ = inspect.Signature(own + setting_options(cls))
        return wrapper

    return decorate


def setting_options(cls) -> list[inspect.Parameter]:
    hints = typing.get_type_hints(cls)
    return [_option(field, hints[field.name]) for field in dataclasses.fields(cls)]


def _option(field: dataclasses.Field, hint) -> inspect.Parameter:
    flag = "--" + field.name.replace("_", "-")
    help = field.metadata.get("doc", "")
    if typing.get_origin(hint) is Literal:
        help += ("; " if help else "") + "one of " + ", ".join(typing.get_args(hint))
        hint = str
    if field.metadata.get("example") is not None:
        help += f" (e.g. {field.metadata['example']})"
    names = [f"{flag}/--no-{flag[2:]}"] if hint is bool else [flag]
    return inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, annotation=Optional[hint],
                             default=typer.Option(None, *names, help=help, show_default=False))


def given_settings(cls, options: dict) -> dict:
    """The fields of `cls` among a command's options that were given."""
    names = {field.name for field in dataclasses.fields(cls)}
    return {name: value for name, value in options.items() if name in names and value is not None}
