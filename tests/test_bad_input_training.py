"""Bad input met while training, resuming and scoring (issue 27): a loss that stops being finite, damaged
checkpoints and students, a --max-length past the student's positions, a first epoch that crashed, --resume
that finds nothing or a finished run with other settings, Ctrl-C, and a cache reached from another folder."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w
import torch

import distill_tiny as tiny
from armada import config as config_module
from armada.distill.inputs import check_resume
from armada.distill.loop import NonFiniteTraining, refuse_non_finite_weights
from armada.distill.recipe import train
from armada.errors import ArmadaError
from armada.eval.evaluate import evaluate_run
from armada.run_schema import RunFolder
from armada.tasks import get_task


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny encoder, a file task, its cache, and one finished 1-epoch run trained from its own folder with the
    cache given by a relative path (as a user in that folder would)."""
    root = tmp_path_factory.mktemp("bad-training")
    encoder = tiny.make_encoder(root / "encoder")
    name, tables = tiny.file_task(root / "data")
    task = get_task(f"file:{name}", tables)
    splits = {s: task.load(s) for s in ("train", "validation")}
    tiny.write_cache(root / "work" / "cache.zarr", task, splits)
    here = os.getcwd()
    os.chdir(root / "work")
    try:
        train(tiny.tiny_config(encoder, epochs=1), task, "cache.zarr", "", root / "finished")
    finally:
        os.chdir(here)
    return {"root": root, "encoder": encoder, "task": task, "tables": tables, "cache": root / "work" / "cache.zarr",
            "finished": root / "finished"}


def _copy_run(setup, tmp_path, status: str | None = None) -> Path:
    run = tmp_path / "run"
    shutil.copytree(setup["finished"], run)
    if status:
        record = json.loads((run / "run.json").read_text())
        record["status"] = status
        (run / "run.json").write_text(json.dumps(record))
    return run


# --- non-finite training ------------------------------------------------------------------------

def test_a_nan_loss_stops_training_naming_epoch_step_and_term_and_a_corrected_rerun_takes_the_folder(setup, tmp_path, capsys):
    out = tmp_path / "run"
    # Constructed directly, the settings skip the config's checks: the training loop is the second line.
    with pytest.raises(NonFiniteTraining, match=r"epoch 1/2 aligner, step 1 of 6: the loss_t loss is nan|"
                                                r"epoch 1/2 student, step 1 of 6: the (loss_s|manifold) loss is nan"):
        train(tiny.tiny_config(setup["encoder"], beta=math.nan), setup["task"], str(setup["cache"]), "", out)
    assert json.loads((out / "run.json").read_text())["status"] == "failed"
    assert not (out / "student").exists() and not (out / "metrics.jsonl").exists()
    assert not any((out / "checkpoints").glob("epoch-*")) if (out / "checkpoints").exists() else True

    result = train(tiny.tiny_config(setup["encoder"], epochs=1), setup["task"], str(setup["cache"]), "", out)
    assert "holds no finished epoch of an earlier attempt" in capsys.readouterr().out
    assert result.status == "finished" and json.loads((out / "run.json").read_text())["status"] == "finished"


def test_weights_that_are_not_finite_are_never_kept():
    model = torch.nn.Linear(2, 2)
    refuse_non_finite_weights("epoch 3/5", {"student": model, "aligner": None})
    with torch.no_grad():
        model.bias[1] = math.inf
    with pytest.raises(NonFiniteTraining, match=r"epoch 3/5: the student's bias holds values that are not finite"):
        refuse_non_finite_weights("epoch 3/5", {"student": model})


# --- checksums: checkpoints and the kept student ------------------------------------------------

def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flipped", "truncated"])
def test_a_resume_refuses_a_damaged_checkpoint_naming_the_file(setup, tmp_path, damage):
    run = _copy_run(setup, tmp_path, status="running")      # as a run killed after its last checkpoint leaves it
    weights = run / "checkpoints" / "epoch-0001" / "student.safetensors"
    if damage == "flipped":
        _flip_a_byte(weights)
    else:
        weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ArmadaError, match=rf"{weights}.*(SHA-256|bytes where).*it was not used. Remove .*epoch-0001"):
        train(tiny.tiny_config(setup["encoder"], epochs=1), setup["task"], str(setup["cache"]), "", run, resume=True)


