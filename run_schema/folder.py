"""A run folder on disk: where each of its files is, and reading and writing its records.

Only a run's main training process writes run.json, config.toml, metrics.jsonl, student/ and the
aligner (under the folder's lock, armada.run_schema.lock); scorers write under eval/. Files others
read are replaced whole (armada.files), so a reader never sees half of one.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from armada.errors import ArmadaError
from armada.files import file_slug, replacing, task_slug, write_atomically
from armada.jsonl import json_text, read_jsonl
from armada.run_schema.records import EpochRecord, GenerationRecord, RunRecord, ScoreRecord, UnreadableRecord
from armada.run_schema.settings import RunSettings, differences

RECORD = "run.json"
SETTINGS = "config.toml"
EPOCHS = "metrics.jsonl"
EVAL = "eval"
STUDENT = "student"
ALIGNER = "aligner.safetensors"
CHECKPOINTS = "checkpoints"


@dataclass(frozen=True)
class StoredRun:
    """Everything a report reads of a run folder, checked to be consistent."""

    record: RunRecord
    variant: str
    epochs: tuple[EpochRecord, ...]
    generations: tuple[GenerationRecord, ...]


class RunFolder:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.record_path = self.path / RECORD
        self.student = self.path / STUDENT          # the best epoch's student (armada.distill.model: what is inside)
        self.aligner = self.path / ALIGNER          # the best epoch's TS Aligner (absent for an undistilled run)
        self.checkpoints = self.path / CHECKPOINTS  # epoch checkpoints (armada.distill.checkpoint owns what is inside)
        self._written: RunRecord | None = None      # the record this process last wrote

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # --- where things are ---------------------------------------------------------------------

    def scores_path(self, split: str, aligner: bool = False) -> Path:
        return self.path / EVAL / f"{_score_stem(split, aligner)}.json"

    def generation_path(self, task: str, split: str) -> Path:
        return self.path / EVAL / f"{_generation_stem(task, split)}.json"

    @staticmethod
    def holds_run(files: Iterable[str]) -> bool:
        """Whether a folder with these file names is a run folder (a run that has not written run.json
        yet has metrics.jsonl)."""
        return any(name in (RECORD, EPOCHS) for name in files)

    # --- training: the main process writes --------------------------------------------------

    def started(self) -> bool:
        return self.path.exists() and any(self.path.iterdir())

    def check_out(self, resume: bool, settings: str) -> None:
        """Refuse to train into a folder that holds another run, or to resume one with other settings."""
        saved = self.path / SETTINGS
        if self.started() and not self.trained():
            # A run that stopped before its first epoch ended (a bad setting, Ctrl-C) left nothing to lose:
            # a corrected rerun takes the folder over rather than being sent to another --out.
            print(f"{self.path} holds no finished epoch of an earlier attempt ({', '.join(self._leftovers())}): "
                  "starting there afresh", flush=True)
        elif self.started():
            if not resume:
                raise ArmadaError(f"{self.path} already holds a run; pass --resume to continue it, or choose another --out")
            if saved.is_file() and saved.read_text() != settings:
                raise ArmadaError(f"{self.path} was started with other settings:\n  "
                                  + "\n  ".join(differences(saved.read_text(), settings))
                                  + "\nresume with the same settings, or choose another --out")

    def trained(self) -> bool:
        """Whether the folder holds anything training made that would be lost by starting again: an epoch's
        record or checkpoint, a kept student or aligner, an evaluation."""
        return (bool(self.read_epochs()) or self.student.exists() or self.aligner.exists() or (self.path / EVAL).exists()
                or (self.checkpoints.is_dir() and any(self.checkpoints.iterdir())))

    def _leftovers(self) -> list[str]:
        return sorted(p.name for p in self.path.iterdir()) if self.path.is_dir() else []

    def write_settings(self, text: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path / SETTINGS, text)

    def write_record(self, record: RunRecord) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomically(self.record_path, json_text(record.to_json(), indent=2) + "\n")
        self._written = record

    def stopped(self, status: str) -> bool:
        """Record that the run this process started stopped before its end ("failed", "interrupted"), so that no
        later command takes it for one still running; whether this process had started one."""
        if self._written is None or self._written.status != "running":
            return False
        self.write_record(replace(self._written, status=status))
        return True

    def append_epoch(self, epoch: EpochRecord) -> None:
        with open(self.path / EPOCHS, "a") as f:
            f.write(json_text(epoch.to_json()) + "\n")

    def keep_epochs(self, last: int) -> None:
        """Keep the lines of epochs up to `last`: a resumed run writes the later ones again."""
        path = self.path / EPOCHS
        if path.is_file():
            kept = [epoch for epoch in self.read_epochs() if epoch.epoch <= last]
            write_atomically(path, "".join(json_text(epoch.to_json()) + "\n" for epoch in kept))

    @contextmanager
    def publishing_student(self) -> Iterator[Path]:
        """A folder to save the student in; it replaces student/ whole when the block ends."""
        with replacing(self.student) as building:
            yield building

    @contextmanager
    def publishing_aligner(self) -> Iterator[Path]:
        with replacing(self.aligner) as building:
            yield building

    # --- scoring: eval/ -------------------------------------------------------------------------

    def write_scores(self, record: ScoreRecord, predictions: Iterable[Mapping]) -> tuple[Path, Path]:
        """eval/<split>[-aligner].json and its predictions, one JSON line per example; returns both paths."""
        stem = _score_stem(record.split, record.scorer == "aligner")
        return self._write_evaluation(stem, record.to_json(), predictions)

    def write_generation(self, record: GenerationRecord, predictions: Iterable[Mapping]) -> tuple[Path, Path]:
        return self._write_evaluation(_generation_stem(record.task, record.split), record.to_json(), predictions)

    def _write_evaluation(self, stem: str, record: dict, predictions: Iterable[Mapping]) -> tuple[Path, Path]:
        folder = self.path / EVAL
        folder.mkdir(exist_ok=True)
        lines = folder / f"predictions-{stem}.jsonl"
        write_atomically(lines, "".join(json_text(dict(p)) + "\n" for p in predictions))
        scores = folder / f"{stem}.json"
        write_atomically(scores, json_text(record, indent=2) + "\n")
        return scores, lines

    def scored_since_finished(self, scores: Path) -> bool:
        """Whether `scores` were written after the run last finished (else they must be written again)."""
        return scores.is_file() and scores.stat().st_mtime >= (self.record_path).stat().st_mtime

    # --- reading ------------------------------------------------------------------------------

    def read_run(self) -> StoredRun:
        """The run's record, variant, epochs and generative evaluations; UnreadableRecord where a record is
        missing or unreadable, or a finished run's epochs do not hold the dev scores it was chosen by."""
        record = self.read_record()
        epochs = self.read_epochs()
        if record is None:
            raise UnreadableRecord(f"no {RECORD} yet: running, or stopped before the end ({len(epochs)} epoch(s) in {EPOCHS})")
        run = StoredRun(record, self.variant(record), epochs, self.read_generations())
        if record.finished:
            _check_finished(record, epochs)
        return run

    def read_record(self) -> RunRecord | None:
        """run.json, or None where the run has not written it yet."""
        path = self.record_path
        if not path.is_file():
            return None
        return RunRecord.from_json(_read_json(path))

    def finished_record(self) -> RunRecord | None:
        """run.json of a finished run, else None."""
        record = self.read_record()
        return record if record is not None and record.finished else None

    def read_finished(self) -> tuple[RunRecord, RunSettings]:
        """A finished run's record and settings, for scoring it; ArmadaError where it is not one."""
        try:
            record = self.read_record()
        except UnreadableRecord as e:
            raise ArmadaError(f"{self.path}: {e}") from None
        if record is None:
            raise ArmadaError(f"{self.path}: no {RECORD}; give a run folder that `armada distill --out` wrote")
        if not record.finished:
            raise ArmadaError(f"{self.path}: the run is not finished (status {record.status!r}); "
                              "finish it with `armada distill ... --resume` first")
        settings = self.read_settings()
        if settings is None:
            raise ArmadaError(f"{self.path}: no {SETTINGS}; the run folder is incomplete")
        return record, settings

    def read_settings(self) -> RunSettings | None:
        path = self.path / SETTINGS
        if not path.is_file():
            return None
        try:
            return RunSettings.from_text(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise UnreadableRecord(f"{SETTINGS} is not valid TOML: {e}") from None

    def read_epochs(self) -> tuple[EpochRecord, ...]:
        path = self.path / EPOCHS
        if not path.is_file():
            return ()
        epochs = []
        try:
            for where, row in read_jsonl(path):
                epochs.append(EpochRecord.from_json(row, where))
        except UnreadableRecord:
            raise
        except ArmadaError as e:
            raise UnreadableRecord(str(e)) from None
        return tuple(epochs)

    def variant(self, record: RunRecord) -> str:
        """The run's variant: as recorded, else (runs made without one) undistilled, or ARMADA named by
        its manifold loss as its settings say."""
        if record.variant:
            return record.variant
        if record.undistilled:
            return "undistilled"
        settings = self.read_settings()
        if settings is None:
            raise UnreadableRecord(f"{RECORD} names no variant and there is no {SETTINGS} to tell it")
        if record.undistilled is None and settings.distill.get("undistilled"):
            return "undistilled"
        if not settings.distill.get("manifold"):
            raise UnreadableRecord(f"{RECORD} names no variant and {SETTINGS} has no distill.manifold")
        return f"armada-{settings.distill['manifold']}"

    def read_generations(self) -> tuple[GenerationRecord, ...]:
        """Every generative evaluation under eval/, in file-name order."""
        return tuple(GenerationRecord.from_json(_read_json(path), path.name)
                     for path in sorted((self.path / EVAL).glob("generation-*.json")))


def find_run_folders(paths: Iterable[str | os.PathLike]) -> list[RunFolder]:
    """Run folders named by `paths`: each a run folder, or a folder searched for them."""
    found: list[Path] = []
    for given in paths:
        root = Path(given)
        if not root.exists():
            raise ArmadaError(f"{root}: no such run folder or folder of runs")
        if root.is_file():
            raise ArmadaError(f"{root}: is a file; give a run folder (with {RECORD}) or a folder that holds run folders")
        before = len(found)
        for folder, subfolders, files in os.walk(root):
            if RunFolder.holds_run(files):
                found.append(Path(folder))
                subfolders.clear()      # a run's own folders (student/, checkpoints) hold no runs
            else:
                subfolders.sort()
        if len(found) == before:
            raise ArmadaError(f"{root}: no run folders (with {RECORD} or {EPOCHS}) in it; give the folder "
                              "`armada distill --out` wrote")
    return [RunFolder(p) for p in sorted(set(found))]


def pipeline_run_folder(runs_dir: str | os.PathLike, pipeline: str, task: str, variant: str, seed: int) -> RunFolder:
    """Where `armada run` puts a run: <runs_dir>/<pipeline>/<task>/<variant>/seed-<S>."""
    return RunFolder(Path(runs_dir) / pipeline / task_slug(task) / variant / f"seed-{seed}")


def _check_finished(record: RunRecord, epochs: tuple[EpochRecord, ...]) -> None:
    if not epochs:
        raise UnreadableRecord(f"finished, but {EPOCHS} is missing or empty")
    numbers = [e.epoch for e in epochs]
    if record.best_epoch not in numbers:
        raise UnreadableRecord(f"best_epoch {record.best_epoch} is not among the epochs of {EPOCHS} {numbers}")
    if not record.metric:
        return                  # a generative run without a validation split has no dev score
    best = next(e for e in epochs if e.epoch == record.best_epoch)
    for name, epoch in (("best", best), ("last", epochs[-1])):
        if record.metric not in epoch.dev:
            raise UnreadableRecord(f"{EPOCHS} has no dev score {record.metric!r} at the {name} epoch")


def default_run_folder(task: str, student: str, kind: str, seed: int) -> RunFolder:
    """Where `armada distill` puts a run without --out: runs/<task>-<student>-<kind>-seed<S> (a student given as a
    folder by its name)."""
    name = Path(student).name if Path(student).is_dir() else student
    return RunFolder(Path("runs") / "-".join(file_slug(part) for part in (task, name, kind, f"seed{seed}")))


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UnreadableRecord(f"{path.name} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise UnreadableRecord(f"{path.name} is not a JSON object")
    return data


def _score_stem(split: str, aligner: bool) -> str:
    return f"{split}-aligner" if aligner else split


def _generation_stem(task: str, split: str) -> str:
    return f"generation-{task_slug(task)}-{split}"
