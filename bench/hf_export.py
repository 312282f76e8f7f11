"""`armada cache export --format hf`: seconds and peak RSS for a cache of N rows and one of 10·N, side by side.

Memory must stay flat in the cache's size: the export holds one row group at a time (21,845 rows of 384 values:
hf_layout.GROUP_VALUES), so once N passes a row group the larger cache should cost about the same memory (target:
ratio ≤ 1.2). Each cache
has the default pipeline's shape (384 float16 values a row, as piper-whisper writes, shards of 2,048 rows) with
synthetic values, and is exported with --no-labels (its rows belong to no task); each export runs in its own
process, whose peak RSS the kernel reports (wait4). Seconds are the process's wall-clock, start-up included.

Run: .venv/bin/python bench/hf_export.py [--rows 60000] [--dim 384] [--dtype float16] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ARMADA = str(Path(sys.executable).parent / "armada")


def write_cache(path: Path, rows: int, dim: int, dtype: str) -> None:
    from armada.cache_schema import (CacheWriter, DatasetInfo, Extraction, Manifest, SplitInfo, TeacherInfo,
                                     chunk_rows_for, strings_digest)
    from armada.tasks import sha256_text

    shard_rows = 2048
    ids = [f"row-{i}" for i in range(rows)]
    split = SplitInfo(rows, "0" * 64, strings_digest(ids))
    manifest = Manifest(TeacherInfo("synthetic", "bench", dim, {"values": "standard normal, seed 0"}),
                        Extraction(dtype, shard_rows, chunk_rows_for(shard_rows, dim, dtype)),
                        DatasetInfo("bench/synthetic", "bench/hf_export.py", {"train": split}))
    writer = CacheWriter.create(path, manifest)
    rng = np.random.default_rng(0)
    for shard in writer.shards("train"):
        values = rng.standard_normal((shard.rows, dim), dtype=np.float32)
        writer.write_shard("train", shard.index, values, ids[shard.start:shard.stop],
                           [sha256_text(i) for i in ids[shard.start:shard.stop]])


def export(cache: Path, out: Path) -> dict:
    """`armada cache export --format hf` in its own process: wall seconds and peak RSS."""
    start = time.perf_counter()
    process = subprocess.Popen([ARMADA, "cache", "export", str(cache), "--format", "hf", str(out), "--no-labels"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"armada cache export failed:\n{stderr}")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "export_mb": size / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60_000, help="N: caches of N and 10·N rows")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--dtype", default="float16", choices=("float16", "float32"))
    parser.add_argument("--repeat", type=int, default=2, help="exports of each cache (the best time is shown)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-hf-export-") as scratch:
        results = {}
        for rows in (args.rows, 10 * args.rows):
            cache = Path(scratch) / f"cache-{rows}.zarr"
            write_cache(cache, rows, args.dim, args.dtype)
            runs = [export(cache, Path(scratch) / f"export-{rows}-{i}") for i in range(args.repeat)]
            results[rows] = {"seconds": min(r["seconds"] for r in runs),
                             "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "export_mb": runs[0]["export_mb"],
                             "cache_mb": sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) / 2**20}
            for i in range(args.repeat):
                for path in sorted((Path(scratch) / f"export-{rows}-{i}").rglob("*"), reverse=True):
                    path.unlink() if path.is_file() else path.rmdir()

    print(f"armada cache export --format hf, {args.dim} × {args.dtype} a row, best of {args.repeat}:")
    print(f"{'rows':>10} {'cache MB':>9} {'export MB':>10} {'seconds':>8} {'rows/s':>9} {'peak RSS MB':>12}")
    for rows, r in results.items():
        print(f"{rows:>10,} {r['cache_mb']:>9.0f} {r['export_mb']:>10.0f} {r['seconds']:>8.1f} "
              f"{rows / r['seconds']:>9,.0f} {r['peak_rss_mb']:>12.0f}")
    small, large = results[args.rows], results[10 * args.rows]
    print(f"peak RSS ratio at 10·N: {large['peak_rss_mb'] / small['peak_rss_mb']:.2f} (target ≤ 1.2)")


if __name__ == "__main__":
    main()
