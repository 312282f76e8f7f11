"""Reading one shard back with every check: the code the reader, the writer and `verify` share."""

from __future__ import annotations

import hashlib

import numpy as np

from armada.cache_schema.encoding import FormatError, crc32c, decode_strings, nonfinite_rows, split_strings_chunk
from armada.cache_schema.layout import Marker, Shard, SplitLayout
from armada.cache_schema.sources import Source


class ShardFault(Exception):
    """Why a shard cannot be used. kind: unfinished, missing, corrupted or nonfinite."""

    def __init__(self, layout: SplitLayout, shard: Shard, kind: str, detail: str, rows: tuple[int, ...] = ()):
        super().__init__(f"{layout.split} {shard}: {detail}")
        self.split, self.shard, self.kind, self.detail = layout.split, shard, kind, detail
        self.rows = rows                    # split row numbers, for nonfinite faults


def read_marker(source: Source, layout: SplitLayout, shard: Shard, config_hash: str) -> Marker:
    blob = source.read(layout.marker_key(shard))
    if blob is None:
        raise ShardFault(layout, shard, "unfinished", "not written yet (no marker)")
    try:
        return Marker.parse(blob, layout, shard, config_hash)
    except ValueError as e:
        raise ShardFault(layout, shard, "unfinished", f"not finished: {e}") from None


def read_strings(source: Source, layout: SplitLayout, array: str, shard: Shard, digest: str) -> memoryview:
    """The shard's stored example ids or text hashes as their vlen payload, checked against `digest`."""
    what = "example ids" if array == "example_id" else "teacher-text hashes"
    blob = source.read(layout.strings_key(array, shard))
    if blob is None:
        raise ShardFault(layout, shard, "missing", f"its {what} are missing (chunk deleted)")
    try:
        payload = split_strings_chunk(blob, layout.shard_rows, shard.rows)
    except FormatError as e:
        raise ShardFault(layout, shard, "corrupted", f"its {what} are damaged: {e}") from None
    if hashlib.sha256(payload).hexdigest() != digest:
        raise ShardFault(layout, shard, "corrupted", f"its {what} differ from those recorded in its marker (reordered or rewritten)")
    return payload


def read_features(source: Source, layout: SplitLayout, shard: Shard, marker: Marker, out: np.ndarray,
                  check_chunks: bool = False) -> None:
    """Read a done shard's features into `out` ([shard.rows, dim], stored dtype), or raise ShardFault.

    The marker's crc32c over the values proves them to be what was marked done (hence finite);
    only a mismatch needs the slower look at what broke. `check_chunks` also checks zarr's own
    per-chunk checksums, which no value depends on (for `verify`).
    """
    readout = layout.format.readout(out)
    n = source.read_scattered(layout.features_key(shard), readout.views)
    if n is None:
        raise ShardFault(layout, shard, "missing", "its features are missing (shard file deleted)")
    if n != readout.file_size:
        size = f"more than {readout.file_size}" if n > readout.file_size else str(n)
        raise ShardFault(layout, shard, "corrupted",
                         f"its features file has {size} bytes, expected {readout.file_size} (truncated or rewritten)")
    try:
        readout.check_index()
    except FormatError as e:
        raise ShardFault(layout, shard, "corrupted", f"its features are damaged: {e}") from None
    matches = crc32c(readout.values) == marker.features_crc32c
    if not matches or check_chunks:
        failed = readout.chunk_crc_failures()
        if failed:
            step = layout.chunk_rows
            spans = ", ".join(f"{shard.start + i * step}–{min(shard.start + (i + 1) * step, shard.stop) - 1}" for i in failed[:3])
            raise ShardFault(layout, shard, "corrupted", f"rows {spans}{', …' if len(failed) > 3 else ''} fail their "
                             "crc32c (flipped bytes)")
    if not matches:
        bad = nonfinite_rows(out)
        if bad.size:
            raise ShardFault(layout, shard, "nonfinite", f"{bad.size} rows are NaN or infinite",
                             tuple(int(r) + shard.start for r in bad))
        raise ShardFault(layout, shard, "corrupted", "its features differ from the checksum in its marker (rewritten after it was done)")


def name_rows(ids_payload: memoryview | None, shard: Shard, rows: tuple[int, ...]) -> tuple[str, ...]:
    """The example ids of split rows in `shard` (from its stored ids), or "row N" where those are unreadable."""
    try:
        ids = decode_strings(ids_payload, shard.rows) if ids_payload is not None else None
    except FormatError:
        ids = None
    return tuple(ids[r - shard.start] if ids else f"row {r}" for r in rows)


class ChunkReader:
    """Inner chunks of done shards read one at a time, for random rows of a split too big for memory.

    Each shard's index is checked once; each chunk against its own crc32c; each row returned is
    checked finite. The whole-shard checksum needs the whole shard, so it is `verify`'s job here.
    """

    def __init__(self, source: Source, layout: SplitLayout):
        self.source, self.layout, self.fmt = source, layout, layout.format
        self._checked: set[int] = set()

    def chunk(self, shard: Shard, chunk: int) -> np.ndarray:
        layout, fmt = self.layout, self.fmt
        key = layout.features_key(shard)
        chunks = layout.chunks_in(shard)
        try:
            if shard.index not in self._checked:
                index = self.source.read_range(key, fmt.file_size(chunks) - fmt.index_bytes, fmt.index_bytes)
                if index is None:
                    raise ShardFault(layout, shard, "missing", "its features are missing (shard file deleted)")
                fmt.check_index(index, chunks)
                self._checked.add(shard.index)
            blob = self.source.read_range(key, chunk * fmt.stride, fmt.stride)
            if blob is None:
                raise ShardFault(layout, shard, "missing", "its features are missing (shard file deleted)")
            return fmt.decode_chunk(blob)
        except FormatError as e:
            raise ShardFault(layout, shard, "corrupted", f"its features are damaged: {e}") from None
