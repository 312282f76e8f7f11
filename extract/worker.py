"""One extraction process's work: load the teacher and the splits, open the cache, and write the shards
it owns, rows with a text already encoded copied rather than encoded again (armada.extract.runner)."""

from __future__ import annotations

import dataclasses
import importlib
import os
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Protocol

import numpy as np

from armada.errors import ArmadaError
from armada.extract.job import ExtractJob, ProcessRecord
from armada.tasks import STUDENT_INPUT, Split, Task, get_task


class Progress(Protocol):
    def start(self, shards: int, shards_done: int, rows_pending: int) -> None:
        """This process owns `shards`, `shards_done` of them done before; `rows_pending` rows are to write."""

    def advance(self, rows: int) -> None:
        """`rows` more rows are filled."""


@dataclass(frozen=True)
class SplitRows:
    """A split as the runner needs it: per row only the id, teacher text and its hash (and, for a text
    teacher, the examples it reads)."""

    name: str
    ids: list[str]
    texts: list[str]
    hashes: list[str]
    fingerprint: str
    source: str
    limit: int
    loaded: Split | None = None             # the split itself, kept only for a text teacher

    def __len__(self) -> int:
        return len(self.ids)

    def examples_at(self, rows: list[int]) -> Split:
        """The examples of these rows, as the Split a text teacher's encode_examples takes."""
        return dataclasses.replace(self.loaded, examples=tuple(self.loaded.examples[r] for r in rows))


def load_split(task: Task, split: str, job: ExtractJob, template: str) -> SplitRows:
    loaded = task.load(split, data_dir=job.data_dir, limit=job.limits.get(split, 0), template=template)
    rows = SplitRows(split, loaded.ids, loaded.teacher_texts, loaded.teacher_hashes, loaded.fingerprint(),
                     loaded.source, loaded.limit, loaded if template == STUDENT_INPUT else None)
    reject_empty_texts(task, rows)
    return rows


def reads_student_input(teacher) -> bool:
    return getattr(teacher, "reads_student_input", False)


def teacher_template(job: ExtractJob, teacher) -> str:
    """The template the splits are read with: STUDENT_INPUT for a text teacher, else the job's."""
    if reads_student_input(teacher):
        if job.template not in ("", STUDENT_INPUT):
            raise ArmadaError(
                f"teacher {teacher.name} reads the student's input ({job.task}'s text fields as the student "
                f"tokenises them), so a teacher template does not apply to it; remove teacher_templates."
                f"\"{job.task}\" = {job.template!r} from [data]"
            )
        return STUDENT_INPUT
    if job.template == STUDENT_INPUT:
        raise ArmadaError(f"the teacher template {STUDENT_INPUT!r} is for text teachers; teacher {teacher.name} reads a "
                          f"teacher text: remove it, or give a template over {job.task}'s text fields")
    return job.template


def reject_empty_texts(task: Task, split: SplitRows) -> None:
    empty = [i for i, text in zip(split.ids, split.texts) if not text.strip()]
    if empty:
        raise ArmadaError(
            f"{task.name} {split.name}: {len(empty)} example(s) have an empty or whitespace-only teacher text "
            f"({shown(empty)}); a teacher cannot encode nothing. Give the task a teacher template over fields "
            f"those rows fill ([data] teacher_templates.\"{task.name}\" = \"...\" using "
            f"{', '.join('{' + f + '}' for f in task.text_fields)}), or fix those rows in the data"
        )


def task_for(job: ExtractJob) -> Task:
    from armada.config import FileTask, build

    file_tasks = {name: build(FileTask, table, f"tasks.{name}", "the extraction job") for name, table in job.file_tasks.items()}
    return get_task(job.task, file_tasks)


def load_teacher(job: ExtractJob):
    module, _, function = job.teacher_loader.partition(":")
    return getattr(importlib.import_module(module), function)(job.teacher, job.teacher_tables)


@dataclass
class Counts:
    shards_written: int = 0
    shards_already_done: int = 0
    rows_written: int = 0
    rows_deduplicated: int = 0
    rows_reused: int = 0


