"""The extraction runner's mechanics, with a cheap test teacher (tests/extract_fake_teacher.py).

A cache is compared with another by every file a finished cache holds (features shard files,
example ids, text hashes, shard markers with their checksums), byte for byte, except the root
metadata, whose manifest carries its creation time.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from armada.cache_schema import CacheReader, CacheWriter
from armada.cache_schema.layout import ROOT_KEY, all_keys
from armada.errors import ArmadaError
from armada.extract.job import ExtractJob
from armada.extract.runner import run_extract, writing_alone
import launched
from extract_fake_teacher import vector

TESTS = Path(__file__).resolve().parent

# 14 train rows, 6 validation rows; texts repeat within a shard and across shards.
TRAIN = ["a red fox", "a blue sky", "a red fox", "green hills", "tall trees", "a blue sky", "wide rivers",
         "a red fox", "old roads", "tall trees", "new towns", "dark woods", "a blue sky", "cold lakes"]
VALIDATION = ["a red fox", "quiet nights", "quiet nights", "bright days", "soft rain", "a red fox"]


def write_rows(path: Path, texts: list[str], prefix: str) -> str:
    path.write_text("".join(json.dumps({"id": f"{prefix}{i}", "text": t, "label": "x"}) + "\n" for i, t in enumerate(texts)),
                    encoding="utf-8")
    return str(path)


@pytest.fixture
def make_job(tmp_path, monkeypatch):
    """An ExtractJob over a small file: task with the fake teacher; keyword arguments change it."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    train = write_rows(tmp_path / "train.jsonl", TRAIN, "t")
    validation = write_rows(tmp_path / "validation.jsonl", VALIDATION, "v")
    calls = tmp_path / "calls.jsonl"

    def make(out: str = "cache.zarr", teacher: dict | None = None, train_texts: list[str] | None = None, **changes):
        table = {"dim": 6, "calls": str(calls), **(teacher or {})}
        train_file = write_rows(tmp_path / f"train-{out}.jsonl", train_texts, "t") if train_texts else train
        job = ExtractJob(
            teacher="fake", task="file:toy", out=str(tmp_path / out), shard_rows=4, batch_size=2, dtype="float32",
            teacher_tables={"fake": table}, teacher_loader="extract_fake_teacher:load",
            file_tasks={"toy": {"train": train_file, "validation": validation, "text_fields": ["text"],
                                "labels": ["x"], "id_field": "id"}},
        )
        return ExtractJob(**{**job.__dict__, **changes})

    make.calls = calls
    return make


def calls_made(calls: Path) -> list[dict]:
    return [json.loads(line) for line in calls.read_text(encoding="utf-8").splitlines()] if calls.exists() else []


def cache_files(path: str) -> dict[str, bytes]:
    manifest = CacheReader(path).manifest
    return {key: (Path(path) / key).read_bytes() for key in all_keys(manifest) if key != ROOT_KEY}


def assert_same_cache(path: str, expected: str) -> None:
    assert CacheReader(path).manifest.config_hash == CacheReader(expected).manifest.config_hash
    got, want = cache_files(path), cache_files(expected)
    assert got.keys() == want.keys()
    assert [key for key in want if got[key] != want[key]] == []


def load_split(path: str, split: str, texts: list[str], prefix: str) -> np.ndarray:
    from armada.tasks import sha256_text

    features = CacheReader(path).load(split, [f"{prefix}{i}" for i in range(len(texts))], [sha256_text(t) for t in texts])
    return features[np.arange(len(texts))]


def test_every_row_gets_its_texts_vector_and_each_text_is_encoded_once(make_job):
    summary = run_extract(make_job(), show_progress=False)

    for split, texts, prefix in (("train", TRAIN, "t"), ("validation", VALIDATION, "v")):
        features = load_split(summary.path, split, texts, prefix)
        np.testing.assert_array_equal(features, np.stack([vector(t, 6) for t in texts]))
    encoded = [text for call in calls_made(make_job.calls) for text in call["texts"]]
    # Once per text and split: the validation split's "a red fox" is encoded again, not taken from train.
    assert sorted(encoded) == sorted(list(set(TRAIN)) + list(set(VALIDATION)))
    unique = len(set(TRAIN)) + len(set(VALIDATION))
    assert summary.rows_written == len(TRAIN) + len(VALIDATION)
    assert summary.rows_deduplicated == len(TRAIN) + len(VALIDATION) - unique
    assert all(len(call["texts"]) <= 2 for call in calls_made(make_job.calls))   # batch_size


