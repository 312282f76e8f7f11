"""Generative runs through `armada eval` and `armada report`: a tiny causal student trained with --objective lm is
scored on its own validation split and zero-shot on reasoning sets (a few rows as published), with the decoding
recorded, and the report shows its columns beside an NLU task's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from typer.testing import CliRunner

import distill_tiny
import lm_tiny
from armada import config
from armada.cli import app
from armada.distill.recipe import train
from armada.eval.evaluate import evaluate_generative
from armada.reporting.results import write_report
from armada.errors import ConfigError
from armada.eval.rouge import rouge_l
from armada.pipeline import run_pipeline
from armada.tasks import get_task


@pytest.fixture(scope="module")
def lm_runs(tmp_path_factory) -> dict:
    """Undistilled and ARMADA runs (seeds 0 and 1) of a tiny LLaMA on the tiny instruction task, and its pipeline file."""
    root = tmp_path_factory.mktemp("generative")
    student = lm_tiny.make_lm(root / "llama", "llama")
    name, tables = lm_tiny.instruction_task(root / "data")
    task = get_task(f"file:{name}", tables)
    splits = {s: task.load(s) for s in ("train", "validation")}
    cache = distill_tiny.write_cache(root / "cache.zarr", task, splits, dim=8,
                                     vectors=lambda split, dim: np.random.default_rng(0).normal(size=(len(split), dim)))
    pipeline = root / "pipeline.toml"
    spec = tables[name]
    pipeline.write_text(tomli_w.dumps({"tasks": {name: {"train": spec.train, "validation": spec.validation, "kind": "generation",
                                                        "text_fields": list(spec.text_fields), "label_field": "output",
                                                        "id_field": "id"}}}))
    runs = {}
    for seed in (0, 1):
        for variant in ("undistilled", "armada-euclid"):
            undistilled = variant == "undistilled"
            runs[(variant, seed)] = root / "runs" / f"{variant}-s{seed}"
            train(lm_tiny.lm_config(student, epochs=2, seed=seed, undistilled=undistilled), task,
                  None if undistilled else str(cache), "", runs[(variant, seed)], variant=variant)
    return {"runs": runs, "pipeline": pipeline, "root": root, "student": str(student), "task": task}


def _eval(*args) -> str:
    result = CliRunner().invoke(app, ["eval", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_armada_eval_scores_a_generative_run_on_its_validation_split(lm_runs):
    run = lm_runs["runs"][("armada-euclid", 0)]
    output = _eval("--run", str(run), "--config", str(lm_runs["pipeline"]), "--max-new-tokens", "12")
    assert "rougeL" in output
    record = json.loads((run / "eval" / "generation-file_tiny-instruct-validation.json").read_text())
    assert record["task"] == "file:tiny-instruct" and record["split"] == "validation" and record["examples"] == 8
    assert record["metric"] == "rougeL" and record["prompt_style"] == "chat" and record["student"] == "merged"
    assert record["decoding"] == {"max_new_tokens": 12, "num_beams": 1, "batch_size": 8, "do_sample": False}
    predictions = [json.loads(line) for line in
                   (run / "eval" / "predictions-generation-file_tiny-instruct-validation.jsonl").read_text().splitlines()]
    assert [p["id"] for p in predictions] == lm_runs["task"].load("validation").ids
    recomputed = np.mean([rouge_l(p["output"], p["references"]) for p in predictions])
    assert record["scores"]["rougeL"] == pytest.approx(recomputed)


def test_a_generative_run_is_scored_zero_shot_on_other_tasks(lm_runs, task_files):
    run = lm_runs["runs"][("undistilled", 0)]
    reasoning = str(task_files / "generative" / "reasoning")
    _eval("--run", str(run), "--task", "reasoning/multiarith", "--data-dir", reasoning, "--limit", "3", "--max-new-tokens", "6")
    record = json.loads((run / "eval" / "generation-reasoning_multiarith-test.json").read_text())
    assert (record["split"], record["examples"], record["limit"], record["trained_on"]) == ("test", 3, 3, "file:tiny-instruct")
    assert set(record["scores"]) == {"accuracy"} and record["decoding"]["max_new_tokens"] == 6
    # A multiple-choice set is scored by the answer read from the text and by the choices' log-likelihood.
    arc = evaluate_generative(run, "reasoning/arc-e", None, reasoning, 4, max_new_tokens=4)
    assert set(arc.scores) == {"accuracy", "loglik_accuracy", "loglik_mean_accuracy"} and arc.examples == 4
    # The task's own budget is the default and is what the record says.
    sinst = evaluate_generative(run, "instruct/sinst", None, str(task_files / "generative" / "instruction"), 2)
    assert sinst.decoding["max_new_tokens"] == get_task("instruct/sinst").max_new_tokens and sinst.metric == "rougeL"


def test_what_a_generative_run_cannot_be_scored_on_is_refused(lm_runs, tmp_path):
    run = str(lm_runs["runs"][("armada-euclid", 1)])
    runner = CliRunner()
    for args, message in [
        (["--run", run, "--aligner"], "has no task outputs to score; drop --aligner"),
        (["--run", run, "--task", "glue/cola"], "glue/cola is a classification task"),
        (["--run", run], r"\[tasks.tiny-instruct\] table in a pipeline file; give that file with --config"),
    ]:
        result = runner.invoke(app, ["eval", *args])
        assert result.exit_code != 0 and __import__("re").search(message, " ".join(str(result.exception).split())), result.output
    nlu = tmp_path / "nlu"
    nlu.mkdir()
    (nlu / "run.json").write_text(json.dumps({"task": "glue/cola", "status": "finished"}))
    result = runner.invoke(app, ["eval", "--run", str(nlu), "--task", "reasoning/multiarith"])
    assert "is not a generative run: --task, --limit and --max-new-tokens are for runs trained with --objective lm" in str(result.exception)


def test_the_report_shows_generative_columns_beside_nlu_ones(lm_runs, task_files, tmp_path):
    reasoning = str(task_files / "generative" / "reasoning")
    for run in lm_runs["runs"].values():
        _eval("--run", str(run), "--task", "reasoning/singleeq", "--data-dir", reasoning, "--limit", "2", "--max-new-tokens", "4")
    # An NLU run of the same student, as armada distill writes one.
    nlu = lm_runs["root"] / "runs" / "cola"
    nlu.mkdir(exist_ok=True)
    (nlu / "run.json").write_text(json.dumps({"task": "glue/cola", "student": lm_runs["student"], "undistilled": True,
                                              "variant": "undistilled", "seed": 0, "metric": "mcc", "best_epoch": 1,
                                              "best_dev": 0.25, "epochs": 1, "status": "finished", "seconds": 1.0}))
    (nlu / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "train": {}, "dev": {"mcc": 0.25}, "aligner_dev": None}) + "\n")

    files = write_report([lm_runs["root"] / "runs"], tmp_path / "report")
    text = files.markdown.read_text()
    column = "file:tiny-instruct → reasoning/singleeq test"
    header = next(line for line in text.splitlines() if line.startswith("| variant |"))
    assert f"{column} (accuracy)" in header and "glue/cola (mcc)" in header
    assert "columns with → score generative runs' saved students" in text
    scores = {key: json.loads((run / "eval" / "generation-reasoning_singleeq-test.json").read_text())["scores"]["accuracy"]
              for key, run in lm_runs["runs"].items()}
    armada = [scores[("armada-euclid", s)] for s in (0, 1)]
    row = next(line for line in text.splitlines() if line.startswith("| armada-euclid |"))
    assert f"{100 * np.mean(armada):.1f}" in row and "(n=2)" in row
    assert "lm_loss" in text                                            # the run list shows the dev loss as it is
    with files.csv.open() as f:
        assert f"{column} mean" in f.readline()


@pytest.mark.slow
def test_armada_run_scores_generative_runs_on_their_own_split_and_the_zero_shot_sets(tmp_path, task_files):
    student = lm_tiny.make_lm(tmp_path / "llama", "llama")
    name, tables = lm_tiny.instruction_task(tmp_path / "data")
    spec = tables[name]
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(tomli_w.dumps({
        "run": {"name": "gen", "tasks": [f"file:{name}"], "seeds": [0], "runs_dir": str(tmp_path / "runs"),
                "report_dir": str(tmp_path / "report"), "zero_shot": {f"file:{name}": ["reasoning/multiarith"]},
                "eval_limit": 2},
        "data": {"data_dirs": {"reasoning/multiarith": str(task_files / "generative" / "reasoning")}},
        "distill": {"student": str(student), "objective": "lm", "lora_r": 8, "epochs": 1, "batch_size": 4,
                    "max_length": 200, "lr": 1e-2},
        "tasks": {name: {"train": spec.train, "validation": spec.validation, "kind": "generation",
                         "text_fields": list(spec.text_fields), "label_field": "output", "id_field": "id"}},
        "variants": [{"name": "undistilled", "undistilled": True}],
    }))
    report = run_pipeline(config.load(pipeline), say=lambda line: None)

    scores = tmp_path / "runs" / "gen" / f"file_{name}" / "undistilled" / "seed-0" / "eval"
    own = json.loads((scores / f"generation-file_{name}-validation.json").read_text())
    zero_shot = json.loads((scores / "generation-reasoning_multiarith-test.json").read_text())
    assert (own["examples"], own["metric"]) == (8, "rougeL")
    assert (zero_shot["examples"], zero_shot["limit"], zero_shot["metric"]) == (2, 2, "accuracy")
    assert "reasoning/multiarith" in (report / "results.md").read_text()

    written = {p.name: p.stat().st_mtime_ns for p in scores.iterdir()}
    run_pipeline(config.load(pipeline), say=lambda line: None)      # finished and scored: nothing is redone
    assert {p.name: p.stat().st_mtime_ns for p in scores.iterdir()} == written


def test_zero_shot_sets_must_be_known_tasks(tmp_path):
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text('[run]\ntasks = ["instruct/dolly"]\nzero_shot = { "instruct/dolly" = ["instruct/nope"] }\n')
    with pytest.raises(ConfigError, match="instruct/nope"):
        config.load(pipeline)
    pipeline.write_text('[run]\ntasks = ["instruct/dolly"]\nzero_shot = { "instruct/dolly-tset" = ["instruct/sinst"] }\n')
    with pytest.raises(ConfigError, match="instruct/dolly-tset"):
        config.load(pipeline)
