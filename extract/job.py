"""An extraction job: what to extract, with which teacher, into which cache, in values worker processes
can rebuild it from (JSON), and what each process reports back."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from armada.cache_schema.bucket import exists, join
from armada.files import task_slug
from armada.tasks import get_task

# How a worker process builds its teacher: "module:function" taking (name, teacher tables).
TEACHER_LOADER = "armada.extract.registry:load_teacher"


@dataclass(frozen=True)
class ExtractJob:
    """One extraction, in JSON-able values so that worker processes can rebuild it."""

    teacher: str
    task: str
    out: str
    splits: tuple[str, ...] = ("train", "validation")
    limits: Mapping[str, int] = field(default_factory=dict)   # split → first N rows (absent or 0 = all)
    data_dir: str = ""
    template: str = ""                      # the teacher text template ("" = the task's default)
    batch_size: int = 8
    shard_rows: int = 2048
    dtype: str = "float16"
    num_processes: int = 1
    overwrite: bool = False
    teacher_tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    file_tasks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # [tasks.NAME] tables for file: tasks
    teacher_loader: str = TEACHER_LOADER
    reuse: tuple[str, ...] = ()             # caches of the same teacher and settings whose rows are copied, not encoded

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ExtractJob":
        return cls(**{**data, "splits": tuple(data["splits"]), "reuse": tuple(data.get("reuse", ()))})


def job_from_config(cfg, task: str, *, out: str | None = None, overwrite: bool = False, test_limit: int = 0,
                    reuse: tuple[str, ...] = (), teacher: str | None = None) -> ExtractJob:
    """The extraction of `task` a pipeline config describes ([extract], [data], [teachers.*], [tasks.*]), with
    `teacher` (default [extract] teacher: one of a pipeline's several teachers is named).

    It reuses the caches in `reuse` and, in each folder of [extract] reuse_from, the cache of the same name where
    there is one. Unknown teacher or task names fail here, with the valid ones listed."""
    from armada.config import to_dict
    from armada.extract.registry import resolve

    teacher = teacher or cfg.extract.teacher
    resolve(teacher, cfg.teachers)
    get_task(task, cfg.tasks)
    found = [path for folder in cfg.extract.reuse_from if exists(path := default_cache_path(folder, task, teacher))]
    return ExtractJob(
        teacher=teacher, task=task, out=out or default_cache_path(cfg.extract.cache_dir, task, teacher),
        reuse=tuple(dict.fromkeys([*reuse, *found])),
        splits=cfg.extract.splits,
        limits={"train": cfg.data.train_limit, "validation": cfg.data.validation_limit, "test": test_limit},
        data_dir=cfg.data.dir_for(task), template=cfg.data.teacher_templates.get(task, ""),
        batch_size=cfg.extract.batch_size, shard_rows=cfg.extract.shard_rows, dtype=cfg.extract.dtype,
        num_processes=cfg.extract.num_processes, overwrite=overwrite, teacher_tables=cfg.teachers,
        file_tasks={name: to_dict(spec) for name, spec in cfg.tasks.items()},
    )


def default_cache_path(cache_dir: str, task: str, teacher: str) -> str:
    """<cache_dir>/<task>--<teacher>.zarr (cache_dir a folder or an s3:// URL), the "/" and ":" of both names
    (glue/cola, run:runs/x) made safe for a file name."""
    return join(cache_dir, f"{task_slug(task)}--{task_slug(teacher)}.zarr")


@dataclass(frozen=True)
class ProcessRecord:
    """What one process did: the two-process tests read these to see that both really ran."""

    rank: int
    pid: int
    shards_written: int
    shards_already_done: int
    rows_written: int
    rows_deduplicated: int
    rows_reused: int                        # copied from the caches in ExtractJob.reuse
