"""Two "nodes" on this machine extract into one bucket: two torchrun agents (--nnodes 2, --node-rank 0 and 1,
rendezvous on 127.0.0.1), each in a working folder of its own with its own copy of the data; the S3 server
(the s3 fixture) is all they share. Node 1's agent is SIGKILLed in the middle of a shard: node 0 takes its
shard over once the claim expires and finishes the cache, then ends with an error, as a torchrun job does when
a node is lost; the job started again (both nodes, as a scheduler requeues it) finds the cache finished. The
cache equals one process's extraction of the same rows into a folder.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

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


def agent(folder: Path, node_rank: int, port: int, log: Path, env: dict) -> launched.Started:
    torchrun = Path(sys.executable).parent / "torchrun"
    command = [str(torchrun), "--nnodes", "2", "--node-rank", str(node_rank), "--nproc-per-node", "1",
               "--master-addr", "127.0.0.1", "--master-port", str(port), "node.py", "job.json"]
    return launched.Started(command, log, env, cwd=folder)


def summary_of(node: launched.Started) -> list[list[int]]:
    """[pid, shards written] of each process, as node 0's main process printed them."""
    return json.loads(next(line for line in reversed(node.output().splitlines()) if line.startswith("SUMMARY"))[8:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_write_one_cache_and_a_node_killed_mid_shard_then_restarted_still_does(s3, make_job, tmp_path):
    url = s3.url(f"{tmp_path.name}/nodes.zarr")
    env = {**s3.env(), "ARMADA_CLAIM_SECONDS": "2", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    first = node_folder(tmp_path, "node-0", url, {"sleep": 0.1})
    second = node_folder(tmp_path, "node-1", url, {"sleep": 0.1, "hang_at": 1})    # hangs inside its first shard
    port = free_port()
    nodes = [agent(first, 0, port, tmp_path / "node-0.log", env), agent(second, 1, port, tmp_path / "node-1.log", env)]
    try:
        deadline = time.monotonic() + 240
        while not calls_made(second / "calls.jsonl"):
            assert time.monotonic() < deadline and nodes[1].process.poll() is None, nodes[1].output()[-3000:]
            time.sleep(0.05)
        nodes[1].kill()                     # SIGKILL: agent and worker, with a shard claimed and half encoded
        # Node 0 writes every shard, node 1's too once its claim expires, then loses its peer at the end.
        assert nodes[0].wait(timeout=240) != 0
        assert "extraction processes ended before the end" in nodes[0].output()
        assert verify(url).clean
        encoded_by_node_1 = len(calls_made(second / "calls.jsonl"))

        restarted = json.loads((second / "job.json").read_text())
        del restarted["teacher_tables"]["fake"]["hang_at"]
        (second / "job.json").write_text(json.dumps(restarted))
        port = free_port()
        nodes += [agent(first, 0, port, tmp_path / "node-0-again.log", env),
                  agent(second, 1, port, tmp_path / "node-1-again.log", env)]
        for node in nodes[2:]:
            assert node.wait(timeout=240) == 0, node.output()[-4000:]
    finally:
        for node in nodes:
            node.kill()
    assert [written for _, written in summary_of(nodes[2])] == [0, 0]      # finished: nothing left to write
    assert len(calls_made(second / "calls.jsonl")) == encoded_by_node_1
    local = run_extract(make_job(out="one.zarr"), show_progress=False)
    assert_same_objects(url, local.path)
