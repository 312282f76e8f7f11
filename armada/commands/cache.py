"""`armada cache ...`: inspect, verify, pack, export and import teacher-feature caches."""

from __future__ import annotations

import json
from typing import Optional

import typer

from armada.commands import cache_hf
from armada.commands.cache_hf import LABEL_OPTIONS
from armada.errors import ArmadaError

cache_app = typer.Typer(
    help="Inspect, verify, pack, convert and publish teacher-feature caches.\n\nExample: armada cache info cache/bbc-news--piper-whisper.zarr",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def register(app: typer.Typer) -> None:
    cache_app.command("publish")(cache_hf.publish)
    app.add_typer(cache_app, name="cache")


@cache_app.command("info")
def info(path: str = typer.Argument(..., help="a cache directory, packed cache file, or http(s) or s3:// URL"),
         as_json: bool = typer.Option(False, "--json", help="print the summary as JSON")) -> None:
    """Summarise a cache: task, teacher, dim, dtype, splits and their progress, size, config hash.

    Example: armada cache info cache/bbc-news--piper-whisper.zarr --json
    """
    from armada.cache_schema import CacheReader

    with CacheReader(path) as reader:
        m = reader.manifest
        statuses = [reader.status(split) for split in reader.splits]
        size = reader.size()
    if as_json:
        typer.echo(json.dumps({
            "path": path, "manifest": m.to_dict(), "size_bytes": size,
            "splits": {s.split: {"rows": s.rows, "shards_done": s.shards_done, "shards_total": s.shards_total,
                                 "complete": s.complete, "unfinished_shards": [u.index for u in s.unfinished]}
                       for s in statuses},
        }, indent=2, ensure_ascii=False))
        return
    x = m.extraction
    lines = [
        ("cache", path),
        ("task", f"{m.dataset.task} ({m.dataset.source})"),
        ("teacher", f"{m.teacher.name} ({m.teacher.kind}), {m.teacher.dim} values per example"),
        ("storage", f"{x.dtype}, shards of {x.shard_rows} rows, chunks of {x.chunk_rows} rows"
                    + (f", teacher template {x.teacher_template!r}" if x.teacher_template else "")),
    ]
    if m.teacher.logits is not None:
        logits = m.teacher.logits
        pooled, scores = logits.columns["pooled"], logits.columns["logits"]
        lines.append(("logits", f"columns {scores.start}–{scores.stop - 1}: {', '.join(logits.labels) or 'a score'} "
                                f"({logits.task}, {logits.kind}); pooled state in columns {pooled.start}–{pooled.stop - 1}"))
    width = max(len(s.split) for s in statuses)
    for i, s in enumerate(statuses):
        state = "complete" if s.complete else f"unfinished (shards {', '.join(str(u.index) for u in s.unfinished[:10])}" \
                                              f"{', …' if len(s.unfinished) > 10 else ''} not done)"
        lines.append(("splits" if i == 0 else "", f"{s.split:<{width}}  {s.rows:>9,} rows  "
                                                  f"shards {s.shards_done}/{s.shards_total}  {state}"))
    lines += [
        ("size", "unknown (served over http)" if size is None else _size(size)),
        ("config hash", m.config_hash),
        ("created", m.created),
        ("tool", f"armada {m.tool_version}, cache schema {m.schema_version}"),
    ]
    for label, value in lines:
        typer.echo(f"{label:<12} {value}")


def _size(n: float) -> str:
    units, i = ("B", "KB", "MB", "GB"), 0
    while n >= 1000 and i < len(units) - 1:
        n, i = n / 1000, i + 1
    return f"{n:.1f} {units[i]}" if i else f"{n} B"


@cache_app.command("verify")
def verify(path: str = typer.Argument(..., help="a cache directory, packed cache file, or http(s) or s3:// URL")) -> None:
    """Re-hash every shard and list every fault (exit code 1 on any fault, 0 when clean).

    Example: armada cache verify cache/bbc-news--piper-whisper.zarr
    """
    from armada.cache_schema.verify import verify as verify_cache

    report = verify_cache(path)
    if report.clean:
        typer.echo(f"{path}: all {report.shards} shards verified, no faults")
        return
    typer.echo(f"{path}: {len(report.faults)} faults in {report.shards} shards")
    for fault in report.faults:
        typer.echo(f"  {fault}")
    raise typer.Exit(1)


@cache_app.command("pack")
def pack(path: str = typer.Argument(..., help="a finished cache (a directory, packed file, or http(s) or s3:// URL)"),
         out: str = typer.Argument(..., help="the file to write (e.g. cache.zarr.zip); must not exist")) -> None:
    """Verify a finished cache and pack it into one immutable file that CacheReader and zarr's ZipStore read directly.

    Example: armada cache pack cache/bbc-news--piper-whisper.zarr bbc-news--piper-whisper.zarr.zip
    """
    from armada.cache_schema.share import pack as pack_cache

    written = pack_cache(path, out)
    typer.echo(f"packed {path} into {written} ({_size(written.stat().st_size)})")


@cache_app.command("export")
def export(path: str = typer.Argument(..., help="a finished cache (a directory, packed file, or http(s) or s3:// URL)"),
           out: str = typer.Argument(..., help="the HDF5 file or (--format hf) the dataset folder to write; must not exist"),
           format: str = typer.Option("hdf5", "--format", help="hdf5, or hf: a Hugging Face dataset (Parquet and a card)"),
           data_dir: Optional[str] = LABEL_OPTIONS["data_dir"], config: Optional[str] = LABEL_OPTIONS["config"],
           no_labels: bool = LABEL_OPTIONS["no_labels"], license: Optional[str] = LABEL_OPTIONS["license"]) -> None:
    """Write a finished cache as HDF5 (per split features, example_id, text_sha256; the manifest as JSON) or, with
    --format hf, as a Hugging Face dataset folder that datasets.load_dataset reads, with the task's labels.

    Example: armada cache export cache/bbc-news--piper-whisper.zarr bbc-news.h5

    Example: armada cache export cache/bbc-news--piper-whisper.zarr --format hf exports/bbc-news--piper-whisper
    """
    if _format(format) == "hf":
        return cache_hf.export(path, out, data_dir, config, no_labels, license)
    if data_dir or config or no_labels or license:
        raise ArmadaError("--data-dir, --config, --no-labels and --license are for --format hf")
    from armada.cache_schema.share import export_hdf5

    written = export_hdf5(path, out)
    typer.echo(f"exported {path} to {written}")


@cache_app.command("import")
def import_(source: str = typer.Argument(..., help="an HDF5 file or (--format hf) an export: DIR, hf:DIR or hf:org/name[@revision]"),
            out: str = typer.Argument(..., help="the cache directory to write"),
            format: str = typer.Option("hdf5", "--format", help="hdf5, or hf: a folder or Hub dataset from --format hf")) -> None:
    """Rebuild a cache (with its markers) from what `armada cache export` wrote: the very cache it came from.

    Example: armada cache import bbc-news.h5 cache/bbc-news--piper-whisper.zarr

    Example: armada cache import --format hf hf:my-team/bbc-news-piper-whisper cache/bbc-news--piper-whisper.zarr
    """
    if _format(format) == "hf":
        return cache_hf.import_(source, out)
    from armada.cache_schema.share import import_hdf5

    written = import_hdf5(source, out)
    typer.echo(f"imported {source} into {written}")


def _format(name: str) -> str:
    if name not in ("hdf5", "hf"):
        raise ArmadaError(f"--format {name!r}: use hdf5 or hf")
    return name
