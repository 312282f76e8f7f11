"""Two "nodes" on this machine extract into one bucket, each in a working folder of its own with its own copy
of the data; the S3 server (the s3 fixture) is all they share. Each time the cache equals one process's
extraction of the same rows into a folder.

torchrun, elastic (c10d rendezvous hosted by node 0's agent): node 1's agent is SIGKILLed in the middle of a
shard and started again alone; node 0's agent, never restarted, runs its worker group again with it (whether
its worker was still extracting or had already failed on the lost peer), and both end well.

accelerate launch: two machines (--num_machines 2, --machine_rank 0 and 1) meet on 127.0.0.1 and share the shards.
--multi_gpu is accelerate's torchrun launcher, on CPUs too; --cpu would start on each machine one process that is
given no RANK or WORLD_SIZE (accelerate leaves multi-machine CPU runs to mpirun), alone in a world of one.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

import pytest

import launched
from test_cache_bucket import assert_same_objects
from test_extract_runner import TESTS, TRAIN, VALIDATION, calls_made, make_job, write_rows  # noqa: F401

from armada.cache_schema.verify import verify
from armada.extract.job import ExtractJob
from armada.extract.runner import run_extract

NODE_SCRIPT = """\
import json, sys
from armada.cache_schema.verify import verify
from armada.extract.job import ExtractJob
from armada.extract.runner import run_extract
summary = run_extract(ExtractJob.from_json(json.load(open(sys.argv[1]))), show_progress=False)
if summary is not None:
    print("SUMMARY", json.dumps([[p.pid, p.shards_written] for p in summary.processes]))
"""


def node_folder(root: Path, name: str, url: str, teacher: dict) -> Path:
    """A node's working folder: its data files, its job (relative paths: nothing points outside it), its script."""
    folder = root / name
    folder.mkdir()
    write_rows(folder / "train.jsonl", TRAIN, "t")
    write_rows(folder / "validation.jsonl", VALIDATION, "v")
    job = ExtractJob(teacher="fake", task="file:toy", out=url, shard_rows=4, batch_size=2, dtype="float32",
                     teacher_tables={"fake": {"dim": 6, "calls": "calls.jsonl", **teacher}},
                     teacher_loader="extract_fake_teacher:load",
                     file_tasks={"toy": {"train": "train.jsonl", "validation": "validation.jsonl", "text_fields": ["text"],
                                         "labels": ["x"], "id_field": "id"}})
    (folder / "job.json").write_text(json.dumps(job.to_json()))
    (folder / "node.py").write_text(NODE_SCRIPT)
    return folder


def elastic_agent(folder: Path, node_rank: int, port: int, log: Path, env: dict) -> launched.Started:
    """README's elastic torchrun command, the rendezvous on node 0's agent (is_host: on one machine both agents
    would match 127.0.0.1). A dead agent is dropped from the rendezvous after 3 missed keep-alives: 1 s apart here,
    5 s by default."""
    torchrun = Path(sys.executable).parent / "torchrun"
    command = [str(torchrun), "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d",
               "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "nodes", "--max-restarts", "3",
               "--rdzv-conf", f"is_host={int(node_rank == 0)},keep_alive_interval=1", "node.py", "job.json"]
    return launched.Started(command, log, {**env, "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}, cwd=folder)


def summary_of(node: launched.Started) -> list[list[int]]:
    """[pid, shards written] of each process, as node 0's main process printed them."""
    return json.loads(next(line for line in reversed(node.output().splitlines()) if line.startswith("SUMMARY"))[8:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nodes_env(s3) -> dict:
    return {**s3.env(), "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.slow
def test_a_node_killed_mid_shard_and_restarted_alone_rejoins_and_the_nodes_finish_one_cache(s3, make_job, tmp_path):
    url = s3.url(f"{tmp_path.name}/nodes.zarr")
    env = {**nodes_env(s3), "ARMADA_CLAIM_SECONDS": "2"}
    first = node_folder(tmp_path, "node-0", url, {"sleep": 0.1})
    second = node_folder(tmp_path, "node-1", url, {"sleep": 0.1, "hang_at": 1})    # hangs inside its first shard
    port = free_port()
    nodes = [elastic_agent(first, 0, port, tmp_path / "node-0.log", env)]
    try:
        nodes.append(elastic_agent(second, 1, port, tmp_path / "node-1.log", env))
        deadline = time.monotonic() + 240
        while not (calls_made(first / "calls.jsonl") and calls_made(second / "calls.jsonl")):
            assert time.monotonic() < deadline and nodes[1].process.poll() is None, nodes[1].output()[-3000:]
            time.sleep(0.05)
        nodes[1].kill()                     # SIGKILL: agent and worker, with a shard claimed and half encoded
        restarted = json.loads((second / "job.json").read_text())
        del restarted["teacher_tables"]["fake"]["hang_at"]
        (second / "job.json").write_text(json.dumps(restarted))
        nodes.append(elastic_agent(second, 1, port, tmp_path / "node-1-again.log", env))
        for node in (nodes[0], nodes[2]):
            assert node.wait(timeout=240) == 0, node.output()[-4000:]
    finally:
        for node in nodes:
            node.kill()
    ranks = summary_of(nodes[0])
    assert len(ranks) == 2
    assert ranks[0][0] != calls_made(first / "calls.jsonl")[0]["pid"]      # node 0's agent started a new worker
    assert verify(url).clean
    local = run_extract(make_job(out="one.zarr"), show_progress=False)
    assert_same_objects(url, local.path)


def accelerate_node(folder: Path, machine_rank: int, port: int, log: Path, env: dict) -> launched.Started:
    """README's accelerate command for two machines of one process each."""
    accelerate = Path(sys.executable).parent / "accelerate"
    command = [str(accelerate), "launch", "--multi_gpu", "--num_machines", "2", "--machine_rank", str(machine_rank),
               "--num_processes", "2", "--main_process_ip", "127.0.0.1", "--main_process_port", str(port),
               "node.py", "job.json"]
    return launched.Started(command, log, env, cwd=folder)


@pytest.mark.slow
def test_two_accelerate_machines_write_one_cache(s3, make_job, tmp_path):
    url = s3.url(f"{tmp_path.name}/machines.zarr")
    env = {**nodes_env(s3), "HF_HOME": str(tmp_path / "hf")}        # no accelerate config of this machine's
    port = free_port()
    folders = [node_folder(tmp_path, f"machine-{rank}", url, {}) for rank in (0, 1)]
    machines = []
    try:
        for rank, folder in enumerate(folders):
            machines.append(accelerate_node(folder, rank, port, tmp_path / f"machine-{rank}.log", env))
        for machine in machines:
            assert machine.wait(timeout=240) == 0, machine.output()[-4000:]
    finally:
        for machine in machines:
            machine.kill()
    ranks = summary_of(machines[0])
    local = run_extract(make_job(out="one.zarr"), show_progress=False)
    assert len(ranks) == 2                                                  # one group, not two lone processes
    assert sum(written for _, written in ranks) == local.shards_written    # each shard written once
    assert verify(url).clean
    assert_same_objects(url, local.path)
