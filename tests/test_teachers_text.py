"""Text teachers (KD baselines) through the extraction runner, on tiny models built from configs.

Two teachers read a tiny sentence-pair task (tests/distill_tiny.py): a 2-layer BERT sequence
classifier saved with save_pretrained, and the student of a tiny `armada distill --undistilled`
run (the name run:PATH). Each cache row must be that model's own [pooled state | logits] for the
pair the student reads, computed here one example at a time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import distill_tiny as tiny
from armada.cache_schema import CacheReader, check_kd_cache
from armada.cache_schema.manifest import canonical_json
from armada.cache_schema.share import pack
from armada.cache_schema.verify import verify
from armada.config import to_dict
from armada.distill.model import load_student
from armada.distill.recipe import train
from armada.errors import ArmadaError
from armada.extract.job import ExtractJob, default_cache_path
from armada.extract.runner import run_extract
from armada.tasks import STUDENT_INPUT, get_task
from test_extract_runner import assert_same_cache

ARMADA = str(Path(sys.executable).parent / "armada")
HIDDEN = 32                                 # tiny.make_encoder's hidden size


@pytest.fixture(scope="module")
def task_files(tmp_path_factory):
    """The pair task (24 train, 12 validation rows, labels neg/pos) and its [tasks] tables."""
    name, tables = tiny.file_task(tmp_path_factory.mktemp("task"), pairs=True)
    return f"file:{name}", tables


@pytest.fixture(scope="module")
def task(task_files):
    name, tables = task_files
    return get_task(name, tables)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, task) -> Path:
    """A 2-layer BERT sequence classifier (random weights) whose config names its outputs neg, pos."""
    from transformers import BertConfig, BertForSequenceClassification

    folder = tiny.make_encoder(tmp_path_factory.mktemp("classifier"))
    config = BertConfig.from_pretrained(folder, num_labels=2, id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1})
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory, task) -> Path:
    """A finished `armada distill --undistilled` run on the pair task."""
    encoder = tiny.make_encoder(tmp_path_factory.mktemp("student"))
    out = tmp_path_factory.mktemp("runs") / "undistilled"
    train(tiny.tiny_config(encoder, undistilled=True, epochs=1), task, None, "", out)
    return out


def job(out: Path, task_files, teacher: str, tables: dict | None = None, **changes) -> ExtractJob:
    name, file_tasks = task_files
    return ExtractJob(teacher=teacher, task=name, out=str(out), shard_rows=4, batch_size=3, dtype="float32",
                      teacher_tables=tables or {}, file_tasks={n: to_dict(spec) for n, spec in file_tasks.items()},
                      **changes)


def classifier_table(folder: Path, task: str, **settings) -> dict:
    return {"bert-kd": {"kind": "text-classifier", "model": str(folder), "task": task, **settings}}


def cached(path, task, split: str = "train") -> np.ndarray:
    """Every row of `split`, read as distill reads a cache: the split loaded with the manifest's template."""
    reader = CacheReader(path)
    rows = task.load(split, template=reader.manifest.extraction.teacher_template)
    return reader.load(split, rows.ids, rows.teacher_hashes)[np.arange(len(rows))]


