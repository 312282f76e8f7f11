"""Every bad input of the distill stage is a clear ArmadaError, and nothing is trained on wrong data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import distill_tiny as tiny
from armada.config import DistillConfig
from armada.distill.recipe import train
from armada.errors import ArmadaError
from armada.tasks import get_task


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> Path:
    return tiny.make_encoder(tmp_path_factory.mktemp("students") / "encoder")


def _setup(root: Path, **task_options):
    name, tables = tiny.file_task(root / "data", **task_options)
    task = get_task(f"file:{name}", tables)
    splits = {s: task.load(s) for s in ("train", "validation")}
    return task, tables, splits


def _edit_train_row(task, tables, index: int, **changes) -> None:
    path = Path(tables[task.name[5:]].train)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[index].update(changes)
    tiny.write_rows(path, rows)


def _refused(config, task, cache, out: Path, match: str, data_dir: str = "") -> None:
    with pytest.raises(ArmadaError, match=match):
        train(config, task, str(cache) if cache else None, data_dir, out)
    assert not out.exists()         # refused before anything was written or trained


def test_a_cache_without_an_example_is_refused_naming_it(tmp_path, encoder):
    task, tables, splits = _setup(tmp_path)
    cache = tiny.write_cache(tmp_path / "cache.zarr", task, splits)
    _edit_train_row(task, tables, 3, id="renamed-row")
    _refused(tiny.tiny_config(encoder), task, cache, tmp_path / "run", "renamed-row")


def test_a_cache_of_other_teacher_texts_is_refused_naming_the_examples(tmp_path, encoder):
    task, tables, splits = _setup(tmp_path)
    cache = tiny.write_cache(tmp_path / "cache.zarr", task, splits)
    _edit_train_row(task, tables, 5, text="good movie and a very different text")
    _refused(tiny.tiny_config(encoder), task, cache, tmp_path / "run", r"teacher text changed for 1 examples: train-5")


def test_a_cache_for_another_task_is_refused(tmp_path, encoder):
    task, _, splits = _setup(tmp_path)
    other, _, other_splits = _setup(tmp_path / "other", kind="regression")
    cache = tiny.write_cache(tmp_path / "cache.zarr", other, other_splits)
    _refused(tiny.tiny_config(encoder), task, cache, tmp_path / "run", "holds 'file:tiny-regression', not 'file:tiny-classification'")


def test_a_missing_cache_is_refused(tmp_path, encoder):
    task, _, _ = _setup(tmp_path)
    _refused(tiny.tiny_config(encoder), task, tmp_path / "nowhere.zarr", tmp_path / "run", "no cache at")


def test_an_unfinished_cache_is_refused(tmp_path, encoder):
    task, _, splits = _setup(tmp_path)
    cache = tiny.write_cache(tmp_path / "cache.zarr", task, splits, finish=False)
    _refused(tiny.tiny_config(encoder), task, cache, tmp_path / "run", "unfinished")


def test_armada_needs_a_cache(tmp_path, encoder):
    task, _, _ = _setup(tmp_path)
    _refused(tiny.tiny_config(encoder), task, None, tmp_path / "run", "give --cache PATH")


def test_a_student_unreachable_offline_is_refused(tmp_path):
    task, _, _ = _setup(tmp_path)
    _refused(DistillConfig(student="armada-tests/no-such-model", undistilled=True, batch_size=4), task, None,
             tmp_path / "run", "cannot be loaded")


def test_a_label_outside_the_label_set_is_refused(tmp_path, encoder):
    task, tables, _ = _setup(tmp_path)
    _edit_train_row(task, tables, 2, label="maybe")
    _refused(tiny.tiny_config(encoder, undistilled=True), task, None, tmp_path / "run", r"label 'maybe'.*not in the task's label set")


def test_a_batch_larger_than_the_data_is_refused(tmp_path, encoder):
    task, _, _ = _setup(tmp_path)
    _refused(tiny.tiny_config(encoder, undistilled=True, batch_size=25), task, None, tmp_path / "run",
             "--batch-size 25 is larger than the 24 training examples")


def test_fp16_without_a_gpu_is_refused(tmp_path, encoder):
    task, _, _ = _setup(tmp_path)
    _refused(tiny.tiny_config(encoder, undistilled=True, mixed_precision="fp16"), task, None, tmp_path / "run", "needs a GPU")


def test_a_run_directory_is_not_overwritten_nor_resumed_with_other_settings(tmp_path, encoder):
    task, _, _ = _setup(tmp_path)
    out = tmp_path / "run"
    config = tiny.tiny_config(encoder, undistilled=True, epochs=1)
    train(config, task, None, "", out)
    with pytest.raises(ArmadaError, match="already holds a run; pass --resume"):
        train(config, task, None, "", out)
    (out / "run.json").write_text((out / "run.json").read_text().replace('"finished"', '"running"'))
    with pytest.raises(ArmadaError, match=r"other settings:\n  distill.lr: 0.001 → 0.002"):
        train(tiny.tiny_config(encoder, undistilled=True, epochs=1, lr=2e-3), task, None, "", out, resume=True)


def test_a_run_another_process_is_training_is_refused_until_it_ends(tmp_path, encoder):
    task, _, _ = _setup(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", tiny.HOLD_THE_FOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"       # as a training process holds its run folder
        config = tiny.tiny_config(encoder, undistilled=True, epochs=1)
        with pytest.raises(ArmadaError, match="being trained by another process right now"):
            train(config, task, None, "", out, resume=True)
        assert not any(out.iterdir())                                # nothing written beside the other process
    finally:
        holder.kill()
        holder.wait()
    assert train(config, task, None, "", out, resume=True).status == "finished"   # free again once it ended



def test_the_cli_prints_the_error_without_a_traceback(tmp_path):
    armada = Path(sys.executable).with_name("armada")
    done = subprocess.run([str(armada), "distill", "--cache", str(tmp_path / "nowhere.zarr"), "--student", "minilm-l6"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: no cache at") and "Traceback" not in done.stderr
    done = subprocess.run([str(armada), "distill", "--student", "minilm-l6"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "give --cache PATH" in done.stderr
