"""The run folder's records: written and read back through armada.run_schema, old folders read, faults named."""

from __future__ import annotations

import json

import pytest

from armada.errors import ArmadaError
from armada.run_schema import (EpochRecord, GenerationRecord, RunFolder, RunRecord, UnreadableRecord, find_run_folders,
                               pipeline_run_folder)


def _record(**changes) -> RunRecord:
    values = dict(task="glue/rte", student="minilm-l6", seed=1, metric="accuracy", status="finished", undistilled=False,
                  variant="armada-euclid", best_epoch=2, best_dev=0.6, epochs=2, seconds=3.5, processes=1,
                  versions={"torch": "x"}, steps_per_process=(4,))
    values.update(changes)
    return RunRecord(**values)


def test_records_read_back_as_written_with_what_an_objective_adds(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.write_settings('[distill]\nmanifold = "euclid"\n')
    record = _record(objective="lm", details={"prompt_style": "chat", "examples": {"train": {"kept": 8}}})
    folder.write_record(record)
    assert folder.read_record() == record
    written = json.loads((tmp_path / "run" / "run.json").read_text())
    assert list(written)[:4] == ["task", "student", "undistilled", "objective"] and list(written)[-1] == "status"
    assert written["prompt_style"] == "chat"          # an objective's fields stand beside the common ones
    for epoch in (1, 2, 3):
        folder.append_epoch(EpochRecord(epoch, {"loss_s": 1.0 / epoch}, {"accuracy": 0.5}, None, 1.0,
                                        balance={"task": 0.7, "manifold": 0.3},
                                        diagnostics={"dev_predicted_classes": 2, "norms": {"task": 1.5}}))
    folder.keep_epochs(2)                               # a resumed run writes epoch 3 again
    epochs = folder.read_epochs()
    assert [e.epoch for e in epochs] == [1, 2]
    assert epochs[1].balance == {"task": 0.7, "manifold": 0.3}
    assert epochs[1].diagnostics == {"dev_predicted_classes": 2, "norms": {"task": 1.5}}   # further fields are kept
    assert folder.read_run().variant == "armada-euclid"


def test_a_run_folder_of_the_first_format_reads(tmp_path):
    """run.json without objective, variant or undistilled (the first run folders): the variant comes from config.toml."""
    folder = RunFolder(tmp_path)
    (tmp_path / "run.json").write_text(json.dumps({"task": "glue/cola", "student": "bert-6l", "seed": 0, "metric": "mcc",
                                                   "status": "finished", "best_epoch": 1}))
    (tmp_path / "config.toml").write_text('manifold = "cosine"\n')      # [distill] keys alone, as they were first written
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "dev": {"mcc": None}}) + "\n")
    stored = folder.read_run()
    assert stored.record.objective == "task" and stored.record.undistilled is None
    assert stored.variant == "armada-cosine"
    assert stored.epochs[0].dev == {"mcc": None} and stored.epochs[0].train == {}


@pytest.mark.parametrize("files, message", [
    ({"run.json": "{"}, "run.json is not valid JSON"),
    ({"run.json": '{"task": "glue/cola"}'}, "run.json has no 'student'"),
    ({"metrics.jsonl": '{"epoch": 1}\n'}, r"no run.json yet: running, or stopped before the end \(1 epoch\(s\)"),
    ({"run.json": json.dumps(_record().to_json()), "metrics.jsonl": '{"epoch": "one"}\n'},
     "metrics.jsonl:1: not an epoch record"),
    ({"run.json": json.dumps(_record().to_json()), "metrics.jsonl": '{"epoch": 1, "dev": {"accuracy": 0.5}}\n'},
     r"best_epoch 2 is not among the epochs of metrics.jsonl \[1\]"),
    ({"run.json": json.dumps(_record(variant=None).to_json())}, "run.json names no variant and there is no config.toml"),
])
def test_an_unreadable_run_folder_says_which_record_and_why(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(UnreadableRecord, match=message):
        RunFolder(tmp_path).read_run()


def test_generative_evaluations_are_found_and_checked(tmp_path):
    folder = RunFolder(tmp_path)
    folder.path.joinpath("eval").mkdir()
    record = GenerationRecord(str(tmp_path), "reasoning/multiarith", "test", "accuracy", {"accuracy": 0.5}, 2,
                              trained_on="reasoning/math-train")
    scores, predictions = folder.write_generation(record, [{"id": "a", "output": "4"}])
    assert scores == folder.generation_path("reasoning/multiarith", "test")
    assert scores.name == "generation-reasoning_multiarith-test.json" and predictions.read_text().count("\n") == 1
    assert folder.read_generations() == (GenerationRecord.from_json(json.loads(scores.read_text()), scores.name),)
    scores.write_text(json.dumps({"task": "x"}))
    with pytest.raises(UnreadableRecord, match="is not a generative evaluation"):
        folder.read_generations()


def test_run_folders_are_found_below_the_folders_given(tmp_path):
    runs = [pipeline_run_folder(tmp_path, "demo", "glue/cola", variant, seed) for variant in ("a", "b") for seed in (0, 1)]
    for run in runs:
        run.write_record(_record())
        run.checkpoints.mkdir()                         # a run's own folders are not searched
    assert runs[0].path == tmp_path / "demo" / "glue_cola" / "a" / "seed-0"
    assert [f.path for f in find_run_folders([tmp_path])] == sorted(r.path for r in runs)
    with pytest.raises(ArmadaError, match="no run folders"):
        find_run_folders([runs[0].checkpoints])
