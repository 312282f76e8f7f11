"""`armada extract`: a teacher's latents for a task into a cache. `armada teachers`: what can teach."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command("extract")(extract)
    app.command("teachers")(teachers)


def extract(
    dataset: str = typer.Option(..., "--dataset", "-d", help="the task to encode (`armada tasks`)"),
    teacher: str = typer.Option(None, "--teacher", "-t", help="the teacher (`armada teachers`); default: [extract] teacher"),
    split: list[str] = typer.Option(None, "--split", help="a split to encode; repeat for several; default: [extract] splits"),
    out: str = typer.Option(None, "--out", "-o", help="the cache folder or s3:// URL; default: <[extract] cache_dir>/<task>--<teacher>.zarr"),
    data_dir: str = typer.Option(None, "--data-dir", help="local task files (GLUE/SuperGLUE layouts); default: [data] data_dir"),
    limit: int = typer.Option(None, "--limit", min=0, help="encode the first N rows of each split (0 = all)"),
    batch_size: int = typer.Option(None, "--batch-size", help="texts per teacher call; default: [extract] batch_size"),
    num_processes: int = typer.Option(None, "--num-processes", help="worker processes to start; default: [extract] num_processes"),
    config: str = typer.Option(None, "--config", "-c", help="a pipeline file"),
    sets: list[str] = typer.Option(None, "--set", help="override a pipeline setting: section.key=value"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing cache made with other settings"),
    reuse: list[str] = typer.Option(None, "--reuse", help="a cache of the same teacher and settings (a folder, packed "
                                                          "file or URL) whose rows are copied, not encoded again; "
                                                          "repeat for several; also [extract] reuse_from"),
) -> None:
    """Encode a task's texts with a teacher into a resumable feature cache (run it again to resume).

    A generative run (run:PATH of armada distill --objective lm) on a generation task writes its greedy
    responses to the training prompts instead: a SeqKD cache for distill.seqkd_cache.

    Example: armada extract --teacher piper-whisper --dataset bbc-news --limit 64

    Example: armada extract --teacher piper-whisper --dataset bbc-news --reuse cache/bbc-news--piper-whisper.zarr
    --out cache/bbc-news-all.zarr   (the whole set, the first 64 rows copied)
    """
    from armada.commands import load_pipeline
    from armada.extract.job import job_from_config
    from armada.extract.runner import run_extract
    from armada.tasks import get_task

    cfg = load_pipeline(config, sets or [], flags={
        "extract.teacher": teacher, "extract.splits": split or None, "extract.batch_size": batch_size,
        "extract.num_processes": num_processes, f'data.data_dirs."{dataset}"': data_dir,
        "data.train_limit": limit, "data.validation_limit": limit,
    })
    if cfg.extract.teacher.startswith("run:") and get_task(dataset, cfg.tasks).kind == "generation":
        return extract_responses(cfg, dataset, split, out, limit)
    job = job_from_config(cfg, dataset, out=out, overwrite=overwrite, test_limit=limit or 0, reuse=tuple(reuse or ()))
    summary = run_extract(job)
    if summary is None:                     # a launched process other than the main one, which reports
        return
    typer.echo(f"rows written: {summary.rows_written} ({summary.shards_written} shards; "
               f"{summary.shards_already_done} were already done)")
    typer.echo(f"rows deduplicated: {summary.rows_deduplicated}")
    if job.reuse:
        typer.echo(f"rows copied from {', '.join(job.reuse)}: {summary.rows_reused}")
    typer.echo(f"seconds: {summary.seconds:.1f} ({summary.loading_seconds:.1f} loading the data, teacher and cache; "
               f"then {summary.examples_per_second:.2f} examples/s)")
    typer.echo(f"cache: {summary.path}")


def extract_responses(cfg, dataset: str, splits: list[str] | None, out: str | None, limit: int | None) -> None:
    """SeqKD: the generative run's greedy responses to `dataset`'s training prompts (armada.extract.sequences)."""
    from armada.cache_schema.bucket import join, refuse_url
    from armada.errors import ArmadaError
    from armada.extract.sequences import write_sequences
    from armada.files import task_slug
    from armada.tasks import get_task

    if splits and list(splits) != ["train"]:
        raise ArmadaError(f"a SeqKD teacher answers the training prompts only; drop --split {' '.join(splits)}")
    teacher = cfg.extract.teacher
    task = get_task(dataset, cfg.tasks)
    split = task.load("train", data_dir=cfg.data.dir_for(dataset), limit=cfg.data.train_limit)
    out = out or join(cfg.extract.cache_dir, f"{task_slug(dataset)}--{task_slug(teacher)}.seqkd")
    refuse_url(out, "a SeqKD cache (--out, or [extract] cache_dir for a SeqKD teacher)")
    summary = write_sequences(teacher.removeprefix("run:"), task, split, out, max_new_tokens=task.max_new_tokens,
                              batch_size=cfg.extract.batch_size, say=typer.echo)
    typer.echo(f"responses written: {summary.written} ({summary.already_done} were already written)")
    typer.echo(f"seconds: {summary.seconds:.1f}")
    typer.echo(f"cache: {summary.path}")


def teachers(config: str = typer.Option(None, "--config", "-c", help="a pipeline file whose [teachers.NAME] tables change or add teachers")) -> None:
    """List the teachers: family, output size, the models they use; then every family a [teachers.NAME] table can use.

    Example: armada teachers --config pipeline.toml
    """
    from armada.commands import load_pipeline
    from armada.extract.registry import FAMILIES, TEACHERS, resolve

    cfg = load_pipeline(config)
    rows = [("teacher", "family", "dim", "models", "")]
    for name in list(TEACHERS) + [n for n in cfg.teachers if n not in TEACHERS]:
        kind, settings = resolve(name, cfg.teachers)
        family, dim = FAMILIES[kind], FAMILIES[kind].output_dim(settings)
        description = TEACHERS[name].description if name in TEACHERS else f"[teachers.{name}] in {cfg.source}"
        rows.append((name, kind, "?" if dim is None else str(dim), ", ".join(family.model_ids(settings)) or "-", description))
    rows.append(("run:PATH", "armada-run", "?", "PATH", "a finished armada distill run as a KD teacher (text)"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
    typer.echo('\nfamilies ([teachers.NAME] with kind = "..."):')
    width = max(len(family) for family in FAMILIES)
    for family, info in FAMILIES.items():
        typer.echo(f"  {family.ljust(width)}  {info.description}")
