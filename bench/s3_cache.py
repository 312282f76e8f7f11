"""Caches in object storage against caches on disk, side by side in one run, against a loopback SeaweedFS server.

    .venv/bin/python bench/s3_cache.py            # ~2 min on 2 cores (part 1 ~5)

1. Reading for training: the rows/s of CacheReader.load (the whole split, read into memory and checked, as
   distill does) from s3:// and from a folder, against the rows/s ARMADA training consumes (one process,
   minilm-l6, batch 32, length 128, teacher dim 1024: bench/distill_overhead.py's step). Target: ≥ 20×.
2. Extraction: `armada extract --teacher piper-whisper --dataset bbc-news` of the same headlines into a folder
   and into s3://, each in its own process, alternating; examples/s as armada prints it (after loading).
   Target: S3 / disk ≥ 0.9.
3. `armada cache verify` of a 10,000-row cache (float16, dim 1024, shards of 2048 rows) over s3:// and
   from a folder (seconds, in this process).

The server is tests/s3_server.py's (`weed mini`, on loopback ports picked at start); it and the
temporary folders are removed at the end. Rounds alternate the two sides so that a busy machine
slows both alike; medians are shown.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

import distill_overhead  # noqa: E402
import s3_server  # noqa: E402

from armada.cache_schema import (CacheReader, CacheWriter, DatasetInfo, Extraction, Manifest, SplitInfo,  # noqa: E402
                                 TeacherInfo, chunk_rows_for, strings_digest)
from armada.cache_schema.bucket import Bucket  # noqa: E402
from armada.cache_schema.layout import all_keys  # noqa: E402
from armada.cache_schema.verify import verify  # noqa: E402
from armada.config import DistillConfig  # noqa: E402


def upload(folder: Path, url: str) -> None:
    bucket = Bucket(url)
    for key in all_keys(CacheReader(folder).manifest):
        bucket.put(key, (folder / key).read_bytes())


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def reading_for_training(root: Path, server, rows: int, rounds: int) -> None:
    task = distill_overhead.long_task(root, rows)
    split = task.load("train")
    folder = root / "train.zarr"
    distill_overhead.write_cache(folder, task, split)
    url = server.url("bench/train.zarr")
    upload(folder, url)
    seconds = {"folder": [], "s3": []}
    for round_ in range(rounds):
        order = [("folder", str(folder)), ("s3", url)]
        for name, location in order if round_ % 2 else order[::-1]:
            seconds[name].append(timed(lambda: CacheReader(location).load("train", split.ids, split.teacher_hashes)))
    features = CacheReader(url).load("train", split.ids, split.teacher_hashes)
    loop, _ = distill_overhead.make_loop(DistillConfig(student="minilm-l6", batch_size=32, max_length=128,
                                                       manifold="euclid"), task, split, features)
    rng = np.random.default_rng(0)
    steps = [distill_overhead.step_seconds(loop, rng.choice(len(split), size=32, replace=False))[0] for _ in range(6)][1:]
    consumed = 32 / statistics.median(steps)
    print(f"\n1. reading for training: {rows} rows × {distill_overhead.TEACHER_DIM} float16, shards of 2048 rows; "
          f"median of {rounds} loads each")
    print("| source                              | rows/s     | × ARMADA consumption |")
    print("|-------------------------------------|------------|----------------------|")
    print(f"| consumed by ARMADA training (1 proc)| {consumed:10.1f} | {1:20.0f} |")
    for name in ("folder", "s3"):
        rate = rows / statistics.median(seconds[name])
        print(f"| CacheReader.load from {name:14}| {rate:10.0f} | {rate / consumed:20.0f} |")
    print("(target: s3 loader ≥ 20× consumption)")


HEADLINE = 'data.teacher_templates={"bbc-news" = "{title}"}'     # the teacher hears the headline, as in pipeline.toml


def extraction(root: Path, server, limit: int, rounds: int) -> None:
    armada = Path(sys.executable).with_name("armada")
    env = {**os.environ, **server.env(), "TQDM_DISABLE": "1"}
    rates: dict[str, list[float]] = {"folder": [], "s3": []}
    for round_ in range(rounds):
        order = [("folder", str(root / f"extract-{round_}.zarr")), ("s3", server.url(f"bench/extract-{round_}.zarr"))]
        for name, out in order if round_ % 2 else order[::-1]:
            result = subprocess.run([str(armada), "extract", "--teacher", "piper-whisper", "--dataset", "bbc-news",
                                     "--split", "train", "--limit", str(limit), "--out", out,
                                     "--set", "extract.shard_rows=16", "--set", HEADLINE],
                                    env=env, capture_output=True, text=True, check=True)
            rates[name].append(float(re.search(r"then ([\d.]+) examples/s", result.stdout).group(1)))
            print(f"   round {round_} {name}: {rates[name][-1]:.3f} examples/s", flush=True)
    folder, s3 = statistics.median(rates["folder"]), statistics.median(rates["s3"])
    print(f"\n2. extraction: piper-whisper, bbc-news train headlines, {limit} rows, shards of 16 rows; median of {rounds} runs each")
    print("| cache written to | examples/s |")
    print("|------------------|------------|")
    print(f"| folder           | {folder:10.3f} |")
    print(f"| s3://            | {s3:10.3f} |")
    print(f"S3 / disk: {s3 / folder:.3f} (target ≥ 0.9)")


def verification(root: Path, server, rows: int, rounds: int) -> None:
    dim, shard_rows = 1024, 2048
    ids = [f"row-{i}" for i in range(rows)]
    hashes = [f"{i:064x}" for i in range(rows)]
    manifest = Manifest(TeacherInfo("bench", "synthetic", dim, {}),
                        Extraction("float16", shard_rows, chunk_rows_for(shard_rows, dim, "float16")),
                        DatasetInfo("file:bench", "bench", {"train": SplitInfo(rows, "bench", strings_digest(ids), 0)}))
    folder = root / "verify.zarr"
    writer = CacheWriter.create(folder, manifest)
    vectors = np.random.default_rng(1).normal(size=(rows, dim)).astype(np.float32)
    for shard in writer.shards("train"):
        writer.write_shard("train", shard.index, vectors[shard.start:shard.stop], ids[shard.start:shard.stop],
                           hashes[shard.start:shard.stop])
    url = server.url("bench/verify.zarr")
    upload(folder, url)
    seconds = {"folder": [], "s3": []}
    for round_ in range(rounds):
        order = [("folder", str(folder)), ("s3", url)]
        for name, location in order if round_ % 2 else order[::-1]:
            report = None

            def run():
                nonlocal report
                report = verify(location)
            seconds[name].append(timed(run))
            assert report.clean
    print(f"\n3. armada cache verify: {rows} rows × {dim} float16, shards of {shard_rows} rows; median of {rounds} runs")
    print("| cache   | seconds |")
    print("|---------|---------|")
    for name in ("folder", "s3"):
        print(f"| {name:7} | {statistics.median(seconds[name]):7.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096, help="rows of the training split read in part 1")
    parser.add_argument("--extract-rows", type=int, default=48, help="bbc-news rows extracted in part 2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parts", default="1,2,3", help="which parts to run, e.g. 1,3")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory(prefix="armada-bench-s3-") as tmp:
        root = Path(tmp)
        server = s3_server.start(root / "seaweedfs")
        os.environ.update(server.env())
        try:
            if "1" in parts:
                reading_for_training(root, server, args.rows, args.rounds)
            if "2" in parts:
                extraction(root, server, args.extract_rows, args.rounds)
            if "3" in parts:
                verification(root, server, 10_000, args.rounds)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
