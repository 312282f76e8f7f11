"""Teacher-feature cache I/O against zarr's own API, plain h5py and a numpy memmap, in one run.

    .venv/bin/python bench/cache_io.py            # 100,000 × 1024 float16 rows (~200 MB), ~2-3 min

Each round writes, loads and samples every store in turn (interleaved, so a busy machine slows
them alike); the table shows medians over the rounds, after one unrecorded warm-up round.
Everything is read from a warm page cache.

- armada: CacheWriter / CacheReader (shards of 2048 rows, inner chunks of 16 rows, crc32c).
  Random batches are measured with the split in memory and read on demand (above the memory
  budget: inner chunks read one by one, an 8 MiB LRU).
- zarr: zarr 3's own API reading the same armada store (what the reader would cost without
  its own decoding).
- h5py: one contiguous features dataset (h5py's fastest layout for these reads), ids and
  teacher-text hashes as variable-length UTF-8 strings.
- memmap: the features as an .npy file opened with mmap_mode="r"; ids and hashes as .npy arrays.

"full-split load" reads features, ids and hashes and checks the ids and hashes against the
dataset's, as CacheReader.load does; "features only" reads just the features. Writes end with
fsync for every store, as the cache writer does for each shard.

Targets (issue 2): full load ≥ 50% of h5py's speed; random batches ≤ 2× h5py's latency.
Temporary data lives under /tmp and is deleted at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import zarr

from armada.cache_schema import (CacheReader, CacheWriter, DatasetInfo, Extraction, Manifest, SplitInfo, TeacherInfo,
                                 chunk_rows_for, strings_digest)
from armada.cache_schema.layout import SplitLayout
from armada.cache_schema.shards import read_features, read_marker
from armada.cache_schema.sources import DirectorySource

SHARD_ROWS = 2048
BATCH = 32
BATCHES = 100


def fsync_tree(path: Path) -> None:
    for file in [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]:
        fd = os.open(file, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def sorted_take(read):
    """Random rows through a reader that wants increasing indices (h5py, zarr), in the asked order."""
    def take(idx: np.ndarray) -> np.ndarray:
        order = np.argsort(idx)
        rows = read(idx[order])
        out = np.empty(rows.shape, dtype=np.float32)
        out[order] = rows
        return out
    return take


class Armada:
    def __init__(self, folder: Path, x: np.ndarray, ids: list[str], hashes: list[str]):
        self.path, self.x, self.ids, self.hashes = folder / "cache.zarr", x, ids, hashes
        dim = x.shape[1]
        self.manifest = Manifest(
            TeacherInfo("bench", "random", dim, {"seed": 0}),
            Extraction("float16", SHARD_ROWS, chunk_rows_for(SHARD_ROWS, dim, "float16")),
            DatasetInfo("bench", "bench/cache_io.py", {"train": SplitInfo(len(ids), "bench", strings_digest(ids))}),
        )

    def write(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        writer = CacheWriter.create(self.path, self.manifest)
        for s in writer.shards("train"):
            writer.write_shard("train", s.index, self.x[s.start:s.stop], self.ids[s.start:s.stop], self.hashes[s.start:s.stop])

    def load(self, budget: int = 2**40):
        with CacheReader(self.path, memory_budget=budget) as reader:
            return reader.load("train", self.ids, self.hashes)

    def features_only(self) -> np.ndarray:
        source = DirectorySource(self.path)
        layout = SplitLayout.of(self.manifest, "train")
        out = np.empty((layout.rows, layout.dim), dtype=layout.dtype)
        for shard in layout.shards:
            marker = read_marker(source, layout, shard, self.manifest.config_hash)
            read_features(source, layout, shard, marker, out[shard.start:shard.stop])
        return out


class ZarrApi:
    """zarr's own reading of the armada store (written by Armada.write)."""

    def __init__(self, armada: Armada):
        self.path, self.ids, self.hashes = armada.path, armada.ids, armada.hashes

    def load(self) -> np.ndarray:
        group = zarr.open_group(self.path, mode="r")
        x = group["train/features"][:]
        if group["train/example_id"][:].tolist() != self.ids or group["train/text_sha256"][:].tolist() != self.hashes:
            raise RuntimeError("zarr ids differ")
        return x

    def features_only(self) -> np.ndarray:
        return zarr.open_array(self.path / "train/features", mode="r")[:]

    def take(self):
        array = zarr.open_array(self.path / "train/features", mode="r")
        return sorted_take(lambda idx: array.get_orthogonal_selection((idx, slice(None))))


class H5:
    def __init__(self, folder: Path, x: np.ndarray, ids: list[str], hashes: list[str]):
        self.path, self.x, self.ids, self.hashes = folder / "cache.h5", x, ids, hashes

    def write(self) -> None:
        with h5py.File(self.path, "w") as f:
            f.create_dataset("features", data=self.x)                      # contiguous
            f.create_dataset("example_id", data=self.ids, dtype=h5py.string_dtype())
            f.create_dataset("text_sha256", data=self.hashes, dtype=h5py.string_dtype())
        fsync_tree(self.path)

    def load(self) -> np.ndarray:
        with h5py.File(self.path, "r") as f:
            x = f["features"][...]
            if f["example_id"].asstr()[...].tolist() != self.ids or f["text_sha256"].asstr()[...].tolist() != self.hashes:
                raise RuntimeError("h5py ids differ")
        return x

    def features_only(self) -> np.ndarray:
        with h5py.File(self.path, "r") as f:
            return f["features"][...]


