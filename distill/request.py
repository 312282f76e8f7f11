"""A run as `armada distill` asks for it: the task is the cache's (or --dataset's for the baseline), the
settings the pipeline's for that task and variant under the flags given, the folder --out's or a
name made of them, the rows the limits given, else [data]'s, else the cache's."""

from __future__ import annotations

from typing import Any, Mapping

from armada.config import PipelineConfig
from armada.distill.inputs import RunResult, check_resume, rows_from
from armada.distill.recipe import train
from armada.distill.teacher_features import open_cache
from armada.errors import ArmadaError
from armada.run_schema import RunFolder, default_run_folder
from armada.tasks import get_task


def train_requested(pipeline: PipelineConfig, *, cache: str | None, dataset: str | None, data_dir: str | None,
                    variant: str | None, settings: Mapping[str, Any], out: str | None, resume: bool,
                    train_limit: int | None, validation_limit: int | None) -> RunResult:
    """Train the run described; `settings` are [distill] values given as flags (over the pipeline's)."""
    reader = open_cache(cache) if cache else None
    if reader is not None:
        cached = reader.manifest.dataset.task
        if dataset and dataset != cached:
            raise ArmadaError(f"--dataset {dataset} but the cache at {cache} holds {cached!r}; "
                              "drop --dataset (the task comes from the cache) or use a cache for it")
        dataset = cached
    elif not dataset:
        raise ArmadaError("give --cache PATH (the task comes from it), or --dataset TASK with --undistilled")
    task = get_task(dataset, pipeline.tasks)
    config = pipeline.distill_for(task.name, pipeline.variant(variant) if variant else None, **settings)
    kind = variant or ("undistilled" if config.undistilled else "armada")
    folder = out or default_run_folder(task.name, config.student, kind, config.seed).path
    if resume:
        check_resume(RunFolder(folder), config)
    return train(config, task, reader, pipeline.data.dir_for(task.name) if data_dir is None else data_dir, folder,
                 resume=resume, variant=variant, **rows_from(pipeline.data, task.name, train_limit, validation_limit))