@pytest.mark.parametrize("damage", ["flipped", "truncated"])
def test_eval_refuses_a_damaged_student_and_aligner(setup, tmp_path, damage):
    run = _copy_run(setup, tmp_path)
    for path, aligner in ((run / "student" / "model.safetensors", False), (run / "aligner.safetensors", True)):
        original = path.read_bytes()
        if damage == "flipped":
            _flip_a_byte(path)
        else:
            path.write_bytes(original[: len(original) // 2])
        with pytest.raises(ArmadaError, match=rf"{path}.*it was not used"):
            evaluate_run(run, aligner=aligner, file_tasks=setup["tables"], cache=str(setup["cache"]) if aligner else None)
        path.write_bytes(original)


def test_a_student_saved_before_checksums_is_still_checked_for_truncation(setup, tmp_path):
    run = _copy_run(setup, tmp_path)
    (run / "student" / "armada_checksums.json").unlink()
    assert evaluate_run(run, file_tasks=setup["tables"]).scores is not None
    model = run / "student" / "model.safetensors"
    model.write_bytes(model.read_bytes()[:-64])
    with pytest.raises(ArmadaError, match=rf"{model} has \d+ bytes where its header describes"):
        evaluate_run(run, file_tasks=setup["tables"])


# --- settings refused before training -----------------------------------------------------------

def test_a_max_length_past_the_students_positions_is_refused_before_training(setup, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ArmadaError, match=r"--max-length 200: student .* takes at most 128 tokens per input"):
        train(tiny.tiny_config(setup["encoder"], max_length=200), setup["task"], str(setup["cache"]), "", out)
    assert not out.exists()


# --- resume ------------------------------------------------------------------------------------

def test_resume_says_when_there_is_nothing_to_resume(setup, tmp_path, capsys):
    check_resume(RunFolder(tmp_path / "typo"), tiny.tiny_config(setup["encoder"]))
    assert "holds no run to resume; starting a new one there" in capsys.readouterr().out


def test_resume_of_a_finished_run_with_new_settings_is_refused_naming_them(setup, capsys):
    folder = RunFolder(setup["finished"])
    check_resume(folder, tiny.tiny_config(setup["encoder"], epochs=1))      # the same settings: returned as it is
    with pytest.raises(ArmadaError, match=r"finished run, trained with other settings.*\n  distill.epochs: 1 → 5\n"
                                          r"  distill.lr: 0.001 → 0.0003\n.*choose another --out"):
        check_resume(folder, tiny.tiny_config(setup["encoder"], epochs=5, lr=3e-4))


# --- eval --aligner from another folder --------------------------------------------------------

def test_eval_aligner_finds_the_cache_from_another_folder_and_takes_cache_where_it_moved(setup, tmp_path, monkeypatch):
    run = _copy_run(setup, tmp_path)
    monkeypatch.chdir(tmp_path)                 # not where the run was trained: "cache.zarr" means nothing here
    assert json.loads((run / "run.json").read_text())["cache"]["path"] == "cache.zarr"
    assert evaluate_run(run, aligner=True, file_tasks=setup["tables"]).scores is not None

    moved = tmp_path / "moved.zarr"
    shutil.copytree(setup["cache"], moved)
    record = json.loads((run / "run.json").read_text())
    record["cache"]["absolute_path"] = str(tmp_path / "gone.zarr")
    (run / "run.json").write_text(json.dumps(record))
    with pytest.raises(ArmadaError, match=r"cannot be opened: no cache at cache.zarr.*; no cache at .*gone.zarr.*; give its place with --cache PATH"):
        evaluate_run(run, aligner=True, file_tasks=setup["tables"])
    assert evaluate_run(run, aligner=True, file_tasks=setup["tables"], cache=str(moved)).scores is not None
    with pytest.raises(ArmadaError, match="--cache .* with --aligner only"):
        evaluate_run(run, file_tasks=setup["tables"], cache=str(moved))


# --- Ctrl-C -----------------------------------------------------------------------------------

def test_ctrl_c_during_distill_records_the_interruption_and_says_how_to_resume(setup, tmp_path):
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(tomli_w.dumps({"tasks": {n: config_module.to_dict(t) for n, t in setup["tables"].items()}}))
    out = tmp_path / "run"
    command = [str(Path(sys.executable).with_name("armada")), "distill", "--cache", str(setup["cache"]), "--student",
               str(setup["encoder"]), "--config", str(pipeline), "--epochs", "50", "--batch-size", "4",
               "--projection-dim", "16", "--aligner-hidden", "24", "--max-length", "32", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 300
    while not (out / "metrics.jsonl").is_file():
        assert process.poll() is None and time.time() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr       # typer's exit code for Ctrl-C
    assert "Traceback" not in stderr
    assert "interrupted: " in stdout and "run the same command with --resume" in stdout
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    with pytest.raises(ArmadaError, match=r"not finished \(status 'interrupted'\).*--resume"):
        RunFolder(out).read_finished()
