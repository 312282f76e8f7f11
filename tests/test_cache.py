"""The cache's manifest, writer and reader: round trips, resume after a kill, concurrent writers."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from armada.cache_schema import CacheReader, CacheWriter, Manifest, chunk_rows_for, manifest_diff
from armada.errors import ArmadaError
from test_cache_fixtures import Rows, build_cache, manifest_for, rows_for, store_bytes, write_all

PYTHON = sys.executable


# --- manifest --------------------------------------------------------------------------------------

def test_manifest_round_trips_and_its_hash_ignores_creation_time_and_tool_version():
    splits = {"train": rows_for(5, 4)}
    manifest = manifest_for(splits, 4, provenance={"model": "m", "sizes": (1, 2)})
    again = Manifest.from_dict(json.loads(json.dumps(manifest.to_dict())), "test")
    assert again == manifest
    assert again.teacher.provenance == {"model": "m", "sizes": [1, 2]}
    later = dataclasses.replace(manifest, created="2030-01-01T00:00:00+00:00", tool_version="9.9")
    assert later.config_hash == manifest.config_hash
    other = manifest_for(splits, 4, provenance={"model": "m", "sizes": (1, 3)})
    assert other.config_hash != manifest.config_hash


def test_manifest_diff_names_each_differing_setting():
    splits = {"train": rows_for(5, 4)}
    a = manifest_for(splits, 4, provenance={"model": "m", "steps": 20})
    b = manifest_for(splits, 4, dtype="float32", provenance={"model": "m", "steps": 30, "seed": 1})
    assert manifest_diff(a, b) == [
        "extraction.dtype: float16 → float32",
        "teacher.provenance.seed: (absent) → 1",
        "teacher.provenance.steps: 20 → 30",
    ]
    assert manifest_diff(a, a) == []


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["teacher"].update(dim=9), "config_hash does not match"),
    (lambda d: d.update(schema_version=3), "schema version 3"),
    (lambda d: d["dataset"]["splits"].update({"../evil": d["dataset"]["splits"]["train"]}), "split name '../evil'"),
    (lambda d: d["extraction"].pop("shard_rows"), "missing 'shard_rows'"),
    (lambda d: d["teacher"].update(dim="8"), "is not an integer"),
])
def test_manifest_from_untrusted_data_is_refused_with_a_reason(edit, message):
    data = manifest_for({"train": rows_for(5, 4)}, 4).to_dict()
    edit(data)
    with pytest.raises(ArmadaError, match="not a valid armada cache manifest") as error:
        Manifest.from_dict(data, "somewhere/zarr.json")
    assert message in str(error.value) and "somewhere/zarr.json" in str(error.value)


def test_chunk_rows_divide_the_shard_and_stay_within_32_kib():
    assert chunk_rows_for(2048, 1024, "float16") == 16
    assert chunk_rows_for(2048, 384, "float32") == 16
    assert chunk_rows_for(100, 1024, "float16") == 10
    assert chunk_rows_for(7, 100000, "float32") == 1


# --- round trip ------------------------------------------------------------------------------------

@st.composite
def caches(draw):
    rows = draw(st.integers(1, 30))
    dim = draw(st.integers(1, 12))
    shard_rows = draw(st.integers(1, 9))
    chunk_rows = draw(st.sampled_from([d for d in range(1, shard_rows + 1) if shard_rows % d == 0]))
    dtype = draw(st.sampled_from(["float16", "float32"]))
    ids = draw(st.lists(st.text(min_size=1, max_size=10), min_size=rows, max_size=rows, unique=True))
    values = draw(st.lists(st.floats(-1e4, 1e4, width=16), min_size=rows * dim, max_size=rows * dim))
    order = draw(st.permutations(range(rows)))
    return Rows(np.array(values, dtype=np.float32).reshape(rows, dim), ids, [f"{i:064x}" for i in range(rows)]), \
        shard_rows, chunk_rows, dtype, order


@settings(max_examples=30, deadline=None)
@given(caches())
def test_round_trip_keeps_values_ids_and_order_for_any_shape_dtype_and_text(case):
    r, shard_rows, chunk_rows, dtype, order = case
    dim = r.features.shape[1]
    manifest = manifest_for({"train": r}, dim, shard_rows=shard_rows, chunk_rows=chunk_rows, dtype=dtype)
    expected = r.features.astype(dtype).astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.zarr"
        write_all(CacheWriter.create(path, manifest), {"train": r})
        wanted = np.array(order)
        for budget in (2**30, 0):           # the whole split in memory, then read chunk by chunk
            with CacheReader(path, memory_budget=budget) as reader:
                feats = reader.load("train", [r.ids[i] for i in order], [r.hashes[i] for i in order])
                assert feats.in_memory == (budget > 0) and len(feats) == len(order) and feats.dim == dim
                got = feats[np.arange(len(order))]
                assert got.dtype == np.float32
                np.testing.assert_array_equal(got, expected[wanted])
        group = zarr.open_group(path, mode="r")   # and zarr itself reads what armada wrote
        np.testing.assert_array_equal(group["train/features"][:], r.features.astype(dtype))
        assert group["train/example_id"][:].tolist() == r.ids
        assert group["train/text_sha256"][:].tolist() == r.hashes
        assert group.attrs.asdict() == manifest.to_dict()


def test_zarr_lists_the_whole_hierarchy_without_a_warning(tmp_path):
    build_cache(tmp_path / "c.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        members = dict(zarr.open_group(tmp_path / "c.zarr", mode="r").members(max_depth=None))
    assert sorted(members) == ["train", "train/example_id", "train/features", "train/text_sha256",
                               "validation", "validation/example_id", "validation/features", "validation/text_sha256"]


# --- the writer ------------------------------------------------------------------------------------

def test_create_resumes_a_cache_with_the_same_settings_and_refuses_one_with_others(tmp_path):
    path = tmp_path / "c.zarr"
    splits = {"train": rows_for(10, 4)}
    manifest = manifest_for(splits, 4)
    writer = CacheWriter.create(path, manifest)
    writer.write_shard("train", 1, splits["train"].features[4:8], splits["train"].ids[4:8], splits["train"].hashes[4:8])
    # Read from another folder (another machine, another --data-dir): same rows, same cache.
    moved = dataclasses.replace(manifest, created="later",
                                dataset=dataclasses.replace(manifest.dataset, source="/elsewhere/train.tsv"))
    resumed = CacheWriter.create(path, moved)
    assert [s.index for s in resumed.pending("train")] == [0, 2]
    assert resumed.manifest.created == manifest.created       # the cache keeps its own manifest

    changed = manifest_for(splits, 4, provenance={"model": "toy/model", "steps": 30})
    with pytest.raises(ArmadaError) as error:
        CacheWriter.create(path, changed)
    assert "teacher.provenance.steps: 20 → 30" in str(error.value) and "--overwrite" in str(error.value)
    fresh = CacheWriter.create(path, changed, overwrite=True)
    assert [s.index for s in fresh.pending("train")] == [0, 1, 2]


def test_overwrite_never_deletes_something_that_is_not_a_cache(tmp_path):
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("important")
    with pytest.raises(ArmadaError, match="refusing to overwrite"):
        CacheWriter.create(precious, manifest_for({"train": rows_for(3, 2)}, 2), overwrite=True)
    assert (precious / "chapter1.tex").read_text() == "important"
    with pytest.raises(ArmadaError, match="not an armada cache"):
        CacheWriter.create(precious, manifest_for({"train": rows_for(3, 2)}, 2))


@pytest.mark.parametrize("change, message", [
    (lambda r: dict(features=r.features[:, :3]), r"shape \(4, 4\)"),
    (lambda r: dict(features=r.features.astype(np.int32)), "floating point"),
    (lambda r: dict(example_ids=r.ids[:3]), "got 3 example ids for 4 rows"),
    (lambda r: dict(example_ids=[r.ids[0]] * 4), "repeat"),
    (lambda r: dict(example_ids=["a", "b", "", "d"]), "non-empty strings"),
    (lambda r: dict(example_ids=["a", "b", "\ud800", "d"]), "valid Unicode"),
    (lambda r: dict(text_hashes=["abc"] * 4), "not a teacher-text hash"),
])
def test_write_shard_checks_what_it_is_given(tmp_path, change, message):
    r = rows_for(4, 4)
    writer = CacheWriter.create(tmp_path / "c.zarr", manifest_for({"train": r}, 4))
    given_ = dict(features=r.features, example_ids=r.ids, text_hashes=r.hashes) | change(r)
    with pytest.raises(ArmadaError, match=message):
        writer.write_shard("train", 0, **given_)
    assert not writer.is_done("train", 0)


@pytest.mark.parametrize("bad_value, note", [(np.nan, ""), (np.inf, ""), (1e6, "once stored as float16")])
def test_non_finite_rows_are_refused_by_id_and_never_marked_done(tmp_path, bad_value, note):
    r = rows_for(4, 4)
    features = r.features.copy()
    features[2, 1] = bad_value
    writer = CacheWriter.create(tmp_path / "c.zarr", manifest_for({"train": r}, 4))
    with pytest.raises(ArmadaError, match="1 rows are NaN or infinite") as error:
        writer.write_shard("train", 0, features, r.ids, r.hashes)
    assert r.ids[2] in str(error.value) and note in str(error.value)
    assert not writer.is_done("train", 0)
    assert not (tmp_path / "c.zarr/train/features/c/0/0").exists()


def test_write_shard_clears_leftovers_of_an_earlier_attempt(tmp_path):
    path = tmp_path / "c.zarr"
    manifest, splits = build_cache(tmp_path / "reference.zarr")
    writer = CacheWriter.create(path, manifest)
    shard_file = path / "train/features/c/1/0"
    shard_file.parent.mkdir(parents=True)
    shard_file.write_bytes(b"half a shard")
    (shard_file.parent / "0.0123abcd.partial").write_bytes(b"zarr's temp file")
    (path / "train/example_id/c").mkdir(parents=True)
    (path / "train/example_id/c/1.99ff.partial").write_bytes(b"more")
    write_all(writer, splits)
    assert store_bytes(path) == store_bytes(tmp_path / "reference.zarr")


def test_read_rows_reads_back_done_shards_only(tmp_path):
    r = rows_for(10, 4)
    writer = CacheWriter.create(tmp_path / "c.zarr", manifest_for({"train": r}, 4))
    writer.write_shard("train", 0, r.features[:4], r.ids[:4], r.hashes[:4])
    rows = np.array([3, 0, 3])
    np.testing.assert_array_equal(writer.read_rows("train", rows), r.features[rows].astype(np.float16).astype(np.float32))
    with pytest.raises(ArmadaError, match=r"shard 1 \(rows 4–7\)"):
        writer.read_rows("train", np.array([1, 5]))
    for outside in ([-1, 0], [2, 10]):   # -1 would otherwise read a row of the last shard
        with pytest.raises(ArmadaError, match=r"c\.zarr: train has rows 0–9; asked for"):
            writer.read_rows("train", np.array(outside))


# --- the reader ------------------------------------------------------------------------------------

def test_reader_follows_the_requested_order_and_subset(tmp_path):
    _, splits = build_cache(tmp_path / "c.zarr", rows=10)
    r = splits["train"]
    pick = [7, 2, 9]
    with CacheReader(tmp_path / "c.zarr") as reader:
        feats = reader.load("train", [r.ids[i] for i in pick], [r.hashes[i] for i in pick])
        np.testing.assert_array_equal(feats[np.array([2, 0])], r.features[[9, 7]].astype(np.float16).astype(np.float32))
        assert reader.splits == ["train", "validation"]


def test_reader_refuses_ids_it_does_not_have_naming_them(tmp_path):
    _, splits = build_cache(tmp_path / "c.zarr", rows=10)
    r = splits["train"]
    with CacheReader(tmp_path / "c.zarr") as reader, pytest.raises(ArmadaError, match="no features for 2 of the 4") as error:
        reader.load("train", r.ids[:2] + ["new-1", "new-2"], r.hashes[:4])
    assert "new-1, new-2" in str(error.value)


def test_reader_refuses_changed_teacher_texts_naming_the_examples(tmp_path):
    _, splits = build_cache(tmp_path / "c.zarr", rows=10)
    r = splits["train"]
    hashes = list(r.hashes)
    hashes[3] = hashes[8] = "0" * 64
    with CacheReader(tmp_path / "c.zarr") as reader, pytest.raises(ArmadaError) as error:
        reader.load("train", r.ids, hashes)
    assert f"teacher text changed for 2 examples: {r.ids[3]}, {r.ids[8]}" in str(error.value)


def test_reader_refuses_an_unfinished_split_naming_the_shards(tmp_path):
    r = rows_for(10, 4)
    writer = CacheWriter.create(tmp_path / "c.zarr", manifest_for({"train": r}, 4))
    writer.write_shard("train", 1, r.features[4:8], r.ids[4:8], r.hashes[4:8])
    with CacheReader(tmp_path / "c.zarr") as reader:
        status = reader.status("train")
        assert (status.shards_done, status.shards_total, status.complete) == (1, 3, False)
        assert [s.index for s in status.unfinished] == [0, 2]
        with pytest.raises(ArmadaError, match=r"2 of 3 shards are not done \(shard 0 \(rows 0–3\); shard 2 \(rows 8–9\)\)"):
            reader.load("train", r.ids, r.hashes)


# --- processes -------------------------------------------------------------------------------------

def _spawn(script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "-c", textwrap.dedent(script), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parent)


WRITE_SHARDS = """
    import sys, time
    from pathlib import Path
    from armada.cache_schema import CacheWriter
    from test_cache_fixtures import manifest_for, rows_for
    path, start, shards = Path(sys.argv[1]), Path(sys.argv[2]), [int(s) for s in sys.argv[3].split(",")]
    r = rows_for(40, 16)
    while not start.exists():           # all processes call create() at the same moment
        time.sleep(0.001)
    writer = CacheWriter.create(path, manifest_for({"train": r}, 16))
    for i in shards:
        s = writer.shards("train")[i]
        writer.write_shard("train", i, r.features[s.start:s.stop], r.ids[s.start:s.stop], r.hashes[s.start:s.stop])
    print("ok")