def test_resume_skips_done_shards(make_job):
    first = run_extract(make_job(), show_progress=False)
    before = len(calls_made(make_job.calls))
    again = run_extract(make_job(), show_progress=False)
    assert (again.shards_written, again.shards_already_done) == (0, first.shards_written)
    assert len(calls_made(make_job.calls)) == before


@pytest.mark.parametrize("moment", ["mid-shard", "any"])
def test_kill_9_then_resume_equals_an_uninterrupted_run(make_job, moment):
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    # Shards of 4 rows, batches of 2, duplicates copied: train's 4 shards take calls 1-2, 3, 4-5, 6;
    # validation's two take 7-8, 9. Hanging at call 3 to 6 stops inside a train shard after others are done.
    hang_at = rng.choice([3, 4, 5, 6]) if moment == "mid-shard" else 0
    delay = rng.uniform(0.0, 1.2)
    job = make_job(teacher={"hang_at": hang_at, "sleep": 0.1} if hang_at else {"sleep": 0.1})
    code = "import json, sys; from armada.extract.job import ExtractJob; from armada.extract.runner import run_extract; " \
           "run_extract(ExtractJob.from_json(json.loads(sys.argv[1])), show_progress=False)"
    process = subprocess.Popen([sys.executable, "-c", code, json.dumps(job.to_json())])
    try:
        deadline = time.monotonic() + 120
        while len(calls_made(make_job.calls)) < max(hang_at, 1) and process.poll() is None:
            assert time.monotonic() < deadline, f"no progress (seed {seed})"
            time.sleep(0.02)
        if moment == "any":
            time.sleep(delay)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    writer = CacheWriter.create(job.out, CacheReader(job.out).manifest)
    if moment == "mid-shard":
        done = [writer.is_done("train", s.index) for s in writer.shards("train")]
        assert any(done) and not all(done), f"killed at call {hang_at} (seed {seed}): shards done {done}"

    summary = run_extract(make_job(), show_progress=False)
    uninterrupted = run_extract(make_job(out="uninterrupted.zarr"), show_progress=False)
    assert_same_cache(summary.path, uninterrupted.path)
    if moment == "mid-shard":
        assert summary.shards_already_done >= 1, f"seed {seed}"


def test_two_processes_write_the_same_cache_as_one(make_job):
    two = run_extract(make_job(out="two.zarr", num_processes=2), show_progress=False)
    pids = {call["pid"] for call in calls_made(make_job.calls)}
    one = run_extract(make_job(out="one.zarr"), show_progress=False)

    assert [p.rank for p in two.processes] == [0, 1]
    assert len({p.pid for p in two.processes}) == 2 and os.getpid() not in {p.pid for p in two.processes}
    assert pids == {p.pid for p in two.processes}                 # both encoded texts
    # Shards 0, 2 of each split are rank 0's, shards 1, 3 rank 1's: train has 4 shards, validation 2.
    assert [p.shards_written for p in two.processes] == [3, 3]
    assert two.rows_written == one.rows_written == len(TRAIN) + len(VALIDATION)
    assert_same_cache(two.path, one.path)


def test_non_finite_vectors_stop_extraction_and_leave_the_shard_unmarked(make_job):
    job = make_job(teacher={"nan_text": "old roads"})       # train row 8: shard 2
    with pytest.raises(ArmadaError, match=r"NaN or infinite.*train: t8\b") as error:
        run_extract(job, show_progress=False)
    assert "not marked done" in str(error.value)
    writer = CacheWriter.create(job.out, CacheReader(job.out).manifest)
    assert [writer.is_done("train", i) for i in range(4)] == [True, True, False, False]

    summary = run_extract(make_job(), show_progress=False)   # the teacher fixed: the rest is written
    assert summary.shards_already_done == 2
    np.testing.assert_array_equal(load_split(summary.path, "train", TRAIN, "t")[8], vector("old roads", 6))