class Memmap:
    def __init__(self, folder: Path, x: np.ndarray, ids: list[str], hashes: list[str]):
        self.folder, self.x, self.ids, self.hashes = folder / "memmap", x, ids, hashes

    def write(self) -> None:
        self.folder.mkdir(exist_ok=True)
        m = np.lib.format.open_memmap(self.folder / "features.npy", mode="w+", dtype=self.x.dtype, shape=self.x.shape)
        m[:] = self.x
        m.flush()
        del m
        np.save(self.folder / "example_id.npy", np.array(self.ids))
        np.save(self.folder / "text_sha256.npy", np.array(self.hashes))
        fsync_tree(self.folder)

    def open(self) -> np.ndarray:
        return np.load(self.folder / "features.npy", mmap_mode="r")

    def load(self) -> np.ndarray:
        x = np.array(self.open())
        if (np.load(self.folder / "example_id.npy").tolist() != self.ids
                or np.load(self.folder / "text_sha256.npy").tolist() != self.hashes):
            raise RuntimeError("memmap ids differ")
        return x

    def features_only(self) -> np.ndarray:
        return np.array(self.open())


def batch_latency(take, batches: list[np.ndarray]) -> float:
    times = []
    for idx in batches:
        start = time.perf_counter()
        take(idx)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


COLUMNS = ("armada", "zarr", "h5py", "memmap")
WRITE, LOAD, FEATURES, RANDOM, ON_DEMAND = ("write MB/s", "full-split load MB/s", "  features only MB/s",
                                            "random 32-row batch ms", "  armada on demand ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n, dim = args.rows, 1024
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, dim), dtype=np.float32).astype(np.float16)
    ids = [f"{i}-{hashlib.sha256(str(i).encode()).hexdigest()[:10]}" for i in range(n)]
    hashes = [hashlib.sha256(f"teacher text {i}".encode()).hexdigest() for i in range(n)]
    batches = [rng.choice(n, BATCH, replace=False) for _ in range(BATCHES)]
    expected = x[batches[0]].astype(np.float32)
    mb = x.nbytes / 1e6

    folder = Path(tempfile.mkdtemp(prefix="armada-cache-bench-", dir="/tmp"))
    results: dict[str, dict[str, list[float]]] = {}
    try:
        armada, h5, memmap = Armada(folder, x, ids, hashes), H5(folder, x, ids, hashes), Memmap(folder, x, ids, hashes)
        readers = {"armada": armada, "zarr": ZarrApi(armada), "h5py": h5, "memmap": memmap}
        for round_ in range(args.rounds + 1):           # round 0 warms up and is not recorded
            def record(row: str, column: str, value: float) -> None:
                if round_ > 0:
                    results.setdefault(row, {}).setdefault(column, []).append(value)

            for name, store in (("armada", armada), ("h5py", h5), ("memmap", memmap)):
                record(WRITE, name, mb / timed(store.write))
            # Writing fills the page cache; the next large allocation then faults in memory the VM
            # has not backed yet (~1 s per 200 MB here, ~0.07 s once backed). Pay that here, not
            # inside whichever load happens to come first.
            np.ones(2 * x.nbytes, dtype=np.uint8)
            for name, store in readers.items():
                record(LOAD, name, mb / timed(store.load))
                record(FEATURES, name, mb / timed(store.features_only))

            in_memory, on_demand = armada.load(), armada.load(budget=0)
            mapped = memmap.open()
            with h5py.File(h5.path, "r") as f:
                takes = {"armada": in_memory.__getitem__, "zarr": readers["zarr"].take(),
                         "h5py": sorted_take(lambda idx: f["features"][idx]),
                         "memmap": lambda idx: mapped[idx].astype(np.float32)}
                for name, take in takes.items():
                    assert np.array_equal(take(batches[0]), expected), name
                    record(RANDOM, name, 1e3 * batch_latency(take, batches))
                assert not on_demand.in_memory and np.array_equal(on_demand[batches[0]], expected)
                record(ON_DEMAND, "armada", 1e3 * batch_latency(on_demand.__getitem__, batches))
            del mapped
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    medians = {row: {k: statistics.median(v) for k, v in cols.items()} for row, cols in results.items()}
    print(f"cache I/O: {n:,} × {dim} float16 rows ({mb:.0f} MB of features), median of {args.rounds} rounds, "
          "warm page cache")
    print("h5py: contiguous features dataset, variable-length string ids/hashes; zarr: zarr's API on the armada store\n")
    header = f"{'':30}" + "".join(f"{c:>10}" for c in COLUMNS) + f"{'armada/h5py':>13}"
    print(header)
    print("-" * len(header))
    for row, cols in medians.items():
        h5py_value = cols.get("h5py", medians[RANDOM]["h5py"])
        cells = "".join(f"{cols[c]:>10.2f}" if c in cols else f"{'—':>10}" for c in COLUMNS)
        print(f"{row:30}{cells}{cols['armada'] / h5py_value:>12.2f}×")
    load = medians[LOAD]["armada"] / medians[LOAD]["h5py"]
    print()
    print(f"target: full load ≥ 0.5× h5py's speed: {load:.2f}× — {'met' if load >= 0.5 else 'MISSED'}")
    for label, row in (("in memory", RANDOM), ("on demand", ON_DEMAND)):
        ratio = medians[row]["armada"] / medians[RANDOM]["h5py"]
        print(f"target: random batch ≤ 2× h5py's latency ({label}): {ratio:.2f}× — {'met' if ratio <= 2 else 'MISSED'}")


if __name__ == "__main__":
    main()
