"""The bytes of the cache's chunks, read and checked without zarr.

Zarr writes the cache; the reader decodes these few fixed formats itself because zarr's generic
read path is far slower for this job (bench/cache_io.py, column "zarr"). Every format here is
the Zarr v3 spec's, for the exact codecs `layout.create_arrays` asks for:

- a features shard file (`sharding_indexed`, index at the end): the inner chunks in row order,
  each `chunk_rows × dim` little-endian values (the last one padded with the fill value) followed
  by their crc32c (4 bytes LE); then the index, one (offset, nbytes) uint64 LE pair per inner
  chunk ((2⁶⁴−1, 2⁶⁴−1) = chunk absent), followed by the index's crc32c.
- a strings chunk (`vlen-utf8` then `crc32c`): uint32 LE count, then per value a uint32 LE
  length and its UTF-8 bytes; then the crc32c of all that. The last chunk of a split is padded
  with "" (4 zero bytes each) up to `shard_rows` values.
"""

from __future__ import annotations

import hashlib
import re
from typing import Sequence

import google_crc32c
import numpy as np
from numcodecs.vlen import VLenUTF8

CRC_BYTES = 4
INDEX_ENTRY_BYTES = 16
_ABSENT = np.uint64(2**64 - 1)
_VLEN = VLenUTF8()
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class FormatError(Exception):
    """Bytes that are not what the layout says they must be (the caller names the shard)."""


def crc32c(data: bytes | memoryview | np.ndarray) -> int:
    # google_crc32c refuses memoryviews ("y#" parsing); a numpy view of the same bytes is accepted, uncopied.
    return google_crc32c.value(data if isinstance(data, bytes) else np.frombuffer(data, dtype=np.uint8))


def strings_payload(values: Sequence[str]) -> bytes:
    """The values as vlen-utf8 stores them, without the count header: (uint32 length, UTF-8)…"""
    return _VLEN.encode(np.asarray(values, dtype=object).reshape(-1))[4:]


def is_sha256_hex(value) -> bool:
    """Whether `value` is a sha256 digest as the cache writes them: 64 lowercase hex digits."""
    return isinstance(value, str) and _SHA256_HEX.fullmatch(value) is not None


def strings_digest(values: Sequence[str]) -> str:
    """sha256 of `strings_payload`: the hash of a list of ids or text hashes (unambiguous, any text)."""
    return hashlib.sha256(strings_payload(values)).hexdigest()


def split_strings_chunk(blob: bytes, count: int, used: int) -> memoryview:
    """The payload of the first `used` values of a stored strings chunk of `count` values, checked."""
    if len(blob) < 4 + CRC_BYTES:
        raise FormatError(f"strings chunk of {len(blob)} bytes is truncated")
    body = memoryview(blob)[:-CRC_BYTES]
    if crc32c(body) != int.from_bytes(blob[-CRC_BYTES:], "little"):
        raise FormatError("strings chunk fails its crc32c (flipped or truncated bytes)")
    if int.from_bytes(body[:4], "little") != count:
        raise FormatError(f"strings chunk holds {int.from_bytes(body[:4], 'little')} values, expected {count}")
    padding = 4 * (count - used)
    if padding and bytes(body[len(body) - padding:]) != bytes(padding):
        raise FormatError("strings chunk has values past the split's last row")
    return body[4:len(body) - padding]


def decode_strings(payload: bytes | memoryview, count: int) -> list[str]:
    try:
        values = _VLEN.decode(count.to_bytes(4, "little") + bytes(payload))
    except (ValueError, UnicodeDecodeError) as e:
        raise FormatError(f"strings chunk does not decode: {e}") from None
    if len(values) != count:
        raise FormatError(f"strings chunk decodes to {len(values)} values, expected {count}")
    return values.tolist()