def test_a_sequence_classifier_writes_its_own_logits_for_the_pairs_the_student_reads(tmp_path, task_files, task, classifier):
    from transformers import AutoTokenizer, BertForSequenceClassification

    summary = run_extract(job(tmp_path / "kd.zarr", task_files, "bert-kd", classifier_table(classifier, task.name)),
                          show_progress=False)
    manifest = CacheReader(summary.path).manifest
    assert manifest.teacher.dim == HIDDEN + 2 and manifest.schema_version == 2
    assert manifest.teacher.logits.to_dict() == {"task": task.name, "kind": "classification", "labels": ["neg", "pos"],
                                                 "columns": {"pooled": [0, HIDDEN], "logits": [HIDDEN, HIDDEN + 2]}}
    assert manifest.extraction.teacher_template == STUDENT_INPUT
    provenance = manifest.teacher.provenance
    assert provenance["task"] == task.name and provenance["pooling"] == "pooler" and "model.safetensors" in provenance["files_sha256"]

    model = BertForSequenceClassification.from_pretrained(classifier).eval()
    tokenizer = AutoTokenizer.from_pretrained(classifier)
    for split in ("train", "validation"):
        rows = cached(summary.path, task, split)
        for example, row in zip(task.load(split).examples, rows):
            (first, second), = example.inputs           # a pair: the teacher reads it as one
            inputs = tokenizer(first, second, return_tensors="pt")
            with torch.no_grad():
                logits = model(**inputs).logits[0]
                pooled = model.bert(**inputs).pooler_output[0]
            np.testing.assert_allclose(row[:HIDDEN], pooled.numpy(), atol=1e-5)
            np.testing.assert_allclose(row[HIDDEN:], logits.numpy(), atol=1e-5)
    check_kd_cache(manifest, task)


def test_a_distill_run_is_a_teacher_by_its_path(tmp_path, task_files, task, run_folder):
    teacher = f"run:{run_folder}"
    out = default_cache_path(str(tmp_path), task.name, teacher)
    assert Path(out).parent == tmp_path and ":" not in Path(out).name and "/" not in Path(out).name
    summary = run_extract(job(Path(out), task_files, teacher), show_progress=False)
    manifest = CacheReader(summary.path).manifest
    assert manifest.teacher.name == teacher and manifest.teacher.kind == "armada-run"
    record = json.loads((run_folder / "run.json").read_text())
    provenance = manifest.teacher.provenance
    assert provenance["run"] == str(run_folder) and provenance["task"] == task.name and provenance["undistilled"] is True
    assert (provenance["metric"], provenance["best_dev"]) == (record["metric"], record["best_dev"])
    assert "model.safetensors" in provenance["student_files_sha256"] and "armada_heads.safetensors" in provenance["student_files_sha256"]

    model, tokenizer, heads = load_student(run_folder)
    rows = cached(summary.path, task)
    for example, row in zip(task.load("train").examples, rows):
        (first, second), = example.inputs
        inputs = dict(tokenizer(first, second, return_tensors="pt", truncation=True, max_length=heads["max_length"]))
        with torch.no_grad():
            out = model(inputs)
            logits, pooled = out.outputs, out.pooled
        np.testing.assert_allclose(row[:HIDDEN], pooled[0].numpy(), atol=1e-5)
        np.testing.assert_allclose(row[HIDDEN:], logits[0].numpy(), atol=1e-5)
    assert check_kd_cache(manifest, task).columns["logits"] == slice(HIDDEN, HIDDEN + 2)


def test_an_interrupted_extraction_resumes_to_the_same_cache(tmp_path, task_files, task, classifier):
    tables = classifier_table(classifier, task.name)
    whole = run_extract(job(tmp_path / "whole.zarr", task_files, "bert-kd", tables), show_progress=False)
    cut = run_extract(job(tmp_path / "cut.zarr", task_files, "bert-kd", tables), show_progress=False)
    for shard in (1, 4):                    # as if the process had died before marking these shards done
        (Path(cut.path) / f"train/features/done/{shard}.json").unlink()
        (Path(cut.path) / f"train/features/c/{shard}/0").unlink()
    resumed = run_extract(job(tmp_path / "cut.zarr", task_files, "bert-kd", tables), show_progress=False)
    assert (resumed.shards_written, resumed.shards_already_done) == (2, 7)      # 6 train + 3 validation shards
    assert_same_cache(resumed.path, whole.path)


