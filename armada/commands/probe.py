"""`armada probe`: how much of a task a cache's teacher vectors carry, before any distillation."""

from __future__ import annotations

from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("probe")(probe)


def probe(
    cache: str = typer.Argument(..., help="a cache folder or URL (armada extract's output)"),
    dataset: str = typer.Option(..., "--dataset", "-d", help="the task the cache holds (e.g. glue/rte)"),
    data_dir: str = typer.Option("", "--data-dir", help="the task's local files (GLUE TSV, SuperGLUE JSONL); \"\" = the hub"),
    student: str = typer.Option("minilm-l6", "--student", help="the student whose frozen pooled embedding is probed "
                                "beside the teacher's vectors; \"\" leaves that probe out"),
    pooling: str = typer.Option("auto", "--pooling", help="the student's pooling, as [distill] pooling"),
    max_length: int = typer.Option(128, "--max-length", min=1, help="the student's tokens per input"),
    folds: int = typer.Option(5, "--folds", min=2, help="cross-validation folds on the training split"),
    seed: int = typer.Option(0, "--seed", help="folds, label shuffle and bootstrap"),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="also write the result as JSON here (armada report reads "
                                      "probe--TEACHER.json in a pipeline's task folders)"),
) -> None:
    """How much of the task a cache's teacher vectors carry, before any distillation.

    Linear probes, cross-validated on the training split and checked on validation: on the cached teacher
    vectors, on the student's frozen pooled embedding of the same rows, and on label-shuffled targets.

    Example: armada probe cache/glue_rte--piper-whisper.zarr --dataset glue/rte --data-dir ../data/glue
    """
    from pathlib import Path

    from armada.eval.probe import probe_cache

    result = probe_cache(cache, dataset, data_dir=data_dir, student=student, pooling=pooling, max_length=max_length,
                         folds=folds, seed=seed)
    typer.echo(result.table())
    if out:
        result.write(Path(out))
