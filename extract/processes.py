"""Several extraction processes: the ones a launcher started, or ones `--num-processes N` spawns.

Either way every process runs the same code (worker.run_process) and learns its rank from the
environment torchrun and `accelerate launch` set (RANK, WORLD_SIZE, MASTER_ADDR, ...). accelerate's
PartialState joins them, so that the main process creates the cache before the others open it. On
a CPU it must be asked for explicitly (cpu=True): otherwise each process silently believes it is
alone, and both would write every shard.

Spawned workers are this module run as a script; they report progress and their result as JSON
lines on a pipe of their own (stdout stays free for the libraries that print), and the spawning
process shows one progress bar for all of them. What a worker refuses (an ArmadaError) reaches the user
whole, once: the spawning process stops the other workers, whose failures follow from it and are not shown.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

from armada.errors import ArmadaError
from armada.extract.job import ExtractJob, ProcessRecord
from armada.extract.worker import run_process


@dataclass(frozen=True)
class Launched:
    """This process's place among the extraction processes (rank 0 of 1 when it is alone)."""

    rank: int = 0
    world: int = 1
    state: Any = None                       # accelerate's PartialState when world > 1

    def main_first(self) -> contextlib.AbstractContextManager:
        return self.state.main_process_first() if self.state is not None else contextlib.nullcontext()

    def gather(self, record: ProcessRecord) -> list[ProcessRecord] | None:
        """Every process's record, on the main process (None on the others)."""
        if self.state is None:
            return [record]
        import torch
        import torch.distributed as dist

        # Counts travel as a tensor: gathering Python objects would pickle them.
        mine = torch.tensor(dataclasses.astuple(record), dtype=torch.int64, device=self.state.device)
        everyone = [torch.empty_like(mine) for _ in range(self.world)]
        try:
            dist.all_gather(everyone, mine)
        except (RuntimeError, dist.DistError) as e:     # gloo: "Connection closed by peer"
            raise ArmadaError(
                f"another of the {self.world} extraction processes ended before the end (a node lost, a process "
                f"killed: {str(e).splitlines()[0][:200]}). The shards written are kept: start the same job again to "
                "finish the cache (`armada cache info` shows what is done)"
            ) from None
        if self.rank != 0:
            return None
        return [ProcessRecord(*(int(v) for v in t.tolist())) for t in everyone]

    def close(self) -> None:
        if self.state is not None:
            import torch.distributed as dist

            dist.destroy_process_group()


def launched() -> Launched:
    """Read the launcher's environment; join the other processes if there are any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Launched()
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    if state.num_processes != world:
        raise ArmadaError(
            f"WORLD_SIZE={world} says this is one of {world} processes, but accelerate joined {state.num_processes}; "
            "start them with torchrun or `accelerate launch --multi_gpu`, or use armada extract --num-processes N"
        )
    return Launched(state.process_index, world, state)


# --- progress --------------------------------------------------------------------------------

class TqdmProgress:
    """One progress bar in examples/s, for one process or summed over several."""

    def __init__(self, enabled: bool, processes: int = 1):
        self.enabled = enabled
        self.processes = processes
        self.started = 0
        self.shards = 0
        self.shards_done = 0
        self.ready: float | None = None     # perf_counter() when the last process started extracting
        self.bar = None

    def start(self, shards: int, shards_done: int, rows_pending: int) -> None:
        self.started += 1
        self.shards += shards
        self.shards_done += shards_done
        if self.started == self.processes:
            self.ready = time.perf_counter()
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=rows_pending, unit=" examples", desc="extract", dynamic_ncols=True)
        else:
            self.bar.total += rows_pending
            self.bar.refresh()
        if self.started == self.processes and self.shards_done:
            self.bar.write(f"resuming: {self.shards_done} of {self.shards} shards were already done")

    def advance(self, rows: int) -> None:
        if self.bar is not None:
            self.bar.update(rows)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class PipeProgress:
    """A spawned worker's progress, as JSON lines for the spawning process."""

    def __init__(self, pipe):
        self.pipe = pipe

    def send(self, event: dict[str, Any]) -> None:
        self.pipe.write(json.dumps(event) + "\n")
        self.pipe.flush()

    def start(self, shards: int, shards_done: int, rows_pending: int) -> None:
        self.send({"event": "start", "shards": shards, "shards_done": shards_done, "rows_pending": rows_pending})

    def advance(self, rows: int) -> None:
        self.send({"event": "rows", "rows": rows})