def extract_owned_shards(writer, splits: list[SplitRows], teacher, rank: int, world: int, batch_size: int,
                         shard_rows: int, progress: Progress,
                         reusable: Callable[[set[str]], Mapping[str, np.ndarray]]) -> Counts:
    """Write every pending shard this process owns; `reusable(text hashes)` gives the vectors other caches hold."""
    counts = Counts()
    owned = [(split, shard) for split in splits for shard in writer.shards(split.name) if shard.index % world == rank]
    pending = [(split, shard) for split, shard in owned if not writer.is_done(split.name, shard.index)]
    counts.shards_already_done = len(owned) - len(pending)
    progress.start(len(owned), counts.shards_already_done, sum(shard.stop - shard.start for _, shard in pending))
    # Looked up for the shards this process owns; shards it takes over from a dead writer are encoded.
    reused = reusable({split.hashes[row] for split, shard in pending for row in range(shard.start, shard.stop)})
    if getattr(writer, "claims_shards", False):
        pending = claimed_shards(writer, splits, rank, world)
    first_rows = {split.name: first_row_of_each_text(split) for split in splits}
    for split, shard in pending:
        encoded, copied, written = extract_shard(writer, split, shard, first_rows[split.name], teacher, batch_size,
                                                 shard_rows, progress, reused)
        if not written:
            continue
        counts.shards_written += 1
        counts.rows_written += shard.stop - shard.start
        counts.rows_reused += copied
        counts.rows_deduplicated += shard.stop - shard.start - encoded - copied
    return counts


def claimed_shards(writer, splits: list[SplitRows], rank: int, world: int) -> Iterator[tuple[SplitRows, object]]:
    """Every shard of the cache not yet done, each claimed by this process before it is yielded (a writer of
    object storage, where nodes share nothing but the bucket): the shards this process owns first, then any other
    whose claim is free or expired (its writer died). Returns once every shard is done, waiting meanwhile on
    shards that live writers hold."""
    from armada.cache_schema.claims import claim_lifetime

    everything = [(split, shard) for split in splits for shard in writer.shards(split.name)]
    everything.sort(key=lambda pair: pair[1].index % world != rank)
    pause = min(5.0, claim_lifetime() / 4)
    while True:
        held_elsewhere = False
        for split, shard in everything:
            if writer.is_done(split.name, shard.index):
                continue
            if writer.claim(split.name, shard.index):
                yield split, shard
            else:
                held_elsewhere = True
        if not held_elsewhere:
            return
        time.sleep(pause)


def first_row_of_each_text(split: SplitRows) -> dict[str, int]:
    first: dict[str, int] = {}
    for row, text_hash in enumerate(split.hashes):
        first.setdefault(text_hash, row)
    return first


def extract_shard(writer, split: SplitRows, shard, first_rows: Mapping[str, int], teacher, batch_size: int,
                  shard_rows: int, progress: Progress, reused: Mapping[str, np.ndarray]) -> tuple[int, int, bool]:
    """Fill and write one shard; returns how many texts were encoded for it, how many rows `reused` gave, and
    whether it was marked done (not when another writer took its claim over meanwhile)."""
    start, stop_row = shard.start, shard.stop
    features = np.empty((stop_row - start, teacher.dim), dtype=np.float32)
    copies: list[tuple[int, int]] = []                  # (row in shard, earlier row of the split with its text)
    to_encode: dict[str, list[int]] = {}                # text hash → rows in shard, in order of first use
    done_shards: dict[int, bool] = {}
    from_other_caches = 0
    for row in range(start, stop_row):
        if split.hashes[row] in reused:
            features[row - start] = reused[split.hashes[row]]
            from_other_caches += 1
            continue
        first = first_rows[split.hashes[row]]
        if first < start:
            earlier = first // shard_rows
            if earlier not in done_shards:
                done_shards[earlier] = writer.is_done(split.name, earlier)
            if done_shards[earlier]:
                copies.append((row - start, first))
                continue
        to_encode.setdefault(split.hashes[row], []).append(row - start)
    if copies:
        features[[dst for dst, _ in copies]] = writer.read_rows(split.name, np.array([src for _, src in copies]))
    progress.advance(len(copies) + from_other_caches)
    groups = list(to_encode.values())
    for b in range(0, len(groups), batch_size):
        batch = groups[b:b + batch_size]
        vectors = encode_checked(teacher, split, start, batch)
        for vector, rows in zip(vectors, batch):
            features[rows] = vector
        progress.advance(sum(len(rows) for rows in batch))
    written = writer.write_shard(split.name, shard.index, features, split.ids[start:stop_row], split.hashes[start:stop_row])
    return len(groups), from_other_caches, written


def encode_checked(teacher, split: SplitRows, start: int, batch: list[list[int]]) -> np.ndarray:
    """The teacher's vectors for the first row of each group in `batch` (rows of the shard starting
    at `start`), refused (naming the examples) unless one finite row per group."""
    from armada.extract.teacher import NonFiniteVectors

    def ids_of(positions) -> list[str]:
        return [split.ids[start + row] for p in positions for row in batch[p]]

    rows = [start + group[0] for group in batch]
    try:
        if split.loaded is not None:
            vectors = np.asarray(teacher.encode_examples(split.examples_at(rows)))
        else:
            vectors = np.asarray(teacher.encode([split.texts[r] for r in rows]))
    except NonFiniteVectors as e:
        raise non_finite(teacher, split, ids_of(e.positions)) from None
    except ArmadaError as e:
        raise ArmadaError(f"{split.name} examples {shown(ids_of(range(len(batch))))}: {e}") from None
    if vectors.shape != (len(rows), teacher.dim):
        raise ArmadaError(
            f"teacher {teacher.name} returned an array of shape {vectors.shape} for {len(rows)} texts; expected "
            f"({len(rows)}, {teacher.dim}). Nothing of this shard was written"
        )
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        raise non_finite(teacher, split, ids_of(np.flatnonzero(~finite)))
    return vectors.astype(np.float32, copy=False)


