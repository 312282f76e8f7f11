"""The run directory's bookkeeping files: config.toml, metrics.jsonl, run.json, the best epoch's export.

Only the main process calls the writers. Files others read are replaced whole (written beside,
then renamed), so a reader never sees half of one.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tomllib
from contextlib import contextmanager
from pathlib import Path

from armada import config as config_module
from armada.config import DistillConfig
from armada.distill.model import ALIGNER_FILE, save_aligner, save_student
from armada.errors import ArmadaError


def config_text(config: DistillConfig, task_name: str, data_dir: str, limits: dict, template: str) -> str:
    """config.toml: the resolved [distill] settings and the [data] that chose the rows (armada.config.load reads it)."""
    data = {"data_dir": data_dir, "train_limit": limits["train"], "validation_limit": limits["validation"]}
    if template:
        data["teacher_templates"] = {task_name: template}
    return config_module.to_toml({"data": data, "distill": config_module.to_dict(config)})


class RunBusy(ArmadaError):
    """Another process is training this run folder right now."""


@contextmanager
def exclusive(out: Path):
    """Hold `out` for this training process (the main one; the others follow it): a second process
    that asks for the same folder, another `armada run` or `armada distill --resume`, is refused at
    once instead of interleaving its epochs with ours. The kernel drops the lock however the holder
    ends; a folder made only to hold the lock is removed again."""
    if int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    handle = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusy(f"{out} is being trained by another process right now; wait for it to end "
                          "(it resumes where it stops), or choose another --out") from None
        yield
    finally:
        os.close(handle)
        if made and not any(out.iterdir()):
            out.rmdir()


def finished_record(out: Path) -> dict | None:
    """run.json of a finished run in `out`, else None."""
    path = out / "run.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    return record if record.get("status") == "finished" else None


def check_out(out: Path, resume: bool, text: str) -> None:
    """Refuse to train into a directory that holds another run, or to resume one with other settings."""
    saved = out / "config.toml"
    if out.exists() and any(out.iterdir()):
        if not resume:
            raise ArmadaError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
        if saved.is_file() and saved.read_text() != text:
            raise ArmadaError(f"{out} was started with other settings:\n  " + "\n  ".join(_differences(saved.read_text(), text))
                              + "\nresume with the same settings, or choose another --out")


def _differences(old: str, new: str) -> list[str]:
    def flat(text: str) -> dict:
        return {f"{section}.{key}": value for section, table in tomllib.loads(text).items() for key, value in table.items()}

    a, b = flat(old), flat(new)
    return [f"{k}: {a.get(k)!r} → {b.get(k)!r}" for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]


def export_best(out: Path, student, tokenizer, aligner, kind: str, prediction_range=None) -> None:
    """student/ and aligner.safetensors of the best epoch so far, each replaced whole; `prediction_range`:
    where the aligner's regression scores are clipped when scored (the student's is in its heads config)."""
    building = out / ".student.partial"
    shutil.rmtree(building, ignore_errors=True)
    save_student(building, student, tokenizer)
    shutil.rmtree(out / "student", ignore_errors=True)
    os.rename(building, out / "student")
    if aligner is not None:
        partial = out / f".{ALIGNER_FILE}.partial"
        save_aligner(partial, aligner, kind, prediction_range)
        os.replace(partial, out / ALIGNER_FILE)


def append_metrics(out: Path, line: dict) -> None:
    with open(out / "metrics.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")


def read_metrics(out: Path) -> list[dict]:
    """metrics.jsonl: one record per finished epoch."""
    path = out / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def truncate_metrics(out: Path, epoch: int) -> None:
    """Keep the lines of epochs up to `epoch`: a resumed run rewrites the later ones."""
    path = out / "metrics.jsonl"
    if path.is_file():
        kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["epoch"] <= epoch]
        write_atomically(path, "".join(line + "\n" for line in kept))


def versions() -> dict[str, str]:
    from armada import provenance

    return provenance.versions(("torch", "transformers", "accelerate", "armada"))


def write_json(path: Path, data: dict) -> None:
    write_atomically(path, json.dumps(data, indent=2) + "\n")


def write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)