def test_an_error_in_a_worker_process_stops_the_run_with_its_message(make_job):
    job = make_job(teacher={"nan_text": "old roads"}, num_processes=2)   # train shard 2: rank 0's
    with pytest.raises(ArmadaError, match=r"NaN or infinite.*train: t8\b"):
        run_extract(job, show_progress=False)
    writer = CacheWriter.create(job.out, CacheReader(job.out).manifest)
    assert not writer.is_done("train", 2)


def test_empty_teacher_texts_are_rejected_before_anything_is_encoded(make_job):
    job = make_job(train_texts=["fine", "  ", "also fine", "\t\n"])
    with pytest.raises(ArmadaError, match=r"2 example\(s\) have an empty or whitespace-only teacher text \(t1, t3\)") as error:
        run_extract(job, show_progress=False)
    assert "teacher_templates" in str(error.value)
    assert calls_made(make_job.calls) == [] and not Path(job.out).exists()


def test_other_teacher_settings_on_an_existing_cache_are_refused_unless_overwritten(make_job):
    run_extract(make_job(), show_progress=False)
    with pytest.raises(ArmadaError, match=r"(?s)teacher\.dim: 6 → 8.*--overwrite"):
        run_extract(make_job(teacher={"dim": 8}), show_progress=False)
    summary = run_extract(make_job(teacher={"dim": 8}, overwrite=True), show_progress=False)
    assert CacheReader(summary.path).manifest.teacher.dim == 8


def test_a_second_extraction_of_a_cache_being_written_is_refused_at_once(make_job):
    """Two writers on one shard lose rows silently: while one extraction holds the cache, another is refused."""
    job = make_job()
    with writing_alone(job.out):
        with pytest.raises(ArmadaError, match=r"cache at .*cache\.zarr is being written by another extraction.*resumes"):
            run_extract(job, show_progress=False)
    assert calls_made(make_job.calls) == [] and not Path(job.out).exists()
    assert run_extract(job, show_progress=False).rows_written == len(TRAIN) + len(VALIDATION)


def test_an_extraction_that_may_wait_starts_only_when_the_other_has_ended(make_job):
    """armada run's way: told that another process holds the cache, it waits for it, then extracts."""
    job = make_job()
    busy, held = threading.Event(), threading.Event()
    encoded_when_told = []

    def other_extraction():
        with writing_alone(job.out):
            held.set()
            busy.wait(timeout=120)

    def when_busy():
        encoded_when_told.append(len(calls_made(make_job.calls)))
        busy.set()

    other = threading.Thread(target=other_extraction)
    other.start()
    assert held.wait(timeout=120)
    summary = run_extract(job, show_progress=False, when_busy=when_busy)
    other.join()
    assert encoded_when_told == [0]         # told once, before a single text was encoded
    assert summary.rows_written == len(TRAIN) + len(VALIDATION)


def test_torchrun_processes_share_the_shards(make_job, tmp_path):
    """Processes started by a launcher find their rank in its environment; the cache equals one process's."""
    job = make_job(out="launched.zarr")
    script = tmp_path / "launched.py"
    script.write_text(
        "import json, sys\n"
        "from armada.extract.job import ExtractJob\n"
        "from armada.extract.runner import run_extract\n"
        "summary = run_extract(ExtractJob.from_json(json.loads(sys.argv[1])), show_progress=False)\n"
        "if summary is not None:\n"
        "    print(json.dumps([p.pid for p in summary.processes]))\n",
        encoding="utf-8",
    )
    torchrun = Path(sys.executable).parent / "torchrun"
    with launched.started([torchrun, "--standalone", "--nproc_per_node", "2", script, json.dumps(job.to_json())],
                          tmp_path / "torchrun.log") as command:
        assert command.wait(timeout=300) == 0, command.output()[-3000:]
        assert not command.alive()
    pids = json.loads(next(line for line in reversed(command.output().splitlines()) if line.startswith("[")))
    assert len(set(pids)) == 2
    assert {call["pid"] for call in calls_made(make_job.calls)} == set(pids)
    one = run_extract(make_job(out="one.zarr"), show_progress=False)
    assert_same_cache(job.out, one.path)


