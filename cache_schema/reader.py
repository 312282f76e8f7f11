"""Reading a cache: features by example id, checked against the dataset, never a fill value."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from armada.cache_schema.bucket import Bucket, BucketSource, is_url
from armada.cache_schema.encoding import FormatError, decode_strings, nonfinite_rows, strings_payload
from armada.cache_schema.layout import ROOT_KEY, Marker, Shard, SplitLayout, check_metadata
from armada.cache_schema.manifest import Manifest
from armada.cache_schema.shards import ChunkReader, ShardFault, name_rows, read_features, read_marker, read_strings
from armada.cache_schema.sources import DirectorySource, HttpSource, Source, ZipSource
from armada.errors import ArmadaError

CHUNK_CACHE_BYTES = 8 * 2**20               # the LRU of inner chunks when a split is read on demand


def read_manifest(source: Source, where: str) -> Manifest:
    blob = source.read(ROOT_KEY)
    if blob is None:
        raise ArmadaError(f"{where} is not an armada cache: it has no zarr.json")
    try:
        meta = json.loads(blob)
    except ValueError:
        raise ArmadaError(f"{where}: zarr.json is not valid JSON (the cache is damaged)") from None
    if not isinstance(meta, dict) or meta.get("node_type") != "group" or meta.get("zarr_format") != 3:
        raise ArmadaError(f"{where} is not an armada cache: its zarr.json is not a Zarr v3 group")
    return Manifest.from_dict(meta.get("attributes"), where)


@dataclass(frozen=True)
class SplitStatus:
    split: str
    rows: int
    shards_total: int
    unfinished: tuple[Shard, ...]           # shards without a valid marker

    @property
    def shards_done(self) -> int:
        return self.shards_total - len(self.unfinished)

    @property
    def complete(self) -> bool:
        return not self.unfinished


class CacheReader:
    """A cache opened for reading: a directory, a packed file, or an http(s) URL of a served directory.

    Example:
        reader = CacheReader("cache/cola--sd14.zarr")
        feats = reader.load("train", split.ids, split.teacher_hashes)
        batch = feats[np.array([0, 5, 9])]          # float32 [3, dim]
    """

    def __init__(self, location, memory_budget: int = 2 * 2**30):
        self.location = str(location)
        self.memory_budget = memory_budget
        self.source = open_source(location)
        try:
            self.manifest = read_manifest(self.source, self.location)
            for split in self.manifest.dataset.splits:
                self._check_arrays(SplitLayout.of(self.manifest, split))
        except BaseException:
            self.source.close()
            raise

    def __enter__(self) -> "CacheReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close open files (Features read on demand open them again when they need them)."""
        self.source.close()

    @property
    def splits(self) -> list[str]:
        return list(self.manifest.dataset.splits)

    def size(self) -> int | None:
        return self.source.size()

    def layout(self, split: str) -> SplitLayout:
        if split not in self.manifest.dataset.splits:
            raise ArmadaError(f"the cache at {self.location} has no split {split!r}; it has {self.splits}")
        return SplitLayout.of(self.manifest, split)

    def _check_arrays(self, layout: SplitLayout) -> None:
        if self.source.read(f"{layout.split}/zarr.json") is None:
            raise ArmadaError(f"cache {self.location}: the group of split {layout.split!r} is missing (the cache is damaged)")
        for array in ("features", "example_id", "text_sha256"):
            key = f"{layout.split}/{array}/zarr.json"
            blob = self.source.read(key)
            try:
                why = "it is missing" if blob is None else check_metadata(array, json.loads(blob), layout)
            except ValueError:
                why = "it is not valid JSON"
            if why:
                raise ArmadaError(f"cache {self.location}: {key} does not match the manifest: {why}; "
                                  "the cache is damaged or was not written by armada")

    def markers(self, layout: SplitLayout) -> tuple[dict[int, Marker], list[ShardFault]]:
        """The valid markers of a split's shards, and why the other shards are not done."""
        done, unfinished = {}, []
        for shard in layout.shards:
            try:
                done[shard.index] = read_marker(self.source, layout, shard, self.manifest.config_hash)
            except ShardFault as fault:
                unfinished.append(fault)
        return done, unfinished

    def status(self, split: str) -> SplitStatus:
        layout = self.layout(split)
        _, unfinished = self.markers(layout)
        return SplitStatus(split, layout.rows, len(layout.shards), tuple(f.shard for f in unfinished))

    def read_shards(self, split: str, done_only: bool = False) -> Iterator[tuple[Shard, np.ndarray, list[str], list[str]]]:
        """Every shard of a finished split, checked: (shard, features, example ids, text hashes). With `done_only`
        the split may be unfinished, and its done shards are read."""
        layout = self.layout(split)
        done, unfinished = self.markers(layout)
        if unfinished and not done_only:
            raise ArmadaError(f"cache {self.location}: split {split} is unfinished ({len(unfinished)} of "
                              f"{len(layout.shards)} shards are not done); finish the extraction first")
        for shard in layout.shards:
            if shard.index not in done:
                continue
            marker, ids = done[shard.index], None
            try:
                ids = read_strings(self.source, layout, "example_id", shard, marker.example_ids_sha256)
                hashes = read_strings(self.source, layout, "text_sha256", shard, marker.text_sha256_sha256)
                values = np.empty((shard.rows, layout.dim), dtype=layout.dtype)
                read_features(self.source, layout, shard, marker, values)
                yield shard, values, decode_strings(ids, shard.rows), decode_strings(hashes, shard.rows)
            except FormatError as e:
                raise self._refusal(ShardFault(layout, shard, "corrupted", str(e))) from None
            except ShardFault as fault:
                raise self._refusal(fault, ids) from None

    def load(self, split: str, example_ids: Sequence[str], text_hashes: Sequence[str]) -> "Features":
        """Features for `example_ids`, in that order, after checking them against the cache.

        Refuses an unfinished split, a missing or damaged shard, non-finite rows, ids the cache
        does not have and ids whose teacher text changed. Under the memory budget the whole split
        is read (shard by shard) and checked now; above it, inner chunks are read and checked on
        demand (`armada cache verify` re-hashes whole shards).
        """
        layout = self.layout(split)
        ids, hashes = list(example_ids), list(text_hashes)
        if len(ids) != len(hashes):
            raise ArmadaError(f"load({split!r}): {len(ids)} example ids but {len(hashes)} teacher-text hashes")
        done, unfinished = self.markers(layout)
        if unfinished:
            listed = "; ".join(str(f.shard) for f in unfinished[:5]) + ("; …" if len(unfinished) > 5 else "")
            raise ArmadaError(f"cache {self.location}: split {split} is unfinished: {len(unfinished)} of "
                              f"{len(layout.shards)} shards are not done ({listed}); run the same extraction again to finish it")
        id_parts, hash_parts = [], []
        for shard in layout.shards:
            try:
                id_parts.append(read_strings(self.source, layout, "example_id", shard, done[shard.index].example_ids_sha256))
                hash_parts.append(read_strings(self.source, layout, "text_sha256", shard, done[shard.index].text_sha256_sha256))
            except ShardFault as fault:
                raise self._refusal(fault) from None
        stored_ids = b"".join(id_parts)
        if hashlib.sha256(stored_ids).hexdigest() != self.manifest.dataset.splits[split].ids_sha256:
            raise ArmadaError(f"cache {self.location}: the example ids of split {split} differ from its manifest "
                              "(the cache is damaged); run `armada cache verify` and re-extract")

        rows = self._rows_of(layout, ids, stored_ids, id_parts)
        self._check_texts(layout, ids, hashes, rows, hash_parts)
        nbytes = layout.rows * layout.dim * layout.dtype.itemsize
        if nbytes <= self.memory_budget:
            data = np.empty((layout.rows, layout.dim), dtype=layout.dtype)
            for shard in layout.shards:
                try:
                    read_features(self.source, layout, shard, done[shard.index], data[shard.start:shard.stop])
                except ShardFault as fault:
                    raise self._refusal(fault, id_parts[shard.index]) from None
            return Features(rows, layout.dim, _InMemory(data), ids)
        return Features(rows, layout.dim, _OnDemand(ChunkReader(self.source, layout), self.location, self._refusal), ids)

    def _rows_of(self, layout: SplitLayout, ids: list[str], stored: bytes, parts: list[memoryview]) -> np.ndarray:
        """The cache row of every requested id."""
        try:
            if strings_payload(ids) == stored:      # the usual case: the very ids, in the cache's order
                return np.arange(layout.rows, dtype=np.int64)
        except (UnicodeEncodeError, TypeError):
            pass
        return rows_of(self.location, self.manifest, layout.split, self._decode(layout, parts), ids)

    def _check_texts(self, layout: SplitLayout, ids: list[str], hashes: list[str], rows: np.ndarray,
                     parts: list[memoryview]) -> None:
        identity = len(rows) == layout.rows and np.array_equal(rows, np.arange(layout.rows))
        try:
            if identity and strings_payload(hashes) == b"".join(parts):
                return
        except (UnicodeEncodeError, TypeError):
            pass
        check_texts(self.location, ids, hashes, rows, self._decode(layout, parts))

    def _decode(self, layout: SplitLayout, parts: list[memoryview]) -> list[str]:
        values = []
        for shard, payload in zip(layout.shards, parts):
            try:
                values += decode_strings(payload, shard.rows)
            except FormatError as e:
                raise self._refusal(ShardFault(layout, shard, "corrupted", str(e))) from None
        return values

    def _refusal(self, fault: ShardFault, ids_payload: memoryview | None = None) -> ArmadaError:
        """The error a reader raises for a shard it cannot use (`ids_payload`: that shard's stored ids)."""
        if fault.kind == "nonfinite":
            named = ", ".join(name_rows(ids_payload, fault.shard, fault.rows[:5])) + (", …" if len(fault.rows) > 5 else "")
            return ArmadaError(f"cache {self.location}: {fault.split} {fault.shard}: {len(fault.rows)} rows are NaN or "
                               f"infinite (example ids {named}); the cache is damaged: re-extract with --overwrite")
        return ArmadaError(f"cache {self.location}: {fault}; run `armada cache verify {self.location}` for a full "
                           "report, then re-extract with --overwrite or copy the cache again")


