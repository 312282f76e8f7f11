"""Caches in object storage (s3://), against a real SeaweedFS server on loopback (the s3 fixture, conftest.py).

Extraction writes the very objects a folder cache holds; every reader path (load, verify, info, pack,
export, reuse) takes the URL; shards are claimed so that two extractions at once write each shard once;
every fault names the URL, never prints a key, and a rerun resumes.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from armada.cache_schema import CacheReader, open_writer
from armada.cache_schema.bucket import Bucket
from armada.cache_schema.layout import ROOT_KEY, SplitLayout, all_keys
from armada.cache_schema.share import export_hdf5, import_hdf5, pack
from armada.cache_schema.verify import verify
from armada.errors import ArmadaError
from armada.extract.runner import run_extract

import s3_server
from test_extract_runner import TRAIN, VALIDATION, load_split, make_job  # noqa: F401  (make_job: a fixture)
from extract_fake_teacher import vector
from test_cache_fixtures import manifest_for, rows_for


def to(url: str, job):
    """The job with a URL as its cache (make_job puts its `out` in the test's folder)."""
    return dataclasses.replace(job, out=url)


def bucket_objects(url: str) -> dict[str, bytes]:
    bucket = Bucket(url)
    return {key: bucket.get(key) for key, _ in bucket.keys()}


def folder_objects(path: str) -> dict[str, bytes]:
    manifest = CacheReader(path).manifest
    return {key: (Path(path) / key).read_bytes() for key in all_keys(manifest)}


def assert_same_objects(url: str, folder: str) -> None:
    """The bucket holds exactly a folder cache's keys (no claims left), each byte for byte but the manifest's
    creation time."""
    stored, expected = bucket_objects(url), folder_objects(folder)
    assert sorted(stored) == sorted(expected)
    assert [key for key in expected if key != ROOT_KEY and stored[key] != expected[key]] == []
    assert CacheReader(url).manifest.config_hash == CacheReader(folder).manifest.config_hash


@pytest.fixture
def finished(s3, make_job, request):
    """A cache extracted into the bucket (under a prefix of this test's own) and the same into a folder."""
    url = s3.url(f"{request.node.name}/toy.zarr")
    summary = run_extract(to(url, make_job()), show_progress=False)
    local = run_extract(make_job(out="local.zarr"), show_progress=False)
    return url, summary, local.path


def test_an_extraction_into_a_bucket_writes_what_one_into_a_folder_does(finished):
    url, summary, local = finished
    assert summary.path == url and summary.rows_written == len(TRAIN) + len(VALIDATION)
    assert_same_objects(url, local)
    for split, texts, prefix in (("train", TRAIN, "t"), ("validation", VALIDATION, "v")):
        np.testing.assert_array_equal(load_split(url, split, texts, prefix), np.stack([vector(t, 6) for t in texts]))


def test_a_second_run_resumes_and_writes_nothing(finished, make_job):
    url, first, _ = finished
    again = run_extract(to(url, make_job()), show_progress=False)
    assert (again.shards_written, again.shards_already_done) == (0, first.shards_written)


def test_verify_info_pack_export_and_import_take_the_url(finished, tmp_path, s3):
    from armada.cli import app

    url, _, local = finished
    report = verify(url)
    assert report.clean and report.shards == 6
    info = CliRunner().invoke(app, ["cache", "info", url, "--json"])
    assert info.exit_code == 0, info.output
    summary = json.loads(info.output)
    assert summary["splits"]["train"]["complete"] and summary["size_bytes"] > 0
    packed = pack(url, tmp_path / "toy.zarr.zip")
    assert verify(packed).clean
    exported = export_hdf5(url, tmp_path / "toy.h5")
    imported = import_hdf5(exported, s3.url(f"imported-{tmp_path.name}/toy.zarr"))
    assert verify(imported).clean
    assert_same_objects(imported, local)
    for where, command in ((pack, "packed cache"), (export_hdf5, "HDF5 export")):
        with pytest.raises(ArmadaError, match=f"s3://{s3.bucket}/out.zip: an? {command} .* must be a local path"):
            where(url, f"s3://{s3.bucket}/out.zip")


def test_a_shard_truncated_or_removed_after_its_marker_is_named_by_verify(finished):
    url, _, _ = finished
    bucket = Bucket(url)
    layout = SplitLayout.of(CacheReader(url).manifest, "train")
    shards = layout.shards
    features = layout.features_key(shards[1])
    bucket.put(features, bucket.get(features)[:-100])
    bucket.delete(layout.strings_key("example_id", shards[2]))
    faults = {(f.split, f.shard.index if f.shard else None, f.kind) for f in verify(url).faults}
    assert ("train", 1, "corrupted") in faults and ("train", 2, "missing") in faults
    with pytest.raises(ArmadaError, match=f"{url}: train shard 2 .*example ids are missing"):
        load_split(url, "train", TRAIN, "t")


def test_wrong_or_missing_credentials_and_a_missing_bucket_are_named_without_the_key(s3, monkeypatch):
    url = s3.url("absent/toy.zarr")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-never-printed")
    with pytest.raises(ArmadaError) as refused:
        CacheReader(url)
    assert url in str(refused.value) and "refused" in str(refused.value) and "SignatureDoesNotMatch" in str(refused.value)
    assert "wrong-secret-never-printed" not in str(refused.value) and s3_server.SECRET_KEY not in str(refused.value)

    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    with pytest.raises(ArmadaError, match=f"no credentials for {url} .*AWS_ACCESS_KEY_ID"):
        CacheReader(url)

    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    missing = "s3://no-such-bucket/toy.zarr"
    with pytest.raises(ArmadaError, match="the bucket 'no-such-bucket' of s3://no-such-bucket/toy.zarr.* does not exist"):
        CacheReader(missing)


def test_credentials_come_from_an_aws_profile(finished, monkeypatch, tmp_path, s3):
    url = finished[0]
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[team]\naws_access_key_id = {s3_server.ACCESS_KEY}\n"
                           f"aws_secret_access_key = {s3_server.SECRET_KEY}\n")
    config = tmp_path / "config"
    config.write_text(f"[profile team]\nregion = us-east-1\nendpoint_url = {s3.endpoint}\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_REGION"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "team")
    assert verify(url).clean