"""


def test_processes_creating_one_cache_at_once_and_writing_disjoint_shards_lose_nothing(tmp_path):
    path, start = tmp_path / "c.zarr", tmp_path / "go"
    procs = [_spawn(WRITE_SHARDS, str(path), str(start), ",".join(str(i) for i in range(k, 10, 3))) for k in range(3)]
    time.sleep(1.0)                     # let them all import and wait at the line
    start.touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    r = rows_for(40, 16)
    write_all(CacheWriter.create(tmp_path / "one.zarr", manifest_for({"train": r}, 16)), {"train": r})
    assert store_bytes(path) == store_bytes(tmp_path / "one.zarr")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temporary folders left


KILLED_MID_SHARD = """
    import sys, time
    from pathlib import Path
    import armada.cache_schema.writer as writer_module
    from armada.cache_schema import CacheWriter
    from test_cache_fixtures import manifest_for, rows_for

    def stall(path, content, sync):     # the shard's data is written; its marker would be next
        print("data written", flush=True)
        time.sleep(600)

    r = rows_for(12, 8)
    writer = CacheWriter.create(Path(sys.argv[1]), manifest_for({"train": r}, 8))
    writer.write_shard("train", 0, r.features[0:4], r.ids[0:4], r.hashes[0:4])
    writer_module.write_atomically = stall
    writer.write_shard("train", 1, r.features[4:8], r.ids[4:8], r.hashes[4:8])
"""


def test_a_writer_killed_mid_shard_leaves_it_unfinished_and_resume_gives_the_same_cache(tmp_path):
    path = tmp_path / "c.zarr"
    proc = _spawn(KILLED_MID_SHARD, str(path))
    assert proc.stdout.readline().strip() == "data written", proc.stderr.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert (path / "train/features/c/1/0").exists()            # its data is there, its marker is not
    r = rows_for(12, 8)
    manifest = manifest_for({"train": r}, 8)
    writer = CacheWriter.create(path, manifest)
    assert [writer.is_done("train", i) for i in range(3)] == [True, False, False]
    with CacheReader(path) as reader, pytest.raises(ArmadaError, match=r"shard 1 \(rows 4–7\); shard 2"):
        reader.load("train", r.ids, r.hashes)
    write_all(writer, {"train": r})
    write_all(CacheWriter.create(tmp_path / "uninterrupted.zarr", manifest), {"train": r})
    assert store_bytes(path) == store_bytes(tmp_path / "uninterrupted.zarr")
