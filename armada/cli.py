"""`armada`: the command line. Each command lives in armada/commands/; this file wires them up."""

from __future__ import annotations

import importlib
import os
import sys

import typer

from armada.errors import ArmadaError

# The order commands are listed in `armada --help`.
COMMANDS = ["run", "catalog", "extract", "probe", "distill", "evaluate", "report", "cache"]

app = typer.Typer(
    name="armada",
    help="Distil knowledge from frozen text-to-image, text-to-video and text-to-audio teachers into language models.\n\n"
    "Example: armada run pipeline.toml",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,  # help texts hold [sections] and paths, not markup
)


@app.callback()
def _armada() -> None:
    """Distil knowledge from frozen text-to-image, text-to-video and text-to-audio teachers into language models.

    Example: armada run pipeline.toml
    """

for name in COMMANDS:
    importlib.import_module(f"armada.commands.{name}").register(app)


def main() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        app()
    except ArmadaError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
