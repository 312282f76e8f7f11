"""Moving caches between machines: one packed file, and an HDF5 round trip."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from armada.cache_schema import open_writer
from armada.cache_schema.bucket import is_url, refuse_url
from armada.cache_schema.encoding import strings_digest
from armada.cache_schema.layout import all_keys
from armada.cache_schema.manifest import Manifest
from armada.cache_schema.reader import CacheReader
from armada.cache_schema.verify import verify
from armada.errors import ArmadaError
from armada.files import check_writable_folder, replacing

HDF5_MANIFEST = "armada_cache_manifest"
# Per split group: what export wrote, {"features": SHA-256 of the stored values row by row, "example_id" and
# "text_sha256": their strings_digest}; import refuses a file that no longer matches it.
HDF5_CHECKSUMS = "armada_sha256"
_BLOCK_ROWS = 65536
_EPOCH = (1980, 1, 1, 0, 0, 0)              # fixed entry times: packing a cache twice gives the same bytes


def pack(location, out: str | os.PathLike) -> Path:
    """Write a finished, verified cache as one uncompressed zip whose entry names are its keys.

    zarr's ZipStore and CacheReader read the file as it is. Written under a temporary name and
    renamed, so `out` is never half a file.
    """
    refuse_url(out, "a packed cache (the file to write)")
    out = Path(out)
    if out.exists():
        raise ArmadaError(f"{out} already exists; packed caches are immutable: remove it or choose another name")
    check_writable_folder(out.parent, f"cache pack {out}: its folder")
    report = verify(location)
    if not report.clean:
        raise ArmadaError(f"cannot pack {location}: it has {len(report.faults)} faults (first: {report.faults[0]}); "
                          f"run `armada cache verify {location}` and finish or repair the cache first")
    with replacing(out) as partial, CacheReader(location) as reader, \
            zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key in all_keys(reader.manifest):
            blob = reader.source.read(key)
            if blob is None:
                raise ArmadaError(f"cannot pack {location}: {key} vanished while packing")
            info = zipfile.ZipInfo(key, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            zf.writestr(info, blob)
    return out


def export_hdf5(location, out: str | os.PathLike) -> Path:
    """The cache as HDF5: per split a group with `features`, `example_id`, `text_sha256`; the manifest as JSON."""
    import h5py

    refuse_url(out, "an HDF5 export (the file to write)")
    out = Path(out)
    if out.exists():
        raise ArmadaError(f"{out} already exists: remove it or choose another name")
    check_writable_folder(out.parent, f"cache export {out}: its folder")
    with replacing(out) as partial, CacheReader(location) as reader, h5py.File(partial, "w") as f:
        f.attrs[HDF5_MANIFEST] = json.dumps(reader.manifest.to_dict(), ensure_ascii=False)
        for split in reader.splits:
            layout = reader.layout(split)
            group = f.create_group(split)
            features = group.create_dataset("features", shape=(layout.rows, layout.dim), dtype=layout.dtype)
            ids, hashes, digest = [], [], hashlib.sha256()
            for shard, values, shard_ids, shard_hashes in reader.read_shards(split):
                features[shard.start:shard.stop] = values
                digest.update(np.ascontiguousarray(values).tobytes())
                ids += shard_ids
                hashes += shard_hashes
            group.create_dataset("example_id", data=ids, dtype=h5py.string_dtype())
            group.create_dataset("text_sha256", data=hashes, dtype=h5py.string_dtype())
            group.attrs[HDF5_CHECKSUMS] = json.dumps({"features": digest.hexdigest(), "example_id": strings_digest(ids),
                                                      "text_sha256": strings_digest(hashes)})
    return out


def import_hdf5(source: str | os.PathLike, out: str | os.PathLike) -> Path:
    """A normal cache (markers and all) at `out` from an HDF5 file written by export_hdf5."""
    import h5py

    refuse_url(source, "an HDF5 file to import")
    source = Path(source)
    check_writable_folder(out, "cache import OUT")
    try:
        f = h5py.File(source, "r")
    except OSError as e:
        raise ArmadaError(f"cannot read {source} as HDF5: {e}") from None
    with f:
        raw = f.attrs.get(HDF5_MANIFEST)
        if raw is None:
            raise ArmadaError(f"{source} has no {HDF5_MANIFEST} attribute: it was not written by `armada cache export`")
        try:
            data = json.loads(raw)
        except (TypeError, ValueError):
            raise ArmadaError(f"{source}: its {HDF5_MANIFEST} attribute is not JSON") from None
        manifest = Manifest.from_dict(data, str(source))
        columns = {split: _columns(f, source, manifest, split) for split in manifest.dataset.splits}
        writer = open_writer(out, manifest)
        try:
            for split, (features, ids, hashes) in columns.items():
                for shard in writer.pending(split):
                    if getattr(writer, "claims_shards", False) and not writer.claim(split, shard.index):
                        raise ArmadaError(f"{out}: {split} {shard} is being written by another process; run the "
                                          "import again once it has ended")
                    writer.write_shard(split, shard.index, features[shard.start:shard.stop],
                                       ids[shard.start:shard.stop], hashes[shard.start:shard.stop])
            if getattr(writer, "claims_shards", False):
                writer.consolidate()
        finally:
            writer.close()
    return out if is_url(out) else Path(out)


def _columns(f, source: Path, manifest: Manifest, split: str):
    """The split's datasets, checked against the manifest: (features dataset, ids, hashes)."""
    import h5py

    rows, dim, dtype = manifest.dataset.splits[split].rows, manifest.teacher.dim, np.dtype(manifest.extraction.dtype)
    group = f.get(split)
    if not isinstance(group, h5py.Group):
        raise ArmadaError(f"{source} has no group {split!r}, which its manifest lists")
    found = {name: group.get(name) for name in ("features", "example_id", "text_sha256")}
    for name, dataset in found.items():
        if not isinstance(dataset, h5py.Dataset):
            raise ArmadaError(f"{source}: {split}/{name} is missing")
    features = found["features"]
    if features.shape != (rows, dim) or features.dtype != dtype:
        raise ArmadaError(f"{source}: {split}/features is {features.shape} {features.dtype}; "
                          f"the manifest says ({rows}, {dim}) {dtype}")
    strings = []
    for name in ("example_id", "text_sha256"):
        dataset = found[name]
        if dataset.shape != (rows,) or h5py.check_string_dtype(dataset.dtype) is None:
            raise ArmadaError(f"{source}: {split}/{name} must be {rows} strings, not {dataset.shape} {dataset.dtype}")
        strings.append(dataset.asstr()[...].tolist())
    if strings_digest(strings[0]) != manifest.dataset.splits[split].ids_sha256:
        raise ArmadaError(f"{source}: the example ids of {split} differ from those its manifest records")
    _check_exported(group, source, split, features, strings)
    return features, strings[0], strings[1]


def _check_exported(group, source: Path, split: str, features, strings: list[list[str]]) -> None:
    """Refuse a split whose values differ from what export wrote (edited or damaged since); files exported before
    export recorded checksums have only the manifest's checks."""
    raw = group.attrs.get(HDF5_CHECKSUMS)
    if raw is None:
        return
    try:
        expected = json.loads(raw)
        digest = hashlib.sha256()
        for start in range(0, features.shape[0], _BLOCK_ROWS):
            digest.update(np.ascontiguousarray(features[start:start + _BLOCK_ROWS]).tobytes())
        found = {"features": digest.hexdigest(), "example_id": strings_digest(strings[0]),
                 "text_sha256": strings_digest(strings[1])}
        changed = [name for name in found if expected[name] != found[name]]
    except (TypeError, ValueError, KeyError):
        raise ArmadaError(f"{source}: {split}'s {HDF5_CHECKSUMS} attribute cannot be read; export the cache again") from None
    if changed:
        raise ArmadaError(f"{source}: {split}/{', '.join(changed)} differ from what `armada cache export` wrote (edited or "
                          "damaged since); nothing was imported. Export the cache again from its source")
