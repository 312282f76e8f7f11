"""Where everything lives in a cache: keys, shard geometry, the zarr arrays and the shard markers."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import numpy as np

from armada.cache_schema.encoding import ShardFormat, is_sha256_hex
from armada.cache_schema.manifest import Manifest

ROOT_KEY = "zarr.json"
ARRAYS = ("features", "example_id", "text_sha256")


@dataclass(frozen=True)
class Shard:
    index: int
    start: int
    stop: int

    @property
    def rows(self) -> int:
        return self.stop - self.start

    def __str__(self) -> str:
        return f"shard {self.index} (rows {self.start}–{self.stop - 1})"


@dataclass(frozen=True)
class SplitLayout:
    """One split's arrays: their keys, shards and byte geometry."""

    split: str
    rows: int
    dim: int
    dtype: np.dtype
    shard_rows: int
    chunk_rows: int

    @classmethod
    def of(cls, manifest: Manifest, split: str) -> "SplitLayout":
        x = manifest.extraction
        return cls(split, manifest.dataset.splits[split].rows, manifest.teacher.dim, np.dtype(x.dtype).newbyteorder("<"),
                   x.shard_rows, x.chunk_rows)

    @cached_property
    def shards(self) -> list[Shard]:
        return [Shard(i, start, min(start + self.shard_rows, self.rows))
                for i, start in enumerate(range(0, self.rows, self.shard_rows))]

    @cached_property
    def format(self) -> ShardFormat:
        return ShardFormat(self.chunk_rows, self.dim, self.dtype, self.shard_rows // self.chunk_rows)

    def chunks_in(self, shard: Shard) -> int:
        return -(-shard.rows // self.chunk_rows)

    def features_key(self, shard: Shard) -> str:
        return f"{self.split}/features/c/{shard.index}/0"

    def strings_key(self, array: str, shard: Shard) -> str:
        return f"{self.split}/{array}/c/{shard.index}"

    def marker_key(self, shard: Shard) -> str:
        # Inside the features array folder: zarr never lists an array's folder, so a marker there
        # raises no "not recognized as a component of a Zarr hierarchy" warning.
        return f"{self.split}/features/done/{shard.index}.json"

    def metadata_keys(self) -> list[str]:
        return [f"{self.split}/zarr.json"] + [f"{self.split}/{a}/zarr.json" for a in ARRAYS]

    def shard_keys(self, shard: Shard) -> list[str]:
        return [self.features_key(shard), self.strings_key("example_id", shard), self.strings_key("text_sha256", shard)]

    def expected_metadata(self) -> dict[str, dict[str, Any]]:
        """The parts of each array's zarr.json the reader relies on (what create_arrays writes)."""
        crc = {"name": "crc32c"}
        little = {"name": "bytes", "configuration": {"endian": "little"}}
        strings = {"data_type": "string", "shape": [self.rows], "fill_value": "",
                   "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [self.shard_rows]}},
                   "codecs": [{"name": "vlen-utf8", "configuration": {}}, crc]}
        return {
            "features": {
                "data_type": str(self.dtype.name), "shape": [self.rows, self.dim], "fill_value": "NaN",
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [self.shard_rows, self.dim]}},
                "codecs": [{"name": "sharding_indexed", "configuration": {
                    "chunk_shape": [self.chunk_rows, self.dim], "codecs": [little, crc],
                    "index_codecs": [little, crc], "index_location": "end"}}],
            },
            "example_id": strings,
            "text_sha256": strings,
        }


def create_arrays(root, layout: SplitLayout) -> None:
    """Pre-allocate one split's arrays in an open zarr root group (nothing written but metadata)."""
    from zarr.codecs import BytesCodec, Crc32cCodec

    group = root.create_group(layout.split)
    group.create_array("features", shape=(layout.rows, layout.dim), dtype=layout.dtype.name,
                       shards=(layout.shard_rows, layout.dim), chunks=(layout.chunk_rows, layout.dim),
                       serializer=BytesCodec(endian="little"), compressors=[Crc32cCodec()], filters=None,
                       fill_value=np.nan)
    for name in ("example_id", "text_sha256"):
        group.create_array(name, shape=(layout.rows,), dtype=str, chunks=(layout.shard_rows,),
                           compressors=[Crc32cCodec()], filters=None, fill_value="")


def check_metadata(array: str, metadata: Any, layout: SplitLayout) -> str | None:
    """Why an array's zarr.json is not the one the layout needs, or None when it is."""
    if not isinstance(metadata, dict) or metadata.get("node_type") != "array" or metadata.get("zarr_format") != 3:
        return "not a Zarr v3 array"
    expected = layout.expected_metadata()[array]
    for key, value in expected.items():
        if metadata.get(key) != value:
            return f"{key} is {json.dumps(metadata.get(key))}, the manifest needs {json.dumps(value)}"
    if metadata.get("chunk_key_encoding") != {"name": "default", "configuration": {"separator": "/"}}:
        return "chunk_key_encoding is not the default '/' encoding"
    return None


@dataclass(frozen=True)
class Marker:
    """A shard's proof of completion, written after its data."""

    shard: int
    start: int
    stop: int
    rows: int
    features_crc32c: int                    # crc32c of the shard's values as stored (little-endian, row-major)
    example_ids_sha256: str                 # encoding.strings_digest of the shard's ids
    text_sha256_sha256: str                 # encoding.strings_digest of the shard's teacher-text hashes
    nonfinite_rows: int                     # always 0: a shard with a NaN or inf row is never marked done
    config_hash: str

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, indent=1).encode()

    @classmethod
    def parse(cls, blob: bytes, layout: SplitLayout, shard: Shard, config_hash: str) -> "Marker":
        """The marker in `blob`; ValueError saying what is wrong when it is not a valid one for this shard."""
        try:
            data = json.loads(blob)
            marker = cls(**{name: data[name] for name in cls.__dataclass_fields__})
        except (ValueError, TypeError, KeyError) as e:
            raise ValueError(f"unreadable marker ({e})") from None
        ints = (marker.shard, marker.start, marker.stop, marker.rows, marker.features_crc32c, marker.nonfinite_rows)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in ints):
            raise ValueError("marker fields are not integers")
        if (marker.shard, marker.start, marker.stop, marker.rows) != (shard.index, shard.start, shard.stop, shard.rows):
            raise ValueError(f"marker is for rows {marker.start}–{marker.stop - 1}, not this shard's")
        if not (is_sha256_hex(marker.example_ids_sha256) and is_sha256_hex(marker.text_sha256_sha256)):
            raise ValueError("marker hashes are malformed")
        if marker.config_hash != config_hash:
            raise ValueError("marker belongs to a cache with other settings")
        if marker.nonfinite_rows != 0:
            raise ValueError(f"marker records {marker.nonfinite_rows} non-finite rows")
        return marker


def all_keys(manifest: Manifest) -> list[str]:
    """Every key of a complete cache, in a stable order (what `pack` copies)."""
    keys = [ROOT_KEY]
    for split in manifest.dataset.splits:
        layout = SplitLayout.of(manifest, split)
        keys += layout.metadata_keys()
        for shard in layout.shards:
            keys += layout.shard_keys(shard) + [layout.marker_key(shard)]
    return keys
