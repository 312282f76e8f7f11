"""Every kind of damage is caught by `verify` and refused by the reader, naming the shard or example."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import zarr

from armada.cache_schema import CacheReader
from armada.cache_schema.share import pack
from armada.cache_schema.verify import verify
from armada.errors import ArmadaError
from armada.tasks import sha256_text
from test_cache_fixtures import build_cache

# build_cache(rows=10): train shards 0 (rows 0–3), 1 (rows 4–7), 2 (rows 8–9); inner chunks of 2 rows.
SHARD_1 = r"train shard 1 \(rows 4–7\)"


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def rewrite(cache: Path, array: str, rows: slice, values) -> None:
    """Change stored values through zarr itself, so every zarr checksum is valid again."""
    zarr.open_array(cache / "train" / array, mode="r+")[rows] = values


def nan_row(cache: Path) -> None:
    rewrite(cache, "features", slice(5, 6), np.full((1, 8), np.nan, dtype=np.float16))


def reorder_ids(cache: Path) -> None:
    ids = zarr.open_array(cache / "train/example_id", mode="r")[4:8]
    rewrite(cache, "example_id", slice(4, 8), ids[::-1])


def change_text_hash(cache: Path) -> None:
    rewrite(cache, "text_sha256", slice(5, 6), np.array([sha256_text("another text")], dtype=object))


DAMAGE = {
    # name: (damage, verify's fault kind, what the reader's message says)
    "truncated chunk": (lambda c: truncate(c / "train/features/c/1/0"), "corrupted", SHARD_1 + r".*truncated"),
    "flipped bytes in values": (lambda c: flip_byte(c / "train/features/c/1/0", 10), "corrupted", SHARD_1 + r".*crc32c"),
    "flipped bytes in the index": (lambda c: flip_byte(c / "train/features/c/1/0", -20), "corrupted", SHARD_1 + r".*index"),
    "flipped bytes in ids": (lambda c: flip_byte(c / "train/example_id/c/1", 12), "corrupted", SHARD_1 + r".*example ids"),
    "deleted shard": (lambda c: (c / "train/features/c/1/0").unlink(), "missing", SHARD_1 + r".*missing"),
    "deleted marker": (lambda c: (c / "train/features/done/1.json").unlink(), "unfinished", r"shard 1 \(rows 4–7\)"),
    "NaN rows": (nan_row, "nonfinite", r"1 rows are NaN or infinite \(example ids ex-5-é\)"),
    "ids reordered": (reorder_ids, "corrupted", SHARD_1 + r": its example ids differ from those recorded in its marker"),
    "teacher text changed": (change_text_hash, "corrupted", SHARD_1 + r": its teacher-text hashes differ"),
}


@pytest.mark.parametrize("name", DAMAGE)
def test_damage_is_reported_by_verify_and_refused_by_the_reader(tmp_path, name):
    damage, kind, message = DAMAGE[name]
    cache = tmp_path / "c.zarr"
    _, splits = build_cache(cache, rows=10)
    r = splits["train"]
    assert verify(cache).clean
    damage(cache)

    report = verify(cache)
    assert [(f.split, f.shard.index, f.kind) for f in report.faults] == [("train", 1, kind)], report.faults
    if kind == "nonfinite":
        assert report.faults[0].example_ids == ("ex-5-é",)

    with pytest.raises(ArmadaError, match=message):
        CacheReader(cache).load("train", r.ids, r.hashes)
    # Read on demand, the damage is found when the rows are read (or at load, for ids and markers).
    with pytest.raises(ArmadaError, match=message):
        CacheReader(cache, memory_budget=0).load("train", r.ids, r.hashes)[np.arange(10)]
    # The other split is untouched and still reads.
    v = splits["validation"]
    assert len(CacheReader(cache).load("validation", v.ids, v.hashes)) == len(v.ids)


def test_a_manifest_edited_by_hand_is_refused(tmp_path):
    cache = tmp_path / "c.zarr"
    build_cache(cache)
    root = cache / "zarr.json"
    root.write_text(root.read_text().replace('"steps": 20', '"steps": 30'))
    with pytest.raises(ArmadaError, match="config_hash does not match"):
        CacheReader(cache)


def test_array_metadata_that_does_not_match_the_manifest_is_refused(tmp_path):
    cache = tmp_path / "c.zarr"
    build_cache(cache)
    meta = cache / "train/features/zarr.json"
    meta.write_text(meta.read_text().replace('"index_location": "end"', '"index_location": "start"'))
    with pytest.raises(ArmadaError, match="train/features/zarr.json does not match the manifest"):
        CacheReader(cache)


def _hostile_zip(packed: Path, out: Path, extra: str | None = None, compress: bool = False) -> Path:
    with zipfile.ZipFile(packed) as src, zipfile.ZipFile(out, "w") as dst, warnings.catch_warnings():
        warnings.simplefilter("ignore")     # zipfile warns about the duplicate name we add on purpose
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info), zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED)
        if extra:
            dst.writestr(extra, b"{}")
    return out


@pytest.mark.parametrize("extra, message", [
    ("../evil", "entry named '../evil' that points outside"),
    ("/etc/x", "entry named '/etc/x' that points outside"),
    ("train/../../x", "points outside"),
    ("C:\\x", "points outside"),
    ("zarr.json", "two entries named 'zarr.json'"),
])
def test_a_hostile_packed_file_is_refused_and_nothing_is_written(tmp_path, extra, message):
    build_cache(tmp_path / "c.zarr")
    packed = pack(tmp_path / "c.zarr", tmp_path / "c.zip")
    hostile = _hostile_zip(packed, tmp_path / "hostile.zip", extra)
    before = sorted(tmp_path.parent.rglob("*"))
    with pytest.raises(ArmadaError, match=message):
        CacheReader(hostile)
    assert sorted(tmp_path.parent.rglob("*")) == before


def test_a_compressed_packed_file_is_refused(tmp_path):
    build_cache(tmp_path / "c.zarr")
    packed = pack(tmp_path / "c.zarr", tmp_path / "c.zip")
    with pytest.raises(ArmadaError, match="compressed or encrypted"):
        CacheReader(_hostile_zip(packed, tmp_path / "deflated.zip", compress=True))
