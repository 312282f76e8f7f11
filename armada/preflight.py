"""The one validation pass of a pipeline before `armada run` does any work: every name (task, teacher, student)
resolves, every path it reads exists and every folder it writes can be written. A mistake in the last run's
settings is refused in seconds, not after an hour of extraction."""

from __future__ import annotations

from pathlib import Path

from armada.config import PipelineConfig
from armada.errors import ArmadaError
from armada.files import check_writable_folder


def check_before_work(cfg: PipelineConfig, runs) -> None:
    """Raise the first problem of the planned `runs` (armada.pipeline.plan) of `cfg`."""
    from armada.distill.students import check_student
    from armada.extract.registry import resolve

    settings = [cfg.distill_for(run.task.name, run.variant, seed=run.seed) for run in runs]
    for teacher in dict.fromkeys(run.teacher for run in runs if run.teacher):
        resolve(teacher, cfg.teachers)
    for student in dict.fromkeys(s.student for s in settings):
        check_student(student)
    for task in cfg.run.tasks:
        data_dir = cfg.data.dir_for(task)
        if data_dir and not Path(data_dir).is_dir():
            raise ArmadaError(f"{cfg.source}: the data folder of {task}, {data_dir}, does not exist; set data.data_dir "
                              "(or data.data_dirs) to the folder that holds the task's files")
    for s in settings:
        for key in ("kd_cache", "seqkd_cache"):
            path = getattr(s, key, "")
            if path and _local(path) and not Path(path).exists():
                raise ArmadaError(f"{cfg.source}: distill.{key} = {path!r} does not exist; write it first (armada "
                                  "extract --teacher run:PATH) or correct the path")
    for folder in cfg.extract.reuse_from:
        if _local(folder) and not Path(folder).is_dir():
            raise ArmadaError(f"{cfg.source}: extract.reuse_from names {folder!r}, which is not a folder")
    for key, folder in (("extract.cache_dir", cfg.extract.cache_dir), ("run.runs_dir", cfg.run.runs_dir),
                        ("run.report_dir", cfg.run.report_dir)):
        if _local(folder):
            check_writable_folder(folder, f"{cfg.source}: {key}")


def _local(path: str) -> bool:
    """Whether `path` is on this machine's disk (not a URL, an object store or a Hub dataset)."""
    return "://" not in path and not path.startswith("hf:")
