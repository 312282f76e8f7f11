"""armada probe on tiny real caches: a teacher that carries the labels, and one that carries noise."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from armada.cli import app
from armada.errors import ArmadaError
from armada.eval.probe import ProbeResult, probe_cache, probe_scores
from armada.tasks import get_task
from distill_tiny import file_task, label_vectors, make_encoder, write_cache


def noise_vectors(split, dim: int) -> np.ndarray:
    return np.random.default_rng(7).normal(size=(len(split), dim)).astype(np.float32)


def regression_vectors(split, dim: int) -> np.ndarray:
    out = np.random.default_rng(3).normal(0, 0.3, size=(len(split), dim)).astype(np.float32)
    out[:, 0] += np.asarray(split.labels, dtype=np.float32)
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("probe")
    name, tasks = file_task(folder / "data", train=60, validation=40)
    name = f"file:{name}"
    task = get_task(name, tasks)
    splits = {s: task.load(s) for s in ("train", "validation")}
    caches = {kind: write_cache(folder / f"{kind}.zarr", task, splits, dim=8, vectors=vectors)
              for kind, vectors in (("labels", label_vectors), ("noise", noise_vectors))}
    return name, tasks, caches


def test_a_teacher_that_carries_the_labels_is_above_chance_and_its_shuffled_control_is_at_chance(tiny):
    name, tasks, caches = tiny
    result = probe_cache(str(caches["labels"]), name, student="", file_tasks=tasks)
    teacher, shuffled = result.score("teacher"), result.score("shuffled")
    assert (result.train_rows, result.dev_rows, result.metric, result.chance) == (60, 40, "accuracy", 50.0)
    assert teacher.dev == 100.0 and teacher.cv_low > 90 and not result.teacher_at_chance
    assert shuffled.at_chance(result.chance) and shuffled.dev_low < 50 < teacher.dev_low
    assert "above chance" in result.verdict()


def test_a_teacher_that_carries_noise_is_named_at_chance(tiny):
    name, tasks, caches = tiny
    result = probe_cache(str(caches["noise"]), name, student="", file_tasks=tasks)
    assert result.teacher_at_chance and result.score("student") is None
    assert "at chance" in result.verdict() and "at chance" in result.table()


def test_a_regression_probe_scores_pearson_r_against_zero(tmp_path):
    name, tasks = file_task(tmp_path / "data", kind="regression", train=40, validation=20)
    name = f"file:{name}"
    task = get_task(name, tasks)
    cache = write_cache(tmp_path / "c.zarr", task, {s: task.load(s) for s in ("train", "validation")},
                        vectors=regression_vectors)
    result = probe_cache(str(cache), name, student="", file_tasks=tasks)
    assert (result.metric, result.chance) == ("pearson", 0.0)
    assert result.score("teacher").dev > 90 and result.score("shuffled").at_chance(0.0)


def test_the_command_prints_the_three_probes_and_writes_json_that_reads_back(task_files, tmp_path):
    task, data_dir = get_task("glue/rte"), str(task_files / "glue")
    cache = write_cache(tmp_path / "rte.zarr", task, {s: task.load(s, data_dir=data_dir) for s in ("train", "validation")})
    student = make_encoder(tmp_path / "student")
    result = CliRunner().invoke(app, ["probe", str(cache), "--dataset", "glue/rte", "--data-dir", data_dir,
                                      "--student", str(student), "--folds", "2", "--out", str(tmp_path / "p.json")])
    assert result.exit_code == 0, result.output
    assert "teacher fake (8-d)" in result.output and "student" in result.output and "labels shuffled" in result.output
    saved = ProbeResult.read(tmp_path / "p.json")
    assert saved.score("student").dev is not None and saved.score("student").strength > 0
    assert [s.probe for s in saved.scores] == ["teacher", "student", "shuffled"] and saved.task == "glue/rte"
    assert json.loads((tmp_path / "p.json").read_text())["train_rows"] == len(task.load("train", data_dir=data_dir))


def test_a_cache_of_another_task_or_too_few_rows_per_label_is_refused(tiny, tmp_path):
    name, tasks, caches = tiny
    with pytest.raises(ArmadaError, match="holds"):
        probe_cache(str(caches["labels"]), "glue/rte", student="")
    with pytest.raises(ArmadaError, match="fewer than the 50 folds"):
        probe_cache(str(caches["labels"]), name, student="", folds=50, file_tasks=tasks)


def test_a_cross_validated_interval_stays_within_the_scores_range():
    """Folds of 100, 100, 100, 100 and 75 would give a t-interval of [81, 109]: accuracy has no 109."""
    labels = np.array([0, 1] * 10)
    features = labels[:, None].astype(np.float32) + np.random.default_rng(0).normal(0, 0.01, size=(20, 2))
    noisy = labels.copy()
    noisy[0] = 1                                # one mislabelled row: its fold scores 75, the others 100
    score = probe_scores("teacher", features, noisy, None, None, regression=False, folds=5, seed=0)
    assert 90 <= score.cv < 100 and score.cv_high == 100.0 and score.cv_low < score.cv
