"""KD caches on the cache side: the manifest's teacher logits, the reader-side check against a task, verify.

No model here: manifests and caches are built directly (tests/test_teachers_text.py extracts real ones).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import zarr

from armada.cache_schema import CacheReader, CacheWriter, Manifest, TeacherInfo, TeacherLogits, check_kd_cache
from armada.cache_schema.manifest import canonical_json
from armada.cache_schema.verify import verify
from armada.errors import ArmadaError
from armada.tasks import get_task
from test_cache_fixtures import manifest_for, rows_for, write_all

COLA = get_task("glue/cola")                # labels: unacceptable, acceptable


def kd_manifest(task: str = "glue/cola", kind: str = "classification", labels=("unacceptable", "acceptable"),
                pooled: int = 6, dataset_task: str = "glue/cola") -> Manifest:
    logits = TeacherLogits(task, kind, labels, pooled)
    base = manifest_for({"train": rows_for(10, pooled + logits.width)}, pooled + logits.width, dtype="float32")
    return dataclasses.replace(base, teacher=dataclasses.replace(base.teacher, dim=pooled + logits.width, logits=logits),
                               dataset=dataclasses.replace(base.dataset, task=dataset_task))


def test_a_kd_manifest_records_its_columns_and_labels_and_reads_back_as_version_2():
    manifest = kd_manifest()
    data = manifest.to_dict()
    assert data["schema_version"] == 2
    assert data["teacher"]["logits"] == {"task": "glue/cola", "kind": "classification",
                                         "labels": ["unacceptable", "acceptable"],
                                         "columns": {"pooled": [0, 6], "logits": [6, 8]}}
    back = Manifest.from_dict(json.loads(json.dumps(data)), "here")
    assert back == manifest and back.config_hash == manifest.config_hash
    # A cache without logits is written exactly as before (version 1, no logits key), so it resumes.
    plain = manifest_for({"train": rows_for(10, 8)}, 8).to_dict()
    assert plain["schema_version"] == 1 and "logits" not in plain["teacher"]


def _rehashed(data: dict) -> dict:
    """`data` with its config_hash made valid again: only the checks under test stand in the way."""
    settings = {k: v for k, v in data.items() if k not in ("created", "tool_version", "config_hash")}
    settings["dataset"] = {k: v for k, v in data["dataset"].items() if k != "source"}
    return {**data, "config_hash": hashlib.sha256(canonical_json(settings).encode()).hexdigest()}


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["teacher"]["logits"].update(labels=["a", "b", "c"]),
     r"logits are 2 columns wide \(columns \[6, 8\]\), but the teacher's label set \['a', 'b', 'c'\] needs 3"),
    (lambda d: d["teacher"]["logits"]["columns"].update(logits=[6, 9]), "do not split the 8 stored columns"),
    (lambda d: d["teacher"]["logits"].update(kind="regression"), r"needs 1"),
    (lambda d: d.update(schema_version=1), "schema version 1 does not match its content"),
    (lambda d: d.update(schema_version=3), "this armada reads versions 1, 2"),
])
def test_a_kd_manifest_whose_logits_do_not_fit_is_refused(edit, message):
    data = kd_manifest().to_dict()
    edit(data)
    with pytest.raises(ArmadaError, match=message):
        Manifest.from_dict(_rehashed(data), "somewhere/zarr.json")


def test_teacher_logits_must_fit_the_teacher_row():
    with pytest.raises(ArmadaError, match="a pooled state of 6 and 2 logits are not its 9 values"):
        TeacherInfo("t", "text-classifier", 9, {}, TeacherLogits("glue/cola", "classification", ("a", "b"), 6))
    with pytest.raises(ArmadaError, match="a regression teacher has no labels"):
        TeacherLogits("glue/stsb", "regression", ("score",), 6)
    with pytest.raises(ArmadaError, match="distinct"):
        TeacherLogits("glue/cola", "classification", ("a", "a"), 6)


def test_check_kd_cache_returns_the_logits_for_the_task_they_answer():
    logits = check_kd_cache(kd_manifest(), COLA)
    assert logits.columns == {"pooled": slice(0, 6), "logits": slice(6, 8)}


@pytest.mark.parametrize("manifest, task, message", [
    (kd_manifest(dataset_task="glue/sst2"), COLA, "its rows are glue/sst2's, not glue/cola's"),
    (kd_manifest(task="glue/sst2", labels=("negative", "positive")), COLA,
     r"its teacher was trained on glue/sst2, not glue/cola; its teacher's labels are \['negative', 'positive'\], "
     r"glue/cola's are \['unacceptable', 'acceptable'\]"),
    (kd_manifest(labels=("acceptable", "unacceptable")), COLA,
     "labels are glue/cola's in another order .*: its logit i is not the task's class i"),
    (kd_manifest(labels=("bad", "good")), COLA, r"labels are \['bad', 'good'\]"),
    (kd_manifest(task="glue/stsb", kind="regression", labels=()), COLA,
     "trained on glue/stsb, not glue/cola; its teacher is a regression model, glue/cola is a classification task"),
    (kd_manifest(task="glue/mnli", labels=("entailment", "neutral", "contradiction")), get_task("glue/rte"),
     r"labels are \['entailment', 'neutral', 'contradiction'\], glue/rte's are \['entailment', 'not_entailment'\]"),
])
def test_check_kd_cache_refuses_another_task_or_label_set_naming_the_difference(manifest, task, message):
    with pytest.raises(ArmadaError, match=f"cache X cannot teach {task.name} by its logits: .*{message}") as error:
        check_kd_cache(manifest, task, "cache X")
    assert f"--dataset {task.name}" in str(error.value)


def test_check_kd_cache_refuses_a_cache_of_features_alone():
    with pytest.raises(ArmadaError, match=r"holds toy's features \(test\), no logits: it is not a KD cache"):
        check_kd_cache(manifest_for({"train": rows_for(4, 8)}, 8), COLA)


def test_verify_names_nan_logits_and_nan_pooled_states(tmp_path):
    manifest = kd_manifest()
    rows = rows_for(10, 8)
    write_all(CacheWriter.create(tmp_path / "kd.zarr", manifest), {"train": rows})
    assert verify(tmp_path / "kd.zarr").clean
    features = zarr.open_array(tmp_path / "kd.zarr/train/features", mode="r+")   # zarr keeps its checksums valid
    features[5, 7] = np.nan                  # a logit
    features[9, 0] = np.nan                  # a pooled value
    faults = verify(tmp_path / "kd.zarr").faults
    assert [(f.shard.index, f.kind, f.example_ids) for f in faults] == [(1, "nonfinite", ("ex-5-é",)),
                                                                        (2, "nonfinite", ("ex-9-é",))]
    assert faults[0].detail == "1 rows are NaN or infinite in the logits"
    assert faults[1].detail == "1 rows are NaN or infinite in the pooled state"
    with pytest.raises(ArmadaError, match="1 rows are NaN or infinite"):
        CacheReader(tmp_path / "kd.zarr").load("train", rows.ids, rows.hashes)


def test_a_kd_cache_survives_the_hdf5_round_trip(tmp_path):
    from armada.cache_schema.share import export_hdf5, import_hdf5
    from test_cache_fixtures import store_bytes

    write_all(CacheWriter.create(tmp_path / "kd.zarr", kd_manifest()), {"train": rows_for(10, 8)})
    import_hdf5(export_hdf5(tmp_path / "kd.zarr", tmp_path / "kd.h5"), tmp_path / "back.zarr")
    assert store_bytes(tmp_path / "back.zarr") == store_bytes(tmp_path / "kd.zarr")
    assert CacheReader(tmp_path / "back.zarr").manifest.teacher.logits == kd_manifest().teacher.logits
