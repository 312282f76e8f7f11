"""What every training run does first, whatever its objective (armada.distill.recipe): return a
finished run as it is, or check its inputs before anything is written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from armada.config import DataConfig, DistillConfig, to_dict
from armada.run_schema import RunFolder
from armada.distill.teacher_features import check_task, open_cache, split_settings
from armada.errors import ArmadaError
from armada.tasks import Task


@dataclass(frozen=True)
class RunResult:
    out_dir: Path
    task: str
    metric: str                 # the primary metric's name
    best_epoch: int
    best_dev: float | None      # None when the metric was undefined in every epoch
    epochs: int
    seconds: float
    status: str                 # "finished"


def finished_run(folder: RunFolder, resume: bool) -> RunResult | None:
    """The run in `folder` if `resume` and it is finished (said on stdout), else None."""
    finished = folder.finished_record() if resume else None
    if finished is None:
        return None
    kept = (f"best {finished.metric} {finished.best_dev} at epoch {finished.best_epoch}"
            if finished.best_dev is not None else f"epoch {finished.best_epoch} kept")
    print(f"{folder.path} is already finished ({kept})", flush=True)
    return RunResult(folder.path, finished.task, finished.metric, finished.best_epoch, finished.best_dev,
                     finished.epochs, finished.seconds, "finished")


def check_resume(folder: RunFolder, config: DistillConfig) -> None:
    """What `--resume` finds in `folder`, said before anything is done: nothing to resume (a mistyped --out would
    look like a resume otherwise), or a finished run that the settings given would change (it is returned as it
    is, so they would be ignored)."""
    if not folder.trained():
        print(f"--resume: {folder.path} holds no run to resume; starting a new one there", flush=True)
        return
    saved = folder.read_settings() if folder.finished_record() is not None else None
    if saved is None:
        return
    ours = to_dict(config)
    changed = [f"distill.{key}: {saved.distill[key]!r} → {ours[key]!r}" for key in ours
               if key in saved.distill and saved.distill[key] != ours[key]]
    if changed:
        raise ArmadaError(f"{folder.path} is a finished run, trained with other settings than those given:\n  "
                          + "\n  ".join(changed) + "\nit is kept as it is; to train with these settings, choose another "
                          "--out (or drop --resume and remove the folder)")


def rows_from(data: DataConfig, task: str, train_limit: int | None = None, validation_limit: int | None = None) -> dict:
    """The rows a run of `task` reads, as train() takes them: the limits given, else [data]'s where set, else
    (None) those the cache was extracted with; the [data] teacher template where set, else the cache's."""
    return {"train_limit": train_limit if train_limit is not None else (data.train_limit or None),
            "validation_limit": validation_limit if validation_limit is not None else (data.validation_limit or None),
            "template": data.teacher_templates.get(task) or None}


def versions() -> dict[str, str]:
    """The libraries a run's record names (armada.provenance has the full list for a report)."""
    from armada import provenance

    return provenance.versions(("torch", "transformers", "accelerate", "armada"))


def open_inputs(config: DistillConfig, task: Task, cache, train_limit: int | None, validation_limit: int | None,
                template: str | None):
    """The cache reader (None for the baseline), the rows per split and the teacher template; `cache` is a
    path or URL, or a reader already open on one, and must hold `task`.

    The limits and the template default to those the cache's splits were extracted with (0 and
    the task's default without a cache), so that even the undistilled baseline trains on the very
    examples ARMADA does."""
    if config.mixed_precision == "fp16" and not torch.accelerator.is_available():
        raise ArmadaError("mixed_precision = \"fp16\" needs a GPU; on a CPU use \"bf16\" or \"no\"")
    if not config.undistilled and not cache:
        raise ArmadaError("ARMADA needs the teacher's features: give --cache PATH (or train the baseline with --undistilled)")
    reader = open_cache(cache) if isinstance(cache, str) else cache
    if reader is not None:
        check_task(reader, task.name)
    limits = {}
    for split, given in (("train", train_limit), ("validation", validation_limit)):
        limits[split] = (split_settings(reader, split)[0] if reader else 0) if given is None else given
    if template is None:
        template = reader.manifest.extraction.teacher_template if reader else ""
    return reader, limits, template
