"""`armada eval` and `armada report --analysis` on real runs of a tiny student: RTE rows as published (the fixtures),
a real cache of made-up teacher vectors, trained by armada.distill."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import distill_tiny as tiny
from armada.distill.recipe import train
from armada.errors import ArmadaError
from armada.reporting.analysis import EmbeddingView, score_view
from armada.eval.evaluate import evaluate_run, predict_student
from armada.reporting.results import write_report
from armada.tasks import get_task

LIMIT = 16


@pytest.fixture(scope="module")
def runs(tmp_path_factory, task_files) -> dict[str, Path]:
    """An ARMADA run and an undistilled one of the tiny encoder on 16 RTE rows, seed 0."""
    root = tmp_path_factory.mktemp("eval")
    student = tiny.make_encoder(root / "student")
    task, data_dir = get_task("glue/rte"), str(task_files / "glue")
    splits = {s: task.load(s, data_dir=data_dir, limit=LIMIT) for s in ("train", "validation")}
    cache = tiny.write_cache(root / "cache.zarr", task, splits)
    out = {"armada-euclid": root / "runs" / "rte-euclid", "undistilled": root / "runs" / "rte-undistilled"}
    train(tiny.tiny_config(student), task, str(cache), data_dir, out["armada-euclid"], variant="armada-euclid")
    train(tiny.tiny_config(student, undistilled=True), task, str(cache), data_dir, out["undistilled"], variant="undistilled")
    return out


def best_epoch(run: Path) -> dict:
    record = json.loads((run / "run.json").read_text())
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return next(line for line in lines if line["epoch"] == record["best_epoch"])


def test_eval_scores_the_best_student_on_the_runs_own_dev_rows_and_writes_predictions(runs, task_files):
    run = runs["armada-euclid"]
    result = evaluate_run(run)
    assert result.examples == LIMIT                     # the run's validation limit, read from its config.toml
    assert result.scores == pytest.approx(best_epoch(run)["dev"], abs=1e-3)
    saved = json.loads((run / "eval" / "validation.json").read_text())
    assert saved["scores"] == result.scores and saved["scorer"] == "student" and saved["metric"] == "accuracy"
    rows = [json.loads(line) for line in (run / "eval" / "predictions-validation.jsonl").read_text().splitlines()]
    split = get_task("glue/rte").load("validation", data_dir=str(task_files / "glue"), limit=LIMIT)
    assert [r["id"] for r in rows] == split.ids and [r["label"] for r in rows] == split.labels
    assert all(len(r["logits"]) == 2 and r["prediction"] == int(np.argmax(r["logits"])) for r in rows)
    assert np.mean([r["prediction"] == r["label"] for r in rows]) == pytest.approx(result.scores["accuracy"])


def test_eval_of_the_aligner_alone_matches_its_dev_scores_during_training(runs):
    run = runs["armada-euclid"]
    result = evaluate_run(run, aligner=True)
    assert result.scorer == "aligner"
    assert result.scores == pytest.approx(best_epoch(run)["aligner_dev"], abs=1e-3)
    assert (run / "eval" / "validation-aligner.json").is_file() and (run / "eval" / "predictions-validation-aligner.jsonl").is_file()


def test_the_unlabeled_test_split_gets_predictions_and_no_scores(runs):
    run = runs["undistilled"]
    result = evaluate_run(run, split="test")
    assert result.scores is None and result.examples == 16       # the whole test file (the fixture: 16 rows)
    assert json.loads((run / "eval" / "test.json").read_text())["scores"] is None
    first = json.loads((run / "eval" / "predictions-test.jsonl").read_text().splitlines()[0])
    assert first["label"] is None and first["prediction"] in (0, 1)
    assert "no labels" in result.summary()


def test_eval_refuses_what_it_cannot_score(runs, tmp_path):
    with pytest.raises(ArmadaError, match="undistilled run has no TS Aligner"):
        evaluate_run(runs["undistilled"], aligner=True)
    with pytest.raises(ArmadaError, match="no split 'test'"):
        evaluate_run(runs["armada-euclid"], split="test", aligner=True)   # the cache holds train and validation
    with pytest.raises(ArmadaError, match="evaluate on one of"):
        evaluate_run(runs["armada-euclid"], split="train")
    with pytest.raises(ArmadaError, match="no run.json"):
        evaluate_run(tmp_path)
    record = json.loads((runs["undistilled"] / "run.json").read_text())
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "run.json").write_text(json.dumps({**record, "status": "running"}))
    with pytest.raises(ArmadaError, match="not finished"):
        evaluate_run(unfinished)
    file_run = tmp_path / "file-run"
    file_run.mkdir()
    (file_run / "run.json").write_text(json.dumps({**record, "task": "file:mine"}))
    (file_run / "config.toml").write_text((runs["undistilled"] / "config.toml").read_text())
    with pytest.raises(ArmadaError, match=r"\[tasks.mine\] table .* --config"):
        evaluate_run(file_run)
    (file_run / "run.json").write_text(json.dumps({**record, "task": "instruct/dolly", "metric": "rougeL"}))
    with pytest.raises(ArmadaError, match="instruct/dolly is a generation task"):
        evaluate_run(file_run)


def test_the_aligner_is_scored_only_on_the_cache_it_trained_with(runs, tmp_path, task_files):
    moved = tmp_path / "moved-cache"
    shutil.copytree(runs["armada-euclid"], moved)
    record = json.loads((moved / "run.json").read_text())
    gone = str(tmp_path / "gone.zarr")
    (moved / "run.json").write_text(json.dumps({**record, "cache": {**record["cache"], "path": gone, "absolute_path": gone}}))
    with pytest.raises(ArmadaError, match=r"cannot be opened: no cache at .*gone.zarr.* \(a path is recorded .*\); give its place with --cache PATH"):
        evaluate_run(moved, aligner=True)
    with pytest.raises(ArmadaError, match="the cache it trained with cannot be opened: no cache at"):
        evaluate_run(moved, aligner=True, cache=gone)
    task = get_task("glue/rte")
    other = tiny.write_cache(tmp_path / "other.zarr", task, {"validation": task.load("validation", data_dir=str(task_files / "glue"), limit=LIMIT)}, dim=4)
    (moved / "run.json").write_text(json.dumps({**record, "cache": {**record["cache"], "path": str(other)}}))
    with pytest.raises(ArmadaError, match="not the one .* trained with"):
        evaluate_run(moved, aligner=True)


def test_a_file_task_run_is_scored_with_the_pipelines_task_table(tmp_path):
    name, tables = tiny.file_task(tmp_path / "data")
    student = tiny.make_encoder(tmp_path / "student")
    run = tmp_path / "run"
    train(tiny.tiny_config(student, undistilled=True, epochs=1), get_task(f"file:{name}", tables), None, "", run)
    result = evaluate_run(run, file_tasks=tables)
    assert result.task == f"file:{name}" and result.examples == 12
    assert result.scores == pytest.approx(best_epoch(run)["dev"], abs=1e-3)


def test_eval_command_prints_the_scores(runs):
    armada = Path(sys.executable).parent / "armada"
    done = subprocess.run([armada, "eval", "--run", runs["armada-euclid"]], capture_output=True, text=True, env=os.environ)
    assert done.returncode == 0, done.stderr
    assert "student on glue/rte validation (16 examples): accuracy" in done.stdout


@pytest.fixture(scope="module")
def analysis_report(runs, tmp_path_factory):
    return write_report([runs["armada-euclid"].parent], tmp_path_factory.mktemp("report"), analysis=True)


def test_report_analysis_views_each_variants_student_embeddings(runs, analysis_report):
    files = analysis_report
    text = files.markdown.read_text()
    assert "## Embedding analysis (paper §6)" in text
    assert [p.name for p in files.figures if p.name.startswith("tsne")] == ["tsne-" + _slug(runs) + "-glue-rte.png"]
    rows = files.analysis_csv.read_text().splitlines()
    assert rows[0].startswith("student,task,variant,seed,examples,accuracy")
    by_variant = {line.split(",")[2]: line.split(",") for line in rows[1:]}
    assert set(by_variant) == {"undistilled", "armada-euclid"}
    for variant, run in runs.items():
        row = by_variant[variant]
        assert int(row[4]) == LIMIT
        assert float(row[5]) == pytest.approx(best_epoch(run)["dev"]["accuracy"], abs=1e-3)
        predicted = predict_student(run)
        view = EmbeddingView("glue/rte", variant, 0, predicted.embeddings, np.asarray(predicted.split.labels),
                             predicted.predictions, predicted.task.labels)
        assert float(row[8]) == pytest.approx(score_view(view).purity, abs=1e-5)
        assert float(row[8]) >= float(row[9]) - 1e-9          # purity never below the majority share


def _slug(runs) -> str:
    from armada.files import file_slug

    return file_slug(json.loads((runs["undistilled"] / "run.json").read_text())["student"])


def csv_rows(path: Path) -> list[dict]:
    import csv

    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_the_auxiliary_head_is_o_aux_on_the_projection(runs):
    import torch

    from armada.distill.model import load_student, predict

    model, tokenizer, _ = load_student(runs["armada-euclid"])
    split = predict_student(runs["armada-euclid"]).split
    _, main, pooled = predict(model, tokenizer, split, batch_size=8)
    _, aux, same_pooled = predict(model, tokenizer, split, batch_size=8, head="aux")
    with torch.no_grad():
        expected = model.heads(torch.as_tensor(pooled), project=True)[2].numpy()
    assert np.allclose(aux, expected, atol=1e-5) and np.array_equal(pooled, same_pooled)
    assert not np.allclose(aux, main)
    with pytest.raises(ValueError, match="unknown output head"):
        predict(model, tokenizer, split, batch_size=8, head="O_aux")


def test_report_analysis_scores_aux_heads_scenarios_centroids_and_loss_t_tests(runs, analysis_report):
    """The paper's Tables 10, 13, 14 and 15 on the real tiny runs, against direct computations."""
    from armada.eval.evaluate import predict_aligner_alone
    from armada.reporting.paper_measures import centroid_distances, loss_t_test, scenarios, task_losses

    out = analysis_report.markdown.parent
    text = analysis_report.markdown.read_text()
    armada, undistilled = predict_student(runs["armada-euclid"]), predict_student(runs["undistilled"])
    labels = np.asarray(armada.split.labels)

    aux = {r["variant"]: r for r in csv_rows(out / "aux-heads.csv")}
    assert float(aux["undistilled"]["student_main"]) == pytest.approx(100 * best_epoch(runs["undistilled"])["dev"]["accuracy"], abs=0.1)
    assert aux["undistilled"]["student_aux"] == aux["undistilled"]["aligner_main"] == ""   # "–": untrained, no aligner
    aux_predicted = predict_student(runs["armada-euclid"], head="aux").predictions
    assert float(aux["armada-euclid"]["student_aux"]) == pytest.approx(100 * np.mean(aux_predicted == labels), abs=1e-3)
    assert float(aux["armada-euclid"]["aligner_main"]) == pytest.approx(100 * best_epoch(runs["armada-euclid"])["aligner_dev"]["accuracy"], abs=0.1)
    assert aux["armada-euclid"]["aligner_aux"] != ""

    scenario = scenarios(labels, armada.predictions, undistilled.predictions)
    silhouettes = csv_rows(out / "scenario-silhouette.csv")
    assert [(int(r["scenario"]), int(r["examples"])) for r in silhouettes] == [(1, int((scenario == 1).sum())),
                                                                               (2, int((scenario == 2).sum()))]

    distances = csv_rows(out / "centroid-distances.csv")
    assert len(distances) == LIMIT
    assert [float(r["distance_undistilled"]) for r in distances] == pytest.approx(
        centroid_distances(undistilled.embeddings, labels), abs=1e-5)
    aligner = predict_aligner_alone(runs["armada-euclid"])
    assert [float(r["distance_aligner"]) for r in distances] == pytest.approx(
        centroid_distances(aligner.embeddings, labels), abs=1e-5)

    (test,) = csv_rows(out / "loss-t-tests.csv")
    expected = loss_t_test(task_losses("classification", undistilled.logits, labels),
                           task_losses("classification", armada.logits, labels))
    assert (test["with"], test["without"], int(test["examples"])) == ("armada-euclid", "undistilled", LIMIT)
    assert float(test["t"]) == pytest.approx(expected.t, rel=1e-4)

    section = text.split("OLS ANOVA (paper Figures 3, 5, 6)")[1]
    assert "none of α, β, γ and the manifold loss takes two values among them: nothing to test" in section
    assert "## What the analyses could not load" not in text