def rows_of(location: str, manifest: Manifest, split: str, cached: list[str], ids: list[str]) -> np.ndarray:
    """The row of every requested id among a split's `cached` ids; refuses ids the cache does not have."""
    position = {example_id: row for row, example_id in enumerate(cached)}
    if len(position) != len(cached):
        raise ArmadaError(f"cache {location}: split {split} holds repeated example ids (the cache is damaged)")
    missing = [i for i in ids if i not in position]
    if missing:
        named = ", ".join(map(str, missing[:5])) + (", …" if len(missing) > 5 else "")
        raise ArmadaError(f"cache {location}: split {split} has no features for {len(missing)} of the "
                          f"{len(ids)} requested examples: {named}; it was extracted from other data "
                          f"({len(cached)} rows, limit {manifest.dataset.splits[split].limit}): "
                          "re-extract with the same data and --limit, or with --overwrite")
    return np.fromiter((position[i] for i in ids), dtype=np.int64, count=len(ids))


def check_texts(location: str, ids: list[str], hashes: list[str], rows: np.ndarray, cached: list[str]) -> None:
    """Refuse requested rows whose teacher-text hash is not the one the cache holds for them."""
    changed = [ids[j] for j, row in enumerate(rows.tolist()) if cached[row] != hashes[j]]
    if changed:
        named = ", ".join(changed[:5]) + (", …" if len(changed) > 5 else "")
        raise ArmadaError(f"teacher text changed for {len(changed)} examples: {named}; the cache at {location} "
                          "was extracted from other teacher texts (another template or edited data): "
                          "re-extract with --overwrite")


