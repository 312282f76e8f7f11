"""Writing a cache: pre-allocated arrays, one shard at a time, each marked done after its data."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Sequence

import numpy as np

from armada.cache_schema.encoding import crc32c, is_sha256_hex, nonfinite_rows, strings_payload
from armada.cache_schema.layout import Marker, Shard, SplitLayout, create_arrays
from armada.cache_schema.manifest import Manifest, manifest_diff
from armada.cache_schema.reader import read_manifest
from armada.cache_schema.shards import ShardFault, read_features, read_marker, read_strings
from armada.cache_schema.sources import DirectorySource
from armada.errors import ArmadaError
from armada.files import partial_path, write_atomically



class ShardLookup:
    """What a cache writer knows of its shards, a folder's (CacheWriter) or a bucket's (BucketWriter): from its
    `manifest`, its `path` and the `_source` its markers are read from."""

    def _layout(self, split: str) -> SplitLayout:
        if split not in self.manifest.dataset.splits:
            raise ArmadaError(f"the cache at {self.path} has no split {split!r}; it has {list(self.manifest.dataset.splits)}")
        return SplitLayout.of(self.manifest, split)

    def _shard(self, layout: SplitLayout, index: int) -> Shard:
        shards = layout.shards
        if not 0 <= index < len(shards):
            raise ArmadaError(f"{layout.split} has shards 0–{len(shards) - 1}, not {index}")
        return shards[index]

    def shards(self, split: str) -> list[Shard]:
        return self._layout(split).shards

    def is_done(self, split: str, shard_index: int) -> bool:
        layout = self._layout(split)
        try:
            read_marker(self._source, layout, self._shard(layout, shard_index), self.manifest.config_hash)
            return True
        except ShardFault:
            return False

    def pending(self, split: str) -> list[Shard]:
        return [s for s in self.shards(split) if not self.is_done(split, s.index)]

    def read_rows(self, split: str, rows: np.ndarray) -> np.ndarray:
        """float32 [len(rows), dim]: rows (split row numbers) of shards that are already done."""
        layout = self._layout(split)
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= layout.rows):
            raise ArmadaError(f"the cache at {self.path}: {split} has rows 0–{layout.rows - 1}; "
                              f"asked for {rows.min()}–{rows.max()}")
        out = np.empty((rows.size, layout.dim), dtype=np.float32)
        shards = layout.shards
        for index in np.unique(rows // layout.shard_rows):
            shard = shards[index]
            try:
                marker = read_marker(self._source, layout, shard, self.manifest.config_hash)
                data = np.empty((shard.rows, layout.dim), dtype=layout.dtype)
                read_features(self._source, layout, shard, marker, data)
            except ShardFault as e:
                raise ArmadaError(f"cache {self.path}: cannot read back {e}") from None
            wanted = np.flatnonzero(rows // layout.shard_rows == index)
            out[wanted] = data[rows[wanted] - shard.start]
        return out


class CacheWriter(ShardLookup):
    """One process's handle on a cache being written. Processes share a cache by writing disjoint shards.

    Example:
        writer = CacheWriter.create("cache/cola--sd14.zarr", manifest)
        for shard in writer.pending("train"):
            writer.write_shard("train", shard.index, vectors, ids[shard.start:shard.stop], hashes[shard.start:shard.stop])
    """

    def __init__(self, path: Path, manifest: Manifest):
        self.path, self.manifest = path, manifest
        self._source = DirectorySource(path)
        self._arrays: dict[str, dict] = {}

    @classmethod
    def create(cls, path: str | os.PathLike, manifest: Manifest, overwrite: bool = False) -> "CacheWriter":
        """A new cache at `path`, or the one already there when its settings match (resume).

        Safe when several processes call it at once on the same new path: the cache is built in a
        temporary folder beside it and renamed into place; whoever loses the rename opens the
        winner's. `overwrite` replaces whatever cache is there: call it from one process only.
        """
        path = Path(path)
        if overwrite and _occupied(path):
            _remove_cache(path)
        while True:
            if _occupied(path):
                return cls._open_existing(path, manifest)
            path.parent.mkdir(parents=True, exist_ok=True)
            building = path.parent / f".{path.name}.creating-{uuid.uuid4().hex}"
            try:
                _build(building, manifest)
                os.rename(building, path)
                return cls(path, manifest)
            except OSError as e:
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise ArmadaError(f"cannot create the cache at {path}: {e}") from None
            finally:
                shutil.rmtree(building, ignore_errors=True)
            # Another process created it first: loop round and open theirs.

    @classmethod
    def _open_existing(cls, path: Path, manifest: Manifest) -> "CacheWriter":
        if not path.is_dir():
            raise ArmadaError(f"{path} exists and is a file, not a cache directory; choose another output path")
        existing = read_manifest(DirectorySource(path), str(path))
        if existing.config_hash != manifest.config_hash:
            lines = "\n  ".join(manifest_diff(existing, manifest))
            raise ArmadaError(f"the cache at {path} was made with other settings (existing → requested):\n  {lines}\n"
                              "use --overwrite to replace it, or choose another output path")
        return cls(path, existing)

    def write_shard(self, split: str, shard_index: int, features: np.ndarray,
                    example_ids: Sequence[str], text_hashes: Sequence[str]) -> bool:
        """Write one whole shard (rows shard.start..shard.stop), then its marker; True (this process owns the
        shard: BucketWriter, where claims decide, may return False).

        Whatever an earlier, interrupted writer left of this shard is removed first. Rows that are
        not finite are refused before anything is written: such a shard is never marked done.
        """
        layout = self._layout(split)
        shard = self._shard(layout, shard_index)
        data, ids, hashes = checked_shard(layout, shard, features, example_ids, text_hashes)

        marker_path = self.path / layout.marker_key(shard)
        # The marker goes first: it must never vouch for data that is being replaced.
        marker_path.unlink(missing_ok=True)
        self._remove_leftovers(layout, shard)
        arrays = self._open_arrays(split)
        import zarr

        # One batch for all of a shard's inner chunks: ~1.5× faster than zarr's default of one at a time.
        with zarr.config.set({"codec_pipeline.batch_size": layout.shard_rows // layout.chunk_rows}):
            arrays["features"][shard.start:shard.stop] = data
        arrays["example_id"][shard.start:shard.stop] = np.array(ids, dtype=object)
        arrays["text_sha256"][shard.start:shard.stop] = np.array(hashes, dtype=object)
        for key in layout.shard_keys(shard):
            _fsync(self.path / key)
        marker = marker_for(layout, shard, data, ids, hashes, self.manifest.config_hash)
        check_written(self._source, str(self.path), layout, shard, marker, data)
        marker_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(marker_path, marker.to_json(), sync=True)
        return True

    def _remove_leftovers(self, layout: SplitLayout, shard: Shard) -> None:
        for key in layout.shard_keys(shard):
            path = self.path / key
            path.unlink(missing_ok=True)
            for partial in path.parent.glob(f"{path.name}.*.partial"):   # zarr's temporary files
                partial.unlink(missing_ok=True)
        partial_path(self.path / layout.marker_key(shard)).unlink(missing_ok=True)

    def _open_arrays(self, split: str) -> dict:
        if split not in self._arrays:
            import zarr
            from zarr.storage import LocalStore

            store = LocalStore(self.path)
            self._arrays[split] = {name: zarr.open_array(store=store, path=f"{split}/{name}", mode="r+")
                                   for name in ("features", "example_id", "text_sha256")}
        return self._arrays[split]

    def close(self) -> None:
        """Nothing to release: the arrays hold no open files."""


def checked_shard(layout: SplitLayout, shard: Shard, features: np.ndarray, example_ids: Sequence[str],
                  text_hashes: Sequence[str]) -> tuple[np.ndarray, list[str], list[str]]:
    """A shard's rows as they will be stored (features in the stored dtype, ids, hashes), or the error that
    refuses them before anything is written."""
    ids = _check_strings(layout, shard, example_ids, "example ids")
    hashes = _check_strings(layout, shard, text_hashes, "teacher-text hashes")
    bad_hashes = [h for h in hashes if not is_sha256_hex(h)]
    if bad_hashes:
        raise ArmadaError(f"{layout.split} {shard}: {bad_hashes[0]!r} is not a teacher-text hash "
                          "(armada.tasks.sha256_text gives 64 lowercase hex digits)")
    if len(set(ids)) != len(ids):
        raise ArmadaError(f"{layout.split} {shard}: example ids repeat within the shard; every row needs its own id")
    return _check_features(layout, shard, features, ids), ids, hashes


def marker_for(layout: SplitLayout, shard: Shard, data: np.ndarray, ids: list[str], hashes: list[str],
               config_hash: str) -> Marker:
    return Marker(shard.index, shard.start, shard.stop, shard.rows, features_crc32c=crc32c(data),
                  example_ids_sha256=hashlib.sha256(strings_payload(ids)).hexdigest(),
                  text_sha256_sha256=hashlib.sha256(strings_payload(hashes)).hexdigest(),
                  nonfinite_rows=0, config_hash=config_hash)


def check_written(source, location: str, layout: SplitLayout, shard: Shard, marker: Marker, data: np.ndarray) -> None:
    """Read the shard back the way the reader will: only a shard it accepts gets a marker."""
    back = np.empty_like(data)
    try:
        read_features(source, layout, shard, marker, back, check_chunks=True)
        read_strings(source, layout, "example_id", shard, marker.example_ids_sha256)
        read_strings(source, layout, "text_sha256", shard, marker.text_sha256_sha256)
    except ShardFault as e:
        raise ArmadaError(f"cache {location}: {e} right after writing it; the store or the zarr version "
                          "does not keep what armada expects") from None
    if back.tobytes() != data.tobytes():
        raise ArmadaError(f"cache {location}: {layout.split} {shard} reads back different values than were written")


def _check_strings(layout: SplitLayout, shard: Shard, values: Sequence[str], what: str) -> list[str]:
    values = list(values)
    if len(values) != shard.rows:
        raise ArmadaError(f"{layout.split} {shard}: got {len(values)} {what} for {shard.rows} rows")
    for value in values:
        if not isinstance(value, str) or not value:
            raise ArmadaError(f"{layout.split} {shard}: {what} must be non-empty strings, got {value!r}")
    try:
        strings_payload(values)
    except UnicodeEncodeError:
        bad = next(v for v in values if not _utf8(v))
        raise ArmadaError(f"{layout.split} {shard}: {what} must be valid Unicode text; {bad!r} is not") from None
    return values


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _check_features(layout: SplitLayout, shard: Shard, features: np.ndarray, ids: list[str]) -> np.ndarray:
    where = f"{layout.split} {shard}"
    if not isinstance(features, np.ndarray) or features.shape != (shard.rows, layout.dim):
        shape = getattr(features, "shape", type(features).__name__)
        raise ArmadaError(f"{where}: features must be an array of shape ({shard.rows}, {layout.dim}), got {shape}")
    if not np.issubdtype(features.dtype, np.floating):
        raise ArmadaError(f"{where}: features must be floating point, got {features.dtype}")
    with np.errstate(over="ignore"):        # overflow to inf is reported below, by example id
        data = np.ascontiguousarray(features, dtype=layout.dtype)
    bad = nonfinite_rows(data)
    if bad.size:
        overflow = bool(nonfinite_rows(features).size < bad.size)
        named = ", ".join(ids[i] for i in bad[:5]) + (", …" if bad.size > 5 else "")
        raise ArmadaError(f"{where}: {bad.size} rows are NaN or infinite"
                          + (f" once stored as {layout.dtype.name} (values beyond its range)" if overflow else "")
                          + f": example ids {named}; nothing was written for this shard")
    return data


def _occupied(path: Path) -> bool:
    """Something is at `path` (an empty directory counts as free)."""
    return path.exists() and not (path.is_dir() and not any(path.iterdir()))


def _build(folder: Path, manifest: Manifest) -> None:
    import zarr
    from zarr.storage import LocalStore

    root = zarr.open_group(store=LocalStore(folder), mode="w-", zarr_format=3, attributes=manifest.to_dict())
    for split in manifest.dataset.splits:
        create_arrays(root, SplitLayout.of(manifest, split))


def _remove_cache(path: Path) -> None:
    """Delete the cache at `path`, but nothing that does not look like one (a mistyped --out)."""
    try:
        attributes = json.loads((path / "zarr.json").read_bytes()).get("attributes")
        is_cache = isinstance(attributes, dict) and "config_hash" in attributes
    except (OSError, ValueError, AttributeError):
        is_cache = False
    if not is_cache:
        raise ArmadaError(f"refusing to overwrite {path}: it is not an armada cache; remove it yourself or choose another path")
    doomed = path.parent / f".{path.name}.removing-{uuid.uuid4().hex}"
    os.rename(path, doomed)              # atomic: no reader ever sees half a cache
    shutil.rmtree(doomed)


def _fsync(path: Path) -> None:
    # After a power cut the marker must not outlive its data: data reaches the disk first.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

