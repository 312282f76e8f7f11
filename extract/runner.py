"""The extraction runner: reader → teacher.encode → cache writer, one shard at a time.

A shard is the unit of work, of writing and of resuming: a process encodes the rows of a shard it
owns into one preallocated array and hands it to the cache writer, which writes the shard's marker
last; shards already marked done are skipped, so re-running an interrupted extraction finishes it.
With W processes, process r owns the shards whose index i has i % W == r, in every split.

A text teacher (armada.extract.text) is given each row's student input instead of its teacher text:
the split is read with the STUDENT_INPUT template, so the cache's text hashes, deduplication and
fingerprints follow exactly what it reads.

Identical teacher texts are encoded once. Within a shard the rows sharing a text are grouped; a text
first seen in an earlier shard is copied from that shard once it is done, and encoded again when
it belongs to another process that has not finished it yet (a teacher row depends only on its text,
so both give the same vector). For the same reason a text that another cache of the same teacher and
settings holds (ExtractJob.reuse: a smaller extraction of the task, a team's shared cache) is copied
from it: extending a cache to more rows encodes only the new texts.

One extraction writes a cache at a time: two would write the same shards at once, and Zarr loses
rows silently when two writers share a shard. The extraction's main process holds a lock on the
file `.NAME.lock` beside the cache (NAME.zarr) until it ends; a second one is refused at once, or
waits and then resumes the finished cache (`armada run`, whose processes share a pipeline).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from armada.cache_schema.bucket import is_url
from armada.errors import ArmadaError
from armada.extract import processes
from armada.extract.job import ExtractJob, ProcessRecord
from armada.extract.worker import run_process
from armada.files import check_writable_folder, held


COUNTS = ("shards_written", "shards_already_done", "rows_written", "rows_deduplicated", "rows_reused")   # ProcessRecord's


@dataclass(frozen=True)
class Summary:
    path: str
    seconds: float                          # the whole run
    loading_seconds: float                  # until every process had its data, teacher and cache ready
    processes: tuple[ProcessRecord, ...]
    # COUNTS, over every process
    shards_written: int
    shards_already_done: int
    rows_written: int
    rows_deduplicated: int
    rows_reused: int

    @property
    def examples_per_second(self) -> float:
        """Rows written per second once loading was over: the teacher's pace, not its start-up."""
        return self.rows_written / max(self.seconds - self.loading_seconds, 1e-9)


def run_extract(job: ExtractJob, show_progress: bool = True,
                when_busy: Callable[[], None] | None = None) -> Summary | None:
    """Extract `job`: here, in `job.num_processes` spawned workers, or as one of the processes a launcher
    (torchrun, accelerate launch) started. Returns the summary of every process; None in a launched
    process other than the main one, which reports for all.

    Where another extraction is writing the same cache, `when_busy` is called and this one waits for it
    to end, then resumes the cache; without `when_busy` it is refused at once."""
    started = time.perf_counter()
    launched = processes.launched()
    if job.num_processes > 1 and launched.world > 1:
        raise ArmadaError(
            f"this process is one of {launched.world} started by a launcher (WORLD_SIZE={launched.world}), and "
            f"--num-processes {job.num_processes} asks to start more: use one or the other"
        )
    progress = processes.TqdmProgress(show_progress and launched.rank == 0, job.num_processes)
    try:
        # In object storage, shard claims keep writers apart instead of a lock file (bucket_writer.py).
        alone = launched.rank == 0 and not is_url(job.out)
        with writing_alone(job.out, when_busy) if alone else nullcontext():
            if job.num_processes > 1:
                records = processes.spawn(job, progress)
            else:
                records = launched.gather(run_process(job, launched, progress))
    except KeyboardInterrupt:
        if launched.rank == 0:
            print(f"\ninterrupted: the finished shards of {job.out} are kept; run the same command again to resume "
                  "it (armada run resumes by itself)", file=sys.stderr, flush=True)
        raise
    finally:
        progress.close()
        launched.close()
    if records is None:
        return None
    ready = (progress.ready or time.perf_counter()) - started
    totals = {count: sum(getattr(p, count) for p in records) for count in COUNTS}
    return Summary(job.out, time.perf_counter() - started, ready, tuple(records), **totals)


@contextmanager
def writing_alone(out: str, when_busy: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the lock of the cache at `out` (the file `.NAME.lock` beside it, left in place) while the block
    runs; when another extraction holds it, `when_busy()` is called before waiting for it, or without one
    this one is refused."""
    cache = Path(out)
    check_writable_folder(cache, "the cache folder (--out)")
    cache.parent.mkdir(parents=True, exist_ok=True)

    def refuse() -> None:
        raise ArmadaError(f"the cache at {cache} is being written by another extraction right now; wait for it to "
                          "end and run this again (it resumes the cache), or choose another --out")

    with held(cache.parent / f".{cache.name}.lock", when_busy or refuse):
        yield
