"""Which S3 client the cache uses, by measurement: write and read of our shard layout against loopback SeaweedFS.

    .venv/bin/pip install s3fs          # only for this comparison: the cache itself uses obstore
    .venv/bin/python bench/s3_clients.py [--shards 12]

Shards as the cache stores them (float16 [2048, 1024], inner chunks of 32 rows, crc32c: 4 MiB objects),
written and read one shard at a time, as one extraction process writes and a reader loads them:
- obstore, our code: obstore.put/get of the encoded shard objects (what cache_schema/bucket.py does);
- s3fs, our code: S3FileSystem.pipe_file/cat_file of the same objects;
- zarr ObjectStore: zarr writing and reading the sharded array through obstore;
- zarr FsspecStore: the same through s3fs.
The chosen client must also refuse a second conditional PUT (If-None-Match: *): checked at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import s3_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=12)
    args = parser.parse_args()
    import obstore
    import s3fs
    import zarr
    from obstore.store import S3Store
    from zarr.codecs import BytesCodec, Crc32cCodec
    from zarr.storage import FsspecStore, MemoryStore, ObjectStore

    rows, dim = 2048, 1024
    data = np.random.default_rng(0).standard_normal((args.shards * rows, dim)).astype(np.float16)
    mib = data.nbytes / 2**20

    def array(store, mode):
        if mode == "r":
            return zarr.open_array(store=store, mode="r")
        return zarr.create_array(store=store, shape=data.shape, dtype="float16", shards=(rows, dim), chunks=(32, dim),
                                 serializer=BytesCodec(endian="little"), compressors=[Crc32cCodec()], filters=None,
                                 fill_value=np.nan)

    encoded: dict = {}
    array(MemoryStore(encoded), "w")[:] = data
    blobs = {key: value.to_bytes() for key, value in encoded.items() if key.startswith("c/")}

    with tempfile.TemporaryDirectory(prefix="armada-bench-clients-") as tmp:
        server = s3_server.start(Path(tmp))
        os.environ.update({**server.env(), "AWS_ALLOW_HTTP": "true"})
        try:
            store = S3Store(server.bucket)
            fs = s3fs.S3FileSystem()

            def zarr_write(make):
                a = array(make(), "w")
                with zarr.config.set({"codec_pipeline.batch_size": rows // 32}):
                    for i in range(args.shards):
                        a[i * rows:(i + 1) * rows] = data[i * rows:(i + 1) * rows]

            candidates = {
                "obstore, our code (put/get)": (
                    lambda: [obstore.put(store, f"ob/{k}", b) for k, b in blobs.items()],
                    lambda: [bytes(obstore.get(store, f"ob/{k}").bytes()) for k in blobs]),
                "s3fs, our code (pipe/cat)": (
                    lambda: [fs.pipe_file(f"{server.bucket}/fs/{k}", b) for k, b in blobs.items()],
                    lambda: [fs.cat_file(f"{server.bucket}/fs/{k}") for k in blobs]),
                "zarr ObjectStore (obstore)": (
                    lambda: zarr_write(lambda: ObjectStore(S3Store(server.bucket, prefix="zob"))),
                    lambda: array(ObjectStore(S3Store(server.bucket, prefix="zob"), read_only=True), "r")[:]),
                "zarr FsspecStore (s3fs)": (
                    lambda: zarr_write(lambda: FsspecStore.from_url(f"s3://{server.bucket}/zfs",
                                                                    storage_options={"asynchronous": True})),
                    lambda: array(FsspecStore.from_url(f"s3://{server.bucket}/zfs", read_only=True,
                                                       storage_options={"asynchronous": True}), "r")[:]),
            }
            print(f"{args.shards} shards of {len(next(iter(blobs.values())))} bytes ({mib:.0f} MiB)")
            print("| client                       | write MiB/s | read MiB/s |")
            print("|------------------------------|-------------|------------|")
            for name, (write, read) in candidates.items():
                start = time.perf_counter()
                write()
                wrote = time.perf_counter() - start
                start = time.perf_counter()
                read()
                print(f"| {name:28} | {mib / wrote:11.1f} | {mib / (time.perf_counter() - start):10.1f} |", flush=True)
            obstore.put(store, "claim", b"first", mode="create")
            try:
                obstore.put(store, "claim", b"second", mode="create")
                print("conditional PUT (If-None-Match: *): NOT enforced")
            except obstore.exceptions.AlreadyExistsError:
                print("conditional PUT (If-None-Match: *): a second create is refused (412)")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