class _InMemory:
    def __init__(self, data: np.ndarray):
        self.data = data

    def take(self, rows: np.ndarray, id_of) -> np.ndarray:
        return self.data[rows].astype(np.float32)


class _OnDemand:
    """Rows read from their inner chunks, with a small LRU of chunks."""

    def __init__(self, chunks: ChunkReader, location: str, refusal):
        self.chunks, self.layout, self.location, self.refusal = chunks, chunks.layout, location, refusal
        self.capacity = max(1, CHUNK_CACHE_BYTES // chunks.fmt.chunk_bytes)
        self.cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()

    def take(self, rows: np.ndarray, id_of) -> np.ndarray:
        """id_of(j): the example id of the j-th requested row, for messages."""
        layout = self.layout
        out = np.empty((len(rows), layout.dim), dtype=np.float32)
        shards = layout.shards
        for j, row in enumerate(rows.tolist()):
            shard, within = divmod(row, layout.shard_rows)
            chunk, offset = divmod(within, layout.chunk_rows)
            key = (shard, chunk)
            data = self.cache.get(key)
            if data is None:
                try:
                    data = self.chunks.chunk(shards[shard], chunk)
                except ShardFault as fault:
                    raise self.refusal(fault) from None
                self.cache[key] = data
                if len(self.cache) > self.capacity:
                    self.cache.popitem(last=False)
            else:
                self.cache.move_to_end(key)
            out[j] = data[offset]
        bad = nonfinite_rows(out)
        if bad.size:
            named = ", ".join(id_of(j) for j in bad[:5].tolist())
            where = "; ".join(sorted({str(shards[rows[j] // layout.shard_rows]) for j in bad.tolist()}))
            raise ArmadaError(f"cache {self.location}: {layout.split} {where}: {bad.size} rows are NaN or infinite "
                              f"(example ids {named}); the cache is damaged: re-extract with --overwrite")
        return out


class Features:
    """A split's features aligned to the requested ids: feats[idx] -> float32 [len(idx), dim]."""

    def __init__(self, rows: np.ndarray, dim: int, table: _InMemory | _OnDemand, ids: list[str]):
        self._rows, self.dim, self._table, self._ids = rows, dim, table, ids

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def in_memory(self) -> bool:
        return isinstance(self._table, _InMemory)

    def __getitem__(self, idx) -> np.ndarray:
        idx = np.asarray(idx)
        if idx.ndim != 1 or not (np.issubdtype(idx.dtype, np.integer) or idx.size == 0):
            raise TypeError("index Features with a 1-d array of positions")
        positions = idx.astype(np.int64)
        return self._table.take(self._rows[positions], lambda j: self._ids[positions[j]])


def open_source(location: str | os.PathLike) -> Source:
    """The source a location names: an http(s) URL, an object-store URL (s3://, gs://, az://), a cache directory or a
    packed one."""
    text = str(location)
    if text.startswith(("http://", "https://")):
        return HttpSource(text)
    if is_url(text):
        return BucketSource(Bucket(text))
    path = Path(location)
    if path.is_dir():
        return DirectorySource(path)
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise ArmadaError(f"{path} is neither a cache directory nor a packed cache (a zip from `armada cache pack`)")
        try:
            return ZipSource(path)
        except zipfile.BadZipFile as e:
            raise ArmadaError(f"packed cache {path} is not a readable zip: {e}") from None
    raise ArmadaError(f"no cache at {path}: give a cache directory, a packed cache file, an http(s) URL or an s3:// URL")
