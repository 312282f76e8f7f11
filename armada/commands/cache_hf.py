"""`armada cache export/import --format hf` and `armada cache publish`: caches as Hugging Face datasets
(armada.cache_schema.hf_*). The labels come from the task's data, read as the cache's splits were."""

from __future__ import annotations

import shlex
import sys
from typing import Optional

import typer

LABEL_OPTIONS = {
    "data_dir": typer.Option(None, "--data-dir", help="the task's local files, for the label column (default: the "
                                                      "pipeline's, else the hub)"),
    "config": typer.Option(None, "--config", "-c", help="a pipeline file: its [data] folders and [tasks.*] tables"),
    "no_labels": typer.Option(False, "--no-labels", help="export what the cache holds, without the task's labels"),
    "license": typer.Option(None, "--license", help="the licence the card declares (a Hub licence id, e.g. cc-by-4.0)"),
}


def labelled_splits(cache: str, data_dir: Optional[str], config: Optional[str]) -> dict:
    """The task's rows of every split of the cache, read with the limits and teacher template it was extracted
    with (the export checks their fingerprints against the cache's)."""
    from armada.cache_schema import CacheReader
    from armada.commands import load_pipeline
    from armada.errors import ArmadaError
    from armada.tasks import get_task

    pipeline = load_pipeline(config)
    with CacheReader(cache) as reader:
        manifest = reader.manifest
    try:
        task = get_task(manifest.dataset.task, pipeline.tasks)
        folder = pipeline.data.dir_for(task.name) if data_dir is None else data_dir
        return {name: task.load(name, data_dir=folder, limit=info.limit, template=manifest.extraction.teacher_template)
                for name, info in manifest.dataset.splits.items()}
    except ArmadaError as e:
        raise ArmadaError(f"the label column needs {manifest.dataset.task}'s rows: {e}; give --data-dir (or --config "
                          "for a file task), or export without labels: --no-labels") from None


def export(cache: str, out: str, data_dir: Optional[str], config: Optional[str], no_labels: bool,
           license: Optional[str]) -> None:
    from armada.cache_schema.hf_export import export_hf

    labelled = None if no_labels else labelled_splits(cache, data_dir, config)
    written = export_hf(cache, out, labelled=labelled, license=license, command=_command())
    typer.echo(f"exported {cache} to {written} (load it with datasets.load_dataset({str(written)!r}))")


def import_(source: str, out: str) -> None:
    from armada.cache_schema.hf_export import import_hf

    written = import_hf(source, out)
    typer.echo(f"imported {source} into {written}")


def publish(cache: str = typer.Argument(..., help="a finished cache, or an export as hf:DIR"),
            repo: str = typer.Argument(..., help="the Hub dataset to push to: org/name (made if it does not exist)"),
            data_dir: Optional[str] = LABEL_OPTIONS["data_dir"], config: Optional[str] = LABEL_OPTIONS["config"],
            no_labels: bool = LABEL_OPTIONS["no_labels"], license: Optional[str] = LABEL_OPTIONS["license"],
            private: bool = typer.Option(False, "--private", help="make the dataset private when it is created"),
            revision: Optional[str] = typer.Option(None, "--revision", help="the branch to commit to (default main)")) -> None:
    """Export a cache as a Hugging Face dataset and push it to the Hub in one commit (huggingface_hub's upload_folder,
    file by file from disk). The token is huggingface_hub's own (HF_TOKEN or `hf auth login`); armada never stores it.

    Example: armada cache publish cache/bbc-news--piper-whisper.zarr my-team/bbc-news-piper-whisper --license cc-by-4.0
    """
    from armada.cache_schema.hf_publish import publish as publish_cache
    from armada.cache_schema.hf_reader import PREFIX

    from armada.errors import ArmadaError

    if cache.startswith(PREFIX) and (data_dir or config or no_labels or license):
        raise ArmadaError(f"{cache} is an export: its labels and licence were settled when it was made; drop "
                          "--data-dir, --config, --no-labels and --license, or publish the cache itself")
    labelled = None if no_labels or cache.startswith(PREFIX) else labelled_splits(cache, data_dir, config)
    url = publish_cache(cache, repo, labelled=labelled, license=license, private=private, revision=revision,
                        command=_command())
    typer.echo(f"published {cache} to {repo}: {url}\nload it with datasets.load_dataset({repo!r}), "
               f"or distil from it with --cache hf:{repo}")


def _command() -> str:
    """The command line that made the export, for its card."""
    return shlex.join(["armada", *sys.argv[1:]])
