"""Writing a cache into object storage from many nodes at once (claims.py decides who writes each shard).

The cache's objects are the keys of the directory layout (layout.py), byte for byte: a shard is
encoded by zarr into memory, with the very metadata the cache holds, and put as whole objects,
so no object is ever shared by two writers (zarr loses data when two writers share a shard,
zarr-python #3514 and #3682). The order:

1. Metadata, once, up front: the root zarr.json (the manifest) is created with a conditional PUT,
   so of several nodes starting at once one creates the cache and the others open it; the arrays'
   zarr.json objects follow, the same bytes from whichever node writes them.
2. Per shard: claim it; put its three objects; confirm them whole (each object's size, then the
   whole shard read back and checked against its checksums, as a reader checks it); check the
   claim is still this writer's; only then put the done marker.
3. At the end, once every shard of every split is done, the writers consolidate: the claims are
   removed, leaving exactly the keys of a directory cache (layout.all_keys).
"""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np

from armada.cache_schema.bucket import Bucket, BucketSource
from armada.cache_schema.claims import Claims
from armada.cache_schema.layout import ROOT_KEY, SplitLayout, create_arrays
from armada.cache_schema.manifest import Manifest, manifest_diff
from armada.cache_schema.reader import read_manifest
from armada.cache_schema.writer import ShardLookup, check_written, checked_shard, marker_for
from armada.errors import ArmadaError

def _encoded_cache(manifest: Manifest):
    """(zarr arrays per split, the dict of encoded objects) of an in-memory store laid out as the cache."""
    import zarr
    from zarr.storage import MemoryStore

    objects: dict = {}
    root = zarr.open_group(store=MemoryStore(objects), mode="w-", zarr_format=3, attributes=manifest.to_dict())
    for split in manifest.dataset.splits:
        create_arrays(root, SplitLayout.of(manifest, split))
    arrays = {split: {name: root[f"{split}/{name}"] for name in ("features", "example_id", "text_sha256")}
              for split in manifest.dataset.splits}
    return arrays, objects


class BucketWriter(ShardLookup):
    """One process's handle on a cache in object storage; any number of processes on any number of nodes
    may hold one on the same cache. Same interface as writer.CacheWriter, plus claim()."""

    claims_shards = True

    def __init__(self, bucket: Bucket, manifest: Manifest):
        self.bucket, self.manifest, self.path = bucket, manifest, bucket.location
        self._source = BucketSource(bucket)
        self._arrays, self._staged = _encoded_cache(manifest)
        self._claims = Claims(bucket)

    @classmethod
    def create(cls, location: str, manifest: Manifest, overwrite: bool = False) -> "BucketWriter":
        bucket = Bucket(location)
        if overwrite:
            _remove_cache(bucket)
        metadata = _metadata_of(manifest)
        if bucket.get(ROOT_KEY) is None:
            bucket.create(ROOT_KEY, metadata[ROOT_KEY])    # False: another node made it first; theirs is read below
        existing = read_manifest(BucketSource(bucket), bucket.location)
        if existing.config_hash != manifest.config_hash:
            lines = "\n  ".join(manifest_diff(existing, manifest))
            raise ArmadaError(f"the cache at {bucket.location} was made with other settings (existing → requested):\n  {lines}\n"
                              "use --overwrite to replace it, or choose another output URL")
        for key, blob in metadata.items():
            if key != ROOT_KEY and bucket.get(key) != blob:
                bucket.put(key, blob)
        return cls(bucket, existing)

    def claim(self, split: str, shard_index: int) -> bool:
        """Claim a shard for this writer; False while another writer's claim on it is alive."""
        layout = self._layout(split)
        return self._claims.claim(layout, self._shard(layout, shard_index))

    def write_shard(self, split: str, shard_index: int, features: np.ndarray,
                    example_ids: Sequence[str], text_hashes: Sequence[str]) -> bool:
        """Write one whole claimed shard, confirm it, then its marker. False (nothing marked) when another writer
        took the claim over meanwhile: this writer stalled past the claim's lifetime, and the shard is theirs."""
        import zarr

        layout = self._layout(split)
        shard = self._shard(layout, shard_index)
        if not self._claims.holds(layout, shard):
            raise ArmadaError(f"{self.path}: {split} {shard} is not claimed by this writer; claim() it first")
        data, ids, hashes = checked_shard(layout, shard, features, example_ids, text_hashes)
        arrays = self._arrays[split]
        with zarr.config.set({"codec_pipeline.batch_size": layout.shard_rows // layout.chunk_rows}):
            arrays["features"][shard.start:shard.stop] = data
        arrays["example_id"][shard.start:shard.stop] = np.array(ids, dtype=object)
        arrays["text_sha256"][shard.start:shard.stop] = np.array(hashes, dtype=object)
        objects = {key: self._staged.pop(key).to_bytes() for key in layout.shard_keys(shard)}
        for key, blob in objects.items():
            self.bucket.put(key, blob)
        for key, blob in objects.items():
            stored = self.bucket.size(key)
            if stored != len(blob):
                raise ArmadaError(f"{self.path}/{key}: the store holds {stored} bytes of the {len(blob)} just written; "
                                  f"{split} {shard} is not marked done: run the same command again to write it again")
        marker = marker_for(layout, shard, data, ids, hashes, self.manifest.config_hash)
        check_written(self._source, self.path, layout, shard, marker, data)
        if not self._claims.holds(layout, shard):
            self._claims.release(layout, shard)
            return False
        self.bucket.put(layout.marker_key(shard), marker.to_json())
        self._claims.release(layout, shard)
        return True

    def consolidate(self) -> bool:
        """Once every shard is done, remove the claims; True if the cache is finished."""
        if any(self.pending(split) for split in self.manifest.dataset.splits):
            return False
        for split in self.manifest.dataset.splits:
            for key, _ in self.bucket.keys(f"{split}/features/claims/"):
                self.bucket.delete(key)
        return True

    def close(self) -> None:
        self._claims.close()


def _metadata_of(manifest: Manifest) -> dict[str, bytes]:
    _, objects = _encoded_cache(manifest)
    return {key: value.to_bytes() for key, value in objects.items()}


def _remove_cache(bucket: Bucket) -> None:
    """Delete the cache's objects, but nothing under a prefix that is not an armada cache (a mistyped --out)."""
    blob = bucket.get(ROOT_KEY)
    if blob is None and not bucket.keys():
        return
    try:
        is_cache = "config_hash" in json.loads(blob).get("attributes", {})
    except (TypeError, ValueError, AttributeError):
        is_cache = False
    if not is_cache:
        raise ArmadaError(f"refusing to overwrite {bucket.location}: it is not an armada cache; remove it yourself "
                          "or choose another URL")
    bucket.delete(ROOT_KEY)                 # first: no one reads a half-deleted cache as one
    for key, _ in bucket.keys():
        bucket.delete(key)
