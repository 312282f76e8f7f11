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
from armada.distill.model import load_student, predict
from armada.distill.recipe import train
from armada.errors import ArmadaError
from armada.extract.job import ExtractJob, default_cache_path
from armada.extract.runner import run_extract
from armada.tasks import STUDENT_INPUT, get_task
from test_extract_runner import assert_same_cache

ARMADA = str(Path(sys.executable).parent / "armada")
HIDDEN = 32                                 # tiny.make_encoder's hidden size
SHARES_SUM = 1e-5       # an epoch's shares sum to 1 up to float32 and each one's rounding to 6 places (5 terms: 2.5e-6)


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
    handling = heads["text_handling"]           # the authors' recipe lowercases and gives [CLS] segment id 1
    rows = cached(summary.path, task)
    for example, row in zip(task.load("train").examples, rows):
        (first, second), = example.inputs
        if handling["lowercase"]:
            first, second = first.lower(), second.lower()
        inputs = dict(tokenizer(first, second, return_tensors="pt", truncation=True, max_length=heads["max_length"]))
        inputs["token_type_ids"][0, 0] = handling["cls_segment_id"]
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



# --- Hinton KD from the cache (armada.distill.kd) ---------------------------------------------------

def mean_probabilities(run: Path, split) -> np.ndarray:
    """The run's kept student's mean softmax over `split`'s examples."""
    model, tokenizer, _ = load_student(run / "student")
    return torch.from_numpy(np.asarray(predict(model, tokenizer, split, 8)[1])).softmax(-1).mean(0).numpy()


@pytest.fixture(scope="module")
def kd_cache(tmp_path_factory, task_files, run_folder) -> str:
    return run_extract(job(tmp_path_factory.mktemp("kd") / "kd.zarr", task_files, f"run:{run_folder}"),
                       show_progress=False).path


def test_a_kd_student_learns_its_teachers_soft_targets(tmp_path, task, run_folder, kd_cache):
    """KD alone (`--objective kd --undistilled`): every epoch records the KD term and its share of the gradient,
    L_s = (1 − kd_alpha)·L_T + kd_alpha·KD. A teacher that answers "neg" for every row (logits +3, −3) pulls a
    student trained on its logits alone (kd_alpha 1) to "neg", where the same student on the labels stays balanced."""
    from armada.cache_schema import TeacherLogits

    encoder = tiny.make_encoder(tmp_path / "student")
    settings = dict(undistilled=True, epochs=2, tau=1.0)
    result = train(tiny.tiny_config(encoder, objective="kd", kd_cache=kd_cache, **settings), task, None, "", tmp_path / "kd")
    assert result.status == "finished"
    epochs = [json.loads(line) for line in (tmp_path / "kd/metrics.jsonl").read_text().splitlines()]
    for epoch in epochs:
        assert set(epoch["train"]) == {"loss_s", "task", "kd"}
        assert set(epoch["balance"]) == {"task", "kd"} and sum(epoch["balance"].values()) == pytest.approx(1.0, abs=SHARES_SUM)
        assert epoch["train"]["loss_s"] == pytest.approx(0.5 * epoch["train"]["task"] + 0.5 * epoch["train"]["kd"], rel=1e-5)
    record = json.loads((tmp_path / "kd/run.json").read_text())
    assert record["objective"] == "kd" and record["cache"] is None
    assert record["kd_teacher"]["config_hash"] == CacheReader(kd_cache).manifest.config_hash
    assert record["kd_teacher"]["teacher"] == f"run:{run_folder}"

    splits = {name: task.load(name) for name in ("train", "validation")}
    says_neg = lambda split, dim: np.tile(np.array([0.0, 3.0, -3.0], dtype=np.float32), (len(split), 1))  # noqa: E731
    neg = tiny.write_cache(tmp_path / "neg.zarr", task, splits, dim=3, vectors=says_neg,
                           logits=TeacherLogits(task.name, "classification", ("neg", "pos"), 1))
    fast = {**settings, "epochs": 1, "lr": 3e-2}     # the kept student is the first epoch's where dev stays at chance
    train(tiny.tiny_config(encoder, **fast), task, None, "", tmp_path / "labels")
    train(tiny.tiny_config(encoder, objective="kd", kd_cache=str(neg), kd_alpha=1.0, **fast), task, None, "",
          tmp_path / "teacher-only")
    by_labels, by_teacher = (mean_probabilities(tmp_path / name, splits["train"]) for name in ("labels", "teacher-only"))
    assert by_teacher[0] > 0.9 and abs(by_labels[0] - 0.5) < 0.2, (by_teacher, by_labels)


