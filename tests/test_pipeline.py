"""`armada run` through the real CLI on configs/debug.toml: every stage, interrupted and resumed."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w

import distill_tiny as tiny
from armada import config
from armada.errors import ArmadaError
from armada.pipeline import plan, run_pipeline

ROOT = Path(__file__).resolve().parents[1]
ARMADA = Path(sys.executable).with_name("armada")


def _command(tmp_path: Path, *sets: str) -> list[str]:
    command = [str(ARMADA), "run", str(ROOT / "configs" / "debug.toml"),
               "--set", f'run.runs_dir="{tmp_path / "runs"}"', "--set", f'run.report_dir="{tmp_path / "report"}"',
               "--set", f'extract.cache_dir="{tmp_path / "cache"}"']
    for setting in sets:
        command += ["--set", setting]
    return command


def _status(run: Path) -> str | None:
    try:
        return json.loads((run / "run.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        return None


def test_plan_lays_runs_out_by_task_variant_and_seed():
    cfg = config.load(ROOT / "configs" / "debug.toml")
    runs = plan(cfg)
    assert [(r.variant.name, r.seed) for r in runs] == [("undistilled", 0), ("undistilled", 1),
                                                         ("armada-cosine", 0), ("armada-cosine", 1)]
    assert runs[2].out == Path("runs/debug/bbc-news/armada-cosine/seed-0")


@pytest.mark.slow
def test_interrupted_run_resumes_without_redoing_finished_runs_then_reports(tmp_path):
    one_seed = "run.seeds=[0]"                  # two runs: undistilled, then armada-cosine
    cfg = config.load(ROOT / "configs" / "debug.toml", [one_seed])
    runs = [tmp_path / r.out for r in plan(cfg)]
    assert len(runs) == 2
    env = {**os.environ, "TQDM_DISABLE": "1"}

    # Kill the whole process group once the first run is finished and the second has begun.
    first = subprocess.Popen(_command(tmp_path, one_seed), cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
    deadline = time.time() + 600
    while not (_status(runs[0]) == "finished" and _status(runs[1]) == "running"):
        assert first.poll() is None, first.stdout.read()
        assert time.time() < deadline, "the first run did not finish in time"
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    finished_record = (runs[0] / "run.json").read_bytes()
    finished_metrics = (runs[0] / "metrics.jsonl").read_bytes()
    finished_mtime = (runs[0] / "run.json").stat().st_mtime_ns

    second = subprocess.run(_command(tmp_path, one_seed), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stdout + second.stderr
    out = second.stdout
    assert "the cache was already complete" in out                     # extraction skipped, not redone
    assert f"{runs[0]} is already finished" in out                     # the finished run was not trained again
    assert (runs[0] / "run.json").read_bytes() == finished_record
    assert (runs[0] / "run.json").stat().st_mtime_ns == finished_mtime
    assert (runs[0] / "metrics.jsonl").read_bytes() == finished_metrics

    for run in runs:
        record = json.loads((run / "run.json").read_text())
        assert record["status"] == "finished" and record["epochs"] == 2
        lines = (run / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["epoch"] for line in lines] == [1, 2]     # no epoch twice after the resume
        scores = json.loads((run / "eval" / "validation.json").read_text())
        assert scores["examples"] == 16 and scores["scores"]["accuracy"] == record["best_dev"]
        assert (run / "eval" / "validation-aligner.json").is_file() == (not record["undistilled"])

    report = tmp_path / "report" / "debug"
    results = (report / "results.md").read_text()
    assert "armada-cosine" in results and "undistilled" in results and "bbc-news" in results
    assert (report / "results.csv").is_file()
    assert any(p.suffix == ".png" and p.stat().st_size > 0 for p in report.iterdir())
    assert f"report: {report / 'results.md'}" in out
    # Beside the report: the resolved pipeline (the --set overrides in it) and how it was made.
    resolved = config.load(report / "pipeline.toml")
    assert resolved.digest() == config.load(ROOT / "configs" / "debug.toml", _command(tmp_path, one_seed)[4::2]).digest()
    made = json.loads((report / "provenance.json").read_text())
    assert made["command"][:3] == ["armada", "run", str(ROOT / "configs" / "debug.toml")]
    assert made["versions"]["torch"].startswith("2.13.0") and made["machine"]["cpu_cores"] >= 1 and made["seconds"] > 0

    verify = subprocess.run([str(ARMADA), "cache", "verify", str(tmp_path / "cache" / "bbc-news--piper-whisper.zarr")],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_runs_another_process_is_training_are_left_to_it(tmp_path):
    name, tables = tiny.file_task(tmp_path / "data")
    spec = tables[name]
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(tomli_w.dumps({
        "run": {"name": "shared", "tasks": [f"file:{name}"], "seeds": [0, 1], "runs_dir": str(tmp_path / "runs"),
                "report_dir": str(tmp_path / "report")},
        "distill": {"student": str(tiny.make_encoder(tmp_path / "encoder")), "epochs": 1, "batch_size": 4,
                    "max_length": 32, "lr": 1e-3},
        "tasks": {name: {"train": spec.train, "validation": spec.validation, "labels": list(spec.labels),
                         "id_field": "id", "metric": "accuracy"}},
        "variants": [{"name": "undistilled", "undistilled": True}],
    }))
    cfg = config.load(pipeline)
    busy, free = (r.out for r in plan(cfg))
    busy.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", tiny.HOLD_THE_FOLDER, str(busy)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"        # as another `armada run` training seed 0
        said = []
        run_pipeline(cfg, say=said.append)
        assert "another process is training it" in said[said.index(next(s for s in said if str(busy) in s)) + 1]
        assert not any(busy.iterdir())                              # left to the other process, untouched
        assert _status(free) == "finished" and (free / "eval" / "validation.json").is_file()
    finally:
        holder.kill()
        holder.wait()
    run_pipeline(cfg, say=lambda line: None)                        # once it is free, it is trained
    assert _status(busy) == "finished"


@pytest.mark.slow
def test_runs_train_in_several_processes_each_run_once_and_a_failure_names_its_process(tmp_path, capfd):
    name, tables = tiny.file_task(tmp_path / "data")
    spec = tables[name]
    student = str(tiny.make_encoder(tmp_path / "encoder"))

    def pipeline(student: str, max_length: int = 32) -> config.PipelineConfig:
        path = tmp_path / "pipeline.toml"
        path.write_text(tomli_w.dumps({
            "run": {"name": "parallel", "tasks": [f"file:{name}"], "seeds": [0, 1, 2], "processes": 2,
                    "runs_dir": str(tmp_path / "runs"), "report_dir": str(tmp_path / "report")},
            "distill": {"student": student, "epochs": 1, "batch_size": 4, "max_length": max_length, "lr": 1e-3},
            "tasks": {name: {"train": spec.train, "validation": spec.validation, "labels": list(spec.labels),
                             "id_field": "id", "metric": "accuracy"}},
            "variants": [{"name": "undistilled", "undistilled": True}],
        }))
        return config.load(path)

    with pytest.raises(ArmadaError, match=r"no-such-student'?: no such folder"):     # refused before any process starts
        run_pipeline(pipeline(str(tmp_path / "no-such-student")), say=lambda line: None)
    # What only training can refuse (a max_length past the student's 128 positions) fails in every process.
    with pytest.raises(ArmadaError, match=r"training process \[1\] \(exit code 2\), \[2\] \(exit code 2\) failed"):
        run_pipeline(pipeline(student, max_length=200), say=lambda line: None)
    assert "[1] error: " in capfd.readouterr().err

    said = []
    cfg = pipeline(student)
    run_pipeline(cfg, say=said.append)
    out, err = capfd.readouterr()
    assert "epoch 1/1" not in err                   # no progress bars: two processes' bars would draw over each other
    threads = max(1, len(os.sched_getaffinity(0)) // 2)
    assert f"== training 3 runs in 2 processes, {threads} torch thread{'s' * (threads > 1)} each" in said
    for run in plan(cfg):
        assert _status(run.out) == "finished" and (run.out / "eval" / "validation.json").is_file()
        assert len((run.out / "metrics.jsonl").read_text().splitlines()) == 1
        assert sum(f"seed {run.seed} → {run.out}" in line for line in out.splitlines()) == 1   # taken by one process
    lines = [line for line in out.splitlines() if line]
    assert all(line.startswith(("[1] ", "[2] ")) for line in lines), lines
    assert (tmp_path / "report" / "parallel" / "results.md").is_file()


def test_every_name_and_path_is_checked_before_any_work(tmp_path):
    """An unknown student (or teacher, or a missing path) in the last run is refused before the first extraction."""
    base = ["run.seeds=[0]", f'run.runs_dir="{tmp_path / "runs"}"', f'run.report_dir="{tmp_path / "report"}"',
            f'extract.cache_dir="{tmp_path / "cache"}"']
    cases = [
        ('distill.student="no-such-student-27"', r"student 'no-such-student-27' .* cannot be loaded"),
        ('extract.teacher="no-such-teacher"', r"unknown teacher 'no-such-teacher'"),
        (f'data.data_dir="{tmp_path / "missing"}"', r"the data folder of bbc-news, .*missing, does not exist"),
        (f'extract.reuse_from=["{tmp_path / "nowhere"}"]', r"extract.reuse_from names .*nowhere"),
    ]
    for setting, message in cases:
        cfg = config.load(ROOT / "configs" / "debug.toml", [*base, setting])
        with pytest.raises(ArmadaError, match=message):
            run_pipeline(cfg, say=lambda line: None)
        assert not (tmp_path / "cache").exists() and not (tmp_path / "runs").exists()