def test_started_processes_and_a_launcher_cannot_be_combined(make_job, monkeypatch):
    from armada.extract import processes

    monkeypatch.setattr(processes, "launched", lambda: processes.Launched(rank=0, world=2))
    with pytest.raises(ArmadaError, match="use one or the other"):
        run_extract(make_job(num_processes=2), show_progress=False)


def test_a_cache_extended_to_more_rows_encodes_only_the_texts_another_cache_lacks(make_job):
    """The rows a smaller cache of the same teacher holds are copied, from any of its splits; the result is the
    cache a fresh extraction writes, byte for byte, and two processes share the work as one does."""
    small = run_extract(make_job(out="small.zarr", splits=("train",), limits={"train": 8}), show_progress=False)
    make_job.calls.unlink()
    extended = run_extract(make_job(out="extended.zarr", reuse=(small.path,), num_processes=2), show_progress=False)

    held = set(TRAIN[:8])
    encoded = [text for call in calls_made(make_job.calls) for text in call["texts"]]
    assert sorted(encoded) == sorted([*set(TRAIN[8:]) - held, *set(VALIDATION) - held])
    assert extended.rows_reused == sum(text in held for text in TRAIN + VALIDATION)
    assert extended.rows_written == len(TRAIN) + len(VALIDATION)
    assert_same_cache(extended.path, run_extract(make_job(out="fresh.zarr"), show_progress=False).path)


def test_a_cache_of_other_teacher_settings_is_not_reused(make_job):
    small = run_extract(make_job(out="small.zarr", teacher={"dim": 8}), show_progress=False)
    make_job.calls.unlink()
    job = make_job(reuse=(small.path,))
    with pytest.raises(ArmadaError, match=r"small\.zarr was made with other teacher or storage settings.*teacher\.dim: 8 → 6"):
        run_extract(job, show_progress=False)
    assert calls_made(make_job.calls) == [] and not Path(job.out).exists()


def test_a_pipeline_reuses_the_cache_of_the_same_name_in_its_reuse_from_folders(tmp_path):
    from armada import config
    from armada.extract.job import job_from_config

    shared, empty = tmp_path / "team-cache", tmp_path / "empty"
    (shared / "glue_cola--piper-whisper.zarr").mkdir(parents=True)
    empty.mkdir()
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(f'[extract]\nteacher = "piper-whisper"\nreuse_from = ["{shared}", "{empty}"]\n')
    job = job_from_config(config.load(pipeline), "glue/cola", reuse=("other.zarr",))
    assert job.reuse == ("other.zarr", str(shared / "glue_cola--piper-whisper.zarr"))


@pytest.mark.parametrize("processes", [1, 2])
def test_ctrl_c_keeps_the_finished_shards_and_says_how_to_resume(make_job, processes):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) mid-extraction: one message saying how to
    resume, no worker's traceback, and the same command then finishes the cache as an uninterrupted run writes it."""
    job = make_job(teacher={"hang_at": 5}, num_processes=processes)
    code = "import json, sys; from armada.extract.job import ExtractJob; from armada.extract.runner import run_extract\n" \
           "try:\n    run_extract(ExtractJob.from_json(json.loads(sys.argv[1])), show_progress=False)\n" \
           "except KeyboardInterrupt:\n    sys.exit(130)"
    process = subprocess.Popen([sys.executable, "-c", code, json.dumps(job.to_json())], stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while len(calls_made(make_job.calls)) < 5 and process.poll() is None:
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert f"interrupted: the finished shards of {job.out} are kept; run the same command again to resume" in stderr
    assert "Traceback" not in stderr, stderr

    summary = run_extract(make_job(), show_progress=False)
    assert_same_cache(summary.path, run_extract(make_job(out="uninterrupted.zarr"), show_progress=False).path)