class ShardFormat:
    """Byte geometry of one features shard file: `chunks` inner chunks written of `slots`."""

    def __init__(self, chunk_rows: int, dim: int, dtype: np.dtype, slots: int):
        self.chunk_rows, self.dim, self.dtype, self.slots = chunk_rows, dim, np.dtype(dtype).newbyteorder("<"), slots
        self.chunk_bytes = chunk_rows * dim * self.dtype.itemsize
        self.stride = self.chunk_bytes + CRC_BYTES
        self.index_bytes = slots * INDEX_ENTRY_BYTES + CRC_BYTES

    def file_size(self, chunks: int) -> int:
        return chunks * self.stride + self.index_bytes

    def check_index(self, index: bytes | memoryview, chunks: int) -> None:
        """The index must list exactly `chunks` chunks back to back from offset 0, the rest absent."""
        if len(index) != self.index_bytes:
            raise FormatError(f"shard index has {len(index)} bytes, expected {self.index_bytes} (truncated shard file)")
        entries = memoryview(index)[:-CRC_BYTES]
        if crc32c(entries) != int.from_bytes(bytes(index[-CRC_BYTES:]), "little"):
            raise FormatError("shard index fails its crc32c (flipped or truncated bytes)")
        table = np.frombuffer(entries, "<u8").reshape(self.slots, 2)
        expected = np.full((self.slots, 2), _ABSENT, dtype=np.uint64)
        expected[:chunks, 0] = np.arange(chunks, dtype=np.uint64) * np.uint64(self.stride)
        expected[:chunks, 1] = self.stride
        if not np.array_equal(table, expected):
            absent = [i for i in range(chunks) if table[i, 0] == _ABSENT]
            if absent:
                raise FormatError(f"shard index marks inner chunks {absent[:5]} as never written")
            raise FormatError("shard index does not match the layout (not written by armada's cache writer)")

    def readout(self, out: np.ndarray) -> "ShardReadout":
        return ShardReadout(self, out)

    def decode_chunk(self, chunk: bytes) -> np.ndarray:
        """One inner chunk read on its own, checked against its crc32c: [chunk_rows, dim]."""
        if len(chunk) != self.stride:
            raise FormatError(f"inner chunk has {len(chunk)} bytes, expected {self.stride} (truncated shard)")
        if crc32c(memoryview(chunk)[: self.chunk_bytes]) != int.from_bytes(chunk[self.chunk_bytes:], "little"):
            raise FormatError("inner chunk fails its crc32c (flipped or truncated bytes)")
        return np.frombuffer(chunk, self.dtype, count=self.chunk_rows * self.dim).reshape(self.chunk_rows, self.dim)


class ShardReadout:
    """Buffers a shard file is read into in one scattered read: the values land straight in `out`.

    Reading the inner chunks' values into place, their crc32c trailers and the index aside,
    spares a second copy of every byte.
    """

    def __init__(self, fmt: ShardFormat, out: np.ndarray):
        if not out.flags.c_contiguous or out.shape[1:] != (fmt.dim,):
            raise ValueError("out must be a C-contiguous [rows, dim] array")
        self.fmt = fmt
        self.values = memoryview(out.reshape(-1).view(np.uint8))
        self.chunks = -(-out.shape[0] // fmt.chunk_rows)
        # The last inner chunk is stored whole; its rows past the split's end hold the fill value.
        self.padding = bytearray(self.chunks * fmt.chunk_bytes - len(self.values))
        self.trailers = bytearray(self.chunks * CRC_BYTES)
        self.index = bytearray(fmt.index_bytes + 1)    # one byte more: an overlong file fills it
        self.views: list[memoryview] = []
        trailers = memoryview(self.trailers)
        for i in range(self.chunks):
            self.views += self._chunk_views(i) + [trailers[i * CRC_BYTES:(i + 1) * CRC_BYTES]]
        self.views.append(memoryview(self.index))

    def _chunk_views(self, i: int) -> list[memoryview]:
        lo = i * self.fmt.chunk_bytes
        hi = min(lo + self.fmt.chunk_bytes, len(self.values))
        return [self.values[lo:hi]] + ([memoryview(self.padding)] if hi - lo < self.fmt.chunk_bytes else [])

    @property
    def file_size(self) -> int:
        return self.fmt.file_size(self.chunks)

    def check_index(self) -> None:
        self.fmt.check_index(memoryview(self.index)[: self.fmt.index_bytes], self.chunks)

    def chunk_crc_failures(self) -> list[int]:
        """Inner chunks whose stored crc32c (zarr's per-chunk checksum) does not match their bytes."""
        failed = []
        for i in range(self.chunks):
            crc = 0
            for view in self._chunk_views(i):
                crc = google_crc32c.extend(crc, np.frombuffer(view, dtype=np.uint8))
            if crc != int.from_bytes(self.trailers[i * CRC_BYTES:(i + 1) * CRC_BYTES], "little"):
                failed.append(i)
        return failed


def nonfinite_rows(features: np.ndarray) -> np.ndarray:
    """Row numbers holding a NaN or ±inf."""
    return np.flatnonzero(~np.isfinite(features).all(axis=1))