def non_finite(teacher, split: SplitRows, ids: list[str]) -> ArmadaError:
    return ArmadaError(
        f"teacher {teacher.name} gave NaN or infinite values for {len(ids)} example(s) of {split.name}: {shown(ids)}. "
        "Extraction stopped and the shard holding them is not marked done; check the teacher's settings "
        "(e.g. dtype = \"float32\") or those texts, then run the same command again to resume"
    )


def shown(ids: list[str], first: int = 10) -> str:
    return ", ".join(ids[:first]) + (f" and {len(ids) - first} more" if len(ids) > first else "")


def build_manifest(job: ExtractJob, teacher, task: Task, splits: list[SplitRows], template: str):
    """What the cache will hold: the teacher's provenance, the storage settings, each split's fingerprint."""
    from armada.cache_schema import DatasetInfo, Extraction, Manifest, SplitInfo, TeacherInfo, chunk_rows_for
    from armada.cache_schema.encoding import strings_digest

    extraction = Extraction(job.dtype, job.shard_rows, chunk_rows_for(job.shard_rows, teacher.dim, job.dtype),
                            template)
    infos = {s.name: SplitInfo(len(s), s.fingerprint, strings_digest(s.ids), s.limit) for s in splits}
    source = "; ".join(dict.fromkeys(s.source for s in splits))
    return Manifest(TeacherInfo.of(teacher), extraction, DatasetInfo(task.name, source, infos))


# What decides a cached row's values besides its text (its hash): the teacher and the stored dtype; not the dataset,
# the template that made the text, nor the shard sizes. Another cache that agrees on these holds the very rows this
# one would encode.
DECIDING = ("schema_version", "teacher.", "extraction.dtype", "extraction.settings")


def refuse_other_settings(locations: tuple[str, ...], manifest) -> None:
    """Refuse (naming the settings) a cache to reuse whose teacher or storage settings are not this cache's."""
    from armada.cache_schema import CacheReader, manifest_diff

    for location in locations:
        with CacheReader(location) as other:
            differences = [line for line in manifest_diff(other.manifest, manifest) if line.startswith(DECIDING)]
        if differences:
            raise ArmadaError(f"the cache at {location} was made with other teacher or storage settings, so its rows are "
                              f"not the ones this extraction would write ({'; '.join(differences)}); do not reuse it")


def rows_of_other_caches(locations: tuple[str, ...], wanted: set[str]) -> dict[str, np.ndarray]:
    """The vectors of the `wanted` text hashes that the done shards of the caches at `locations` hold."""
    from armada.cache_schema import CacheReader

    found: dict[str, np.ndarray] = {}
    for location in locations:
        with CacheReader(location) as other:
            for split in other.splits:
                for _, values, _, hashes in other.read_shards(split, done_only=True):
                    rows = [row for row, text_hash in enumerate(hashes) if text_hash in wanted and text_hash not in found]
                    found.update(zip((hashes[row] for row in rows), values[rows].astype(np.float32)))
    return found


def run_process(job: ExtractJob, launched, progress: Progress) -> ProcessRecord:
    """One process's part: load the splits and the teacher, open the cache (the main process creates
    it before the others open it), write the pending shards this process owns."""
    from armada.cache_schema import open_writer

    task = task_for(job)
    teacher = load_teacher(job)         # first: it decides what the splits are read as (teacher_template)
    template = teacher_template(job, teacher)
    splits = [load_split(task, split, job, template) for split in dict.fromkeys(job.splits)]   # each split once
    manifest = build_manifest(job, teacher, task, splits, template)
    refuse_other_settings(job.reuse, manifest)
    with launched.main_first():
        writer = open_writer(job.out, manifest, overwrite=job.overwrite and launched.rank == 0)
    try:
        counts = extract_owned_shards(writer, splits, teacher, launched.rank, launched.world, job.batch_size,
                                      job.shard_rows, progress, lambda wanted: rows_of_other_caches(job.reuse, wanted))
        if getattr(writer, "claims_shards", False):
            writer.consolidate()
    finally:
        writer.close()
    return ProcessRecord(launched.rank, os.getpid(), counts.shards_written, counts.shards_already_done,
                         counts.rows_written, counts.rows_deduplicated, counts.rows_reused)