def test_armada_and_kd_train_together_with_both_caches(tmp_path, task, kd_cache):
    """A multimodal cache for ARMADA's terms and a KD cache for the KD term, matched to the same rows by each
    cache's own teacher template: L_s = (1 − kd_alpha)·ARMADA's L_s + kd_alpha·KD, every term in the balance."""
    splits = {name: task.load(name) for name in ("train", "validation")}
    armada_cache = tiny.write_cache(tmp_path / "multimodal.zarr", task, splits)
    encoder = tiny.make_encoder(tmp_path / "student")
    train(tiny.tiny_config(encoder, objective="kd", kd_cache=kd_cache, kd_alpha=0.3, epochs=1, tau=2.0), task,
          str(armada_cache), "", tmp_path / "both")
    epoch, = [json.loads(line) for line in (tmp_path / "both/metrics.jsonl").read_text().splitlines()]
    assert set(epoch["balance"]) == {"task", "soft", "aux", "manifold", "kd"}
    assert sum(epoch["balance"].values()) == pytest.approx(1.0, abs=SHARES_SUM)
    record = json.loads((tmp_path / "both/run.json").read_text())
    assert record["cache"]["teacher"]["name"] == "fake" and record["kd_teacher"]["path"] == kd_cache


def test_a_cache_that_cannot_teach_the_task_by_its_logits_is_refused_before_anything_is_written(tmp_path, task, kd_cache):
    encoder = tiny.make_encoder(tmp_path / "student")
    splits = {name: task.load(name) for name in ("train", "validation")}
    multimodal = str(tiny.write_cache(tmp_path / "multimodal.zarr", task, splits))
    other = dataclasses.replace(task, name="file:other", labels=("pos", "neg"))
    for cache, task_, message in (
        (multimodal, task, r"the KD cache .*multimodal.zarr \(distill.kd_cache\) holds fake's features \(fake\), no logits"),
        (kd_cache, other, r"cannot teach file:other by its logits: .*its teacher's labels are file:other's in another order"),
    ):
        out = tmp_path / "refused"
        with pytest.raises(ArmadaError, match=message):
            train(tiny.tiny_config(encoder, objective="kd", kd_cache=cache, undistilled=True), task_, None, "", out)
        assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("settings, message", [
    ({"objective": "kd"}, r'distill.objective = "kd" reads its teacher\'s logits from a KD cache: set distill.kd_cache'),
    ({"kd_cache": "cache/kd.zarr"}, r'distill.kd_cache applies to distill.objective = "kd" only'),
    ({"kd_alpha": 0.9}, r'distill.kd_alpha applies to distill.objective = "kd" only'),
])
def test_kd_settings_without_their_objective_are_refused(settings, message):
    from armada.config import DistillConfig
    from armada.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        DistillConfig(**settings)


def test_a_pipelines_kd_variant_reads_each_tasks_own_teacher_cache(tmp_path):
    from armada import config

    path = tmp_path / "pipeline.toml"
    path.write_text('[run]\ntasks = ["glue/cola", "glue/stsb"]\n\n[[variants]]\nname = "kd"\nobjective = "kd"\n'
                    'undistilled = true\nkd_cache = "cache/{task}--run_teacher.zarr"\n')
    pipeline = config.load(path)
    assert [pipeline.distill_for(task, pipeline.variant("kd")).kd_cache for task in pipeline.run.tasks] == [
        "cache/glue_cola--run_teacher.zarr", "cache/glue_stsb--run_teacher.zarr"]