# --- spawning --------------------------------------------------------------------------------

def spawn(job: ExtractJob, progress: TqdmProgress) -> list[ProcessRecord]:
    """Run `job` in job.num_processes worker processes; their records, or the first error any reports."""
    count = job.num_processes
    port = _free_port()
    events: queue.Queue = queue.Queue()
    workers: list[subprocess.Popen] = []
    try:
        for rank in range(count):
            read_end, write_end = os.pipe()
            env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(count),
                   "LOCAL_WORLD_SIZE": str(count), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
            # The processes share the cores: without this, each would start a thread per core.
            env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // count)))
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "armada.extract.processes", str(write_end), json.dumps(job.to_json())],
                env=env, pass_fds=(write_end,),
            ))
            os.close(write_end)
            threading.Thread(target=_forward_events, args=(rank, read_end, events), daemon=True).start()
        return _follow(workers, events, progress)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait()


def _follow(workers: list[subprocess.Popen], events: queue.Queue, progress: TqdmProgress) -> list[ProcessRecord]:
    records: dict[int, ProcessRecord] = {}
    refusals: dict[int, str] = {}           # ArmadaError messages: what the user must see
    failures: dict[int, str] = {}           # anything else: shown only where no process refused
    ended = 0
    while ended < len(workers):
        rank, event = events.get()
        if event is None:                   # its pipe closed: the worker has ended
            ended += 1
            code = workers[rank].wait()
            if rank not in records and rank not in refusals:
                failures.setdefault(rank, f"ended (exit code {code}) before finishing")
        elif event["event"] == "start":
            progress.start(event["shards"], event["shards_done"], event["rows_pending"])
        elif event["event"] == "rows":
            progress.advance(event["rows"])
        elif event["event"] == "done":
            records[rank] = ProcessRecord(**event["record"])
        elif event["event"] == "error":
            refusals[rank] = event["message"]
            for worker in workers:          # the others would fail on the broken process group: stop them now
                if worker.poll() is None:
                    worker.kill()
        elif event["event"] == "failure":
            failures[rank] = event["traceback"]
    if refusals:
        raise ArmadaError(refusals[min(refusals)])
    if failures:
        for rank, text in sorted(failures.items()):
            print(f"extraction process {rank} of {len(workers)}: {text.rstrip()}", file=sys.stderr)
        raise ArmadaError(f"extraction process {min(failures)} of {len(workers)} ended before finishing; its messages are "
                          "above. The shards written so far are kept: run the same command again to resume")
    return [records[rank] for rank in range(len(workers))]


def _forward_events(rank: int, read_end: int, events: queue.Queue) -> None:
    with os.fdopen(read_end, encoding="utf-8") as pipe:
        for line in pipe:
            events.put((rank, json.loads(line)))
    events.put((rank, None))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(pipe_fd: int, job_json: str) -> int:
    with os.fdopen(pipe_fd, "w", encoding="utf-8") as pipe:
        progress = PipeProgress(pipe)
        here = None
        try:
            here = launched()
            record = run_process(ExtractJob.from_json(json.loads(job_json)), here, progress)
        except ArmadaError as e:            # said before the group closes, so that it arrives before the others fail
            progress.send({"event": "error", "message": str(e)})
            return 2
        except KeyboardInterrupt:           # Ctrl-C reaches every worker; the spawning process says what to do
            return 130
        except Exception:
            progress.send({"event": "failure", "traceback": traceback.format_exc()})
            return 1
        finally:
            if here is not None:
                here.close()
        progress.send({"event": "done", "record": dataclasses.asdict(record)})
        return 0


if __name__ == "__main__":
    sys.exit(_worker(int(sys.argv[1]), sys.argv[2]))