def test_two_extractions_at_once_write_each_shard_once(s3, make_job, tmp_path):
    url = s3.url(f"{tmp_path.name}/twice.zarr")
    job = to(url, make_job(teacher={"sleep": 0.05}))
    code = ("import json, sys; from armada.extract.job import ExtractJob; from armada.extract.runner import run_extract; "
            "s = run_extract(ExtractJob.from_json(json.loads(sys.argv[1])), show_progress=False); "
            "print(json.dumps([s.shards_written, s.shards_already_done]))")
    runs = [subprocess.Popen([sys.executable, "-c", code, json.dumps(job.to_json())], stdout=subprocess.PIPE, text=True)
            for _ in range(2)]
    counts = [json.loads(run.communicate(timeout=240)[0].splitlines()[-1]) for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    assert sum(written for written, _ in counts) == 6            # 4 train shards, 2 validation: each written once
    local = run_extract(make_job(out="one.zarr"), show_progress=False)
    assert_same_objects(url, local.path)


def test_the_server_going_away_mid_shard_is_named_and_a_rerun_resumes(make_job, tmp_path, monkeypatch, s3):
    from armada.cache_schema import bucket as bucket_module

    own = s3_server.start(tmp_path / "own-server")             # this one is stopped mid-extraction
    try:
        for name, value in own.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(bucket_module, "RETRY_TIMEOUT", bucket_module.timedelta(seconds=1))
        monkeypatch.setenv("ARMADA_CLAIM_SECONDS", "2")
        url = own.url("gone/toy.zarr")
        job = to(url, make_job(teacher={"sleep": 0.2}))

        def stop_after_first_shard():
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if Bucket(url).get("train/features/done/0.json") is not None:
                        break
                except ArmadaError:
                    pass
                time.sleep(0.05)
            own.stop()

        stopper = threading.Thread(target=stop_after_first_shard)
        stopper.start()
        with pytest.raises(ArmadaError) as gone:
            run_extract(job, show_progress=False)
        stopper.join()
        message = str(gone.value)
        assert url in message and "server" in message and "run the same command again" in message
        assert s3_server.SECRET_KEY not in message
    finally:
        own.stop()
    again = s3_server.start(tmp_path / "own-server")            # the same data folder, new ports
    try:
        for name, value in again.env().items():
            monkeypatch.setenv(name, value)
        resumed = run_extract(to(url, make_job()), show_progress=False)
        assert resumed.shards_already_done >= 1
        assert verify(url).clean
        local = run_extract(make_job(out="local.zarr"), show_progress=False)
        assert_same_objects(url, local.path)
    finally:
        again.stop()


def test_rows_are_read_back_from_a_bucket_as_from_a_folder_and_rows_outside_the_split_are_refused(s3):
    """What reuse_from copies from a cache being written: done shards' rows only, rows of the split only."""
    r = rows_for(10, 4)
    url = s3.url("read-rows/c.zarr")
    writer = open_writer(url, manifest_for({"train": r}, 4))
    assert writer.claim("train", 0)
    writer.write_shard("train", 0, r.features[:4], r.ids[:4], r.hashes[:4])
    rows = np.array([3, 0, 3])
    np.testing.assert_array_equal(writer.read_rows("train", rows), r.features[rows].astype(np.float16).astype(np.float32))
    with pytest.raises(ArmadaError, match=r"shard 1 \(rows 4–7\)"):
        writer.read_rows("train", np.array([1, 5]))
    for outside in ([-1, 0], [2, 10]):
        with pytest.raises(ArmadaError, match=rf"{url}: train has rows 0–9; asked for"):
            writer.read_rows("train", np.array(outside))


def test_a_url_where_only_a_path_makes_sense_is_refused(s3):
    with pytest.raises(ArmadaError, match=f"s3://{s3.bucket}/x.h5: an HDF5 file to import must be a local path"):
        import_hdf5(f"s3://{s3.bucket}/x.h5", "out.zarr")


def test_a_student_trains_from_a_bucket_as_from_a_folder(s3, tmp_path):
    """The reader reads a bucket's shards into memory as it reads a folder's (no copy on disk): the features training
    gets are the folder's, bit for bit, and a run trains from the URL, recording it."""
    import distill_tiny as tiny

    from armada.distill.recipe import train
    from armada.tasks import get_task

    name, tables = tiny.file_task(tmp_path / "data", kind="classification")
    task = get_task(f"file:{name}", tables)
    splits = {s: task.load(s) for s in ("train", "validation")}
    folder = tiny.write_cache(tmp_path / "cache.zarr", task, splits)
    url = s3.url(f"{tmp_path.name}/cache.zarr")
    bucket = Bucket(url)
    for key, blob in folder_objects(str(folder)).items():
        bucket.put(key, blob)
    for split in splits.values():
        rows = np.arange(len(split))
        from_folder = CacheReader(folder).load(split.name, split.ids, split.teacher_hashes)[rows]
        from_bucket = CacheReader(url).load(split.name, split.ids, split.teacher_hashes)[rows]
        assert from_bucket.tobytes() == from_folder.tobytes()
    run = tmp_path / "run"
    train(tiny.tiny_config(tiny.make_encoder(tmp_path / "student"), epochs=1), task, url, "", run, variant="armada-cosine")
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "finished" and record["cache"]["path"] == url


def test_a_pipeline_may_keep_its_caches_in_a_bucket_and_reuse_caches_from_one(s3, tmp_path):
    from armada import config
    from armada.extract.job import job_from_config

    shared, empty = s3.url(f"{tmp_path.name}/team"), s3.url(f"{tmp_path.name}/empty")
    found = f"{shared}/glue_cola--piper-whisper.zarr"
    Bucket(found).put(ROOT_KEY, b"{}")                  # job_from_config looks for the root object only
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(f'[extract]\nteacher = "piper-whisper"\ncache_dir = "{s3.url("caches")}/"\n'
                        f'reuse_from = ["{shared}", "{empty}"]\n')
    job = job_from_config(config.load(pipeline), "glue/cola")
    assert job.out == s3.url("caches/glue_cola--piper-whisper.zarr")
    assert job.reuse == (found,)