def test_a_kd_cache_packs_and_reads_back_and_refuses_another_task(tmp_path, task_files, task, run_folder):
    summary = run_extract(job(tmp_path / "kd.zarr", task_files, f"run:{run_folder}"), show_progress=False)
    packed = pack(summary.path, tmp_path / "kd.zarr.zip")
    np.testing.assert_array_equal(cached(packed, task), cached(summary.path, task))
    manifest = CacheReader(packed).manifest
    assert manifest == CacheReader(summary.path).manifest
    other = dataclasses.replace(task, name="file:other", labels=("pos", "neg"))
    with pytest.raises(ArmadaError, match=r"cannot teach file:other by its logits: its rows are file:tiny-classification-"
                                          r"pairs's, not file:other's; its teacher was trained on file:tiny-classification"
                                          r"-pairs, not file:other; its teacher's labels are file:other's in another order"):
        check_kd_cache(manifest, other, str(packed))


def test_verify_catches_a_nan_logit_and_a_width_that_does_not_match_the_labels(tmp_path, task_files, task, classifier):
    import zarr

    path = Path(run_extract(job(tmp_path / "kd.zarr", task_files, "bert-kd", classifier_table(classifier, task.name)),
                            show_progress=False).path)
    zarr.open_array(path / "train/features", mode="r+")[5, HIDDEN + 1] = np.nan
    report = verify(path)
    assert [(f.shard.index, f.kind, f.detail) for f in report.faults] == [
        (1, "nonfinite", "1 rows are NaN or infinite in the logits")]
    result = subprocess.run([ARMADA, "cache", "verify", str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "nonfinite: 1 rows are NaN or infinite in the logits: example ids train-5" in result.stdout

    # A manifest claiming a third label over the same two logit columns (its hash made valid again).
    root = path / "zarr.json"
    meta = json.loads(root.read_text())
    attributes = meta["attributes"]
    attributes["teacher"]["logits"]["labels"].append("maybe")
    settings = {k: v for k, v in attributes.items() if k not in ("created", "tool_version", "config_hash")}
    settings["dataset"] = {k: v for k, v in attributes["dataset"].items() if k != "source"}
    attributes["config_hash"] = hashlib.sha256(canonical_json(settings).encode()).hexdigest()
    root.write_text(json.dumps(meta))
    result = subprocess.run([ARMADA, "cache", "verify", str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (f"logits are 2 columns wide (columns [{HIDDEN}, {HIDDEN + 2}]), but the teacher's label set "
            "['neg', 'pos', 'maybe'] needs 3") in result.stderr


def test_a_teacher_giving_nan_logits_writes_nothing_and_names_the_examples(tmp_path, task_files, task, classifier):
    from transformers import BertForSequenceClassification

    broken = tmp_path / "broken"
    model = BertForSequenceClassification.from_pretrained(classifier)
    with torch.no_grad():
        model.classifier.bias[1] = float("nan")
    model.save_pretrained(broken)
    for file in classifier.iterdir():       # the tokenizer's files
        if not (broken / file.name).exists():
            (broken / file.name).write_bytes(file.read_bytes())
    with pytest.raises(ArmadaError, match=r"teacher bert-kd gave NaN or infinite values for \d+ example\(s\) of train: train-0"):
        run_extract(job(tmp_path / "kd.zarr", task_files, "bert-kd", classifier_table(broken, task.name)),
                    show_progress=False)
    assert CacheReader(tmp_path / "kd.zarr").status("train").shards_done == 0


@pytest.mark.parametrize("settings, message", [
    ({"task": ""}, r"set task = \"<the task it was fine-tuned on>\" in \[teachers.bert-kd\]"),
    ({"labels": ["a", "b", "c"]}, r"labels = \['a', 'b', 'c'\] names 3 outputs, but .* has 2"),
    ({"model": "/no/such/classifier"}, "the sequence classifier '/no/such/classifier' cannot be loaded"),
])
def test_classifier_settings_that_cannot_work_are_refused(tmp_path, task_files, task, classifier, settings, message):
    tables = classifier_table(classifier, task.name)
    tables["bert-kd"].update(settings)
    with pytest.raises(ArmadaError, match=message):
        run_extract(job(tmp_path / "kd.zarr", task_files, "bert-kd", tables), show_progress=False)


def test_a_classifier_without_label_names_must_be_told_them(tmp_path, task_files, task, classifier):
    from transformers import BertConfig, BertForSequenceClassification

    unnamed = tmp_path / "unnamed"
    tiny.make_encoder(unnamed)
    BertForSequenceClassification(BertConfig.from_pretrained(unnamed, num_labels=2)).save_pretrained(unnamed)
    with pytest.raises(ArmadaError, match=r"does not name its 2 outputs \(its config says LABEL_0, LABEL_1\); say what each "
                                          r"means, in order, with labels = \[...\]"):
        run_extract(job(tmp_path / "kd.zarr", task_files, "bert-kd", classifier_table(unnamed, task.name)),
                    show_progress=False)
    summary = run_extract(job(tmp_path / "kd.zarr", task_files, "bert-kd",
                              classifier_table(unnamed, task.name, labels=["neg", "pos"])), show_progress=False)
    assert CacheReader(summary.path).manifest.teacher.logits.labels == ("neg", "pos")


def test_a_run_that_is_not_a_finished_classifier_run_is_refused(tmp_path, task_files, run_folder):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    record = json.loads((run_folder / "run.json").read_text())
    (unfinished / "run.json").write_text(json.dumps({**record, "status": "running"}))
    for teacher, message in ((f"run:{tmp_path / 'nowhere'}", "is not a folder; give the --out folder"),
                             (f"run:{tmp_path}", "has no run.json: it is not an armada distill run folder"),
                             (f"run:{unfinished}", "is not finished \\(status 'running'\\); finish it first"),
                             ("run:", "run: needs the folder of a finished armada distill run")):
        with pytest.raises(ArmadaError, match=message):
            run_extract(job(tmp_path / "kd.zarr", task_files, teacher), show_progress=False)


def test_extract_and_cache_info_from_the_command_line(tmp_path, task_files, run_folder):
    name, tables = task_files
    spec = tables[name.removeprefix("file:")]
    (tmp_path / "pipeline.toml").write_text(f"[extract]\nshard_rows = 8\n\n[tasks.{name.removeprefix('file:')}]\n"
                                            f"train = \"{spec.train}\"\nvalidation = \"{spec.validation}\"\n"
                                            "text_fields = [\"text\", \"other\"]\nlabels = [\"neg\", \"pos\"]\nid_field = \"id\"\n")
    result = subprocess.run([ARMADA, "extract", "--teacher", f"run:{run_folder}", "--dataset", name, "--config",
                             "pipeline.toml"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    path = Path(default_cache_path(str(tmp_path / "cache"), name, f"run:{run_folder}"))
    assert f"cache: {path.relative_to(tmp_path)}" in result.stdout and "rows written: 36" in result.stdout
    info = subprocess.run([ARMADA, "cache", "info", str(path)], capture_output=True, text=True, timeout=300)
    assert info.returncode == 0, info.stderr
    assert (f"logits       columns {HIDDEN}–{HIDDEN + 1}: neg, pos ({name}, classification); pooled state in columns "
            f"0–{HIDDEN - 1}") in info.stdout


def test_a_teacher_template_does_not_apply_to_a_text_teacher(tmp_path, task_files, run_folder):
    with pytest.raises(ArmadaError, match=r"reads the student's input .* remove teacher_templates"):
        run_extract(job(tmp_path / "kd.zarr", task_files, f"run:{run_folder}", template="{text}"), show_progress=False)


def test_distill_reads_a_kd_cache_as_it_reads_any_cache(tmp_path, task_files, task, run_folder):
    """The student's rows are matched to the cache's by the template in its manifest: ARMADA can use a
    text teacher's [pooled state | logits] as its teacher vectors with no change on the distill side."""
    summary = run_extract(job(tmp_path / "kd.zarr", task_files, f"run:{run_folder}"), show_progress=False)
    encoder = tiny.make_encoder(tmp_path / "student")
    result = train(tiny.tiny_config(encoder, epochs=1), task, summary.path, "", tmp_path / "armada")
    assert result.status == "finished"
    assert json.loads((tmp_path / "armada/run.json").read_text())["cache"]["teacher"]["dim"] == HIDDEN + 2

