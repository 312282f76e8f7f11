"""A cache as a Hugging Face dataset: exported, loaded with `datasets` offline, distilled from, imported back, and
published to / downloaded from a stand-in for the Hub on loopback, on the real piper-whisper teacher's rows."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

import distill_tiny as tiny
import hub_server
from armada.cache_schema import CacheReader
from armada.cache_schema import hf_layout
from armada.cache_schema.hf_card import read_header
from armada.cache_schema.hf_export import export_hf, import_hf
from armada.cache_schema.hf_reader import open_hf
from armada.distill.recipe import train
from armada.errors import ArmadaError
from armada.tasks import get_task

ARMADA = str(Path(sys.executable).parent / "armada")


FIXTURE = Path(__file__).resolve().parent / "fixtures" / "caches" / "bbc-news--piper-whisper.zarr"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A folder with the default pipeline's kind of cache: the real piper-whisper teacher's vectors (384 float16
    values a row) of bbc-news's first 10 train and 10 validation headlines, in shards of 4 rows (tests/fixtures/caches:
    extracted once with the default pipeline's template "{title}", as the teacher takes ~1 s a row here)."""
    import shutil

    folder = tmp_path_factory.mktemp("hf-project")
    shutil.copytree(FIXTURE, folder / "cache.zarr")
    return folder


@pytest.fixture(scope="module")
def cache(project) -> Path:
    return project / "cache.zarr"


@pytest.fixture(scope="module")
def task():
    return get_task("bbc-news")


@pytest.fixture(scope="module")
def exported(project, cache) -> Path:
    """The cache exported by the command a user runs, with the task's labels."""
    result = subprocess.run([ARMADA, "cache", "export", str(cache), "--format", "hf", "export", "--license",
                             "cc-by-4.0"], cwd=project, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return project / "export"


def labels_of(task, split: str) -> list[int]:
    return task.load(split, limit=10, template="{title}").labels


def cached_rows(cache: Path, split: str) -> tuple[list[str], np.ndarray]:
    with CacheReader(cache) as reader:
        shards = list(reader.read_shards(split))
    return [i for s in shards for i in s[2]], np.concatenate([s[1] for s in shards])


def test_load_dataset_reads_every_vector_bit_for_bit_offline_streaming_or_not(exported, cache, task):
    import datasets

    for split in ("train", "validation"):
        ids, stored = cached_rows(cache, split)
        assert stored.dtype == np.float16 and stored.shape == (len(ids), 384)
        ds = datasets.load_dataset(str(exported), split=split)
        assert ds.features["label"].names == list(task.labels) and ds.column_names == ["example_id", "text_sha256",
                                                                                    "label", "vector"]
        rows = ds.with_format("numpy", dtype=np.float16)[:]
        assert rows["vector"].shape == stored.shape and rows["vector"].tobytes() == stored.tobytes()
        widened = ds.with_format("numpy")[:]["vector"]                       # datasets' default: float32, exactly
        assert widened.dtype == np.float32 and widened.tobytes() == stored.astype(np.float32).tobytes()
        assert list(rows["example_id"]) == ids and list(rows["label"]) == labels_of(task, split)
        streamed = datasets.load_dataset(str(exported), split=split, streaming=True).with_format("numpy")
        batches = list(streamed.iter(batch_size=5))
        vectors = np.concatenate([b["vector"] for b in batches]).astype(np.float16)
        assert vectors.tobytes() == stored.tobytes()
        assert [i for b in batches for i in b["example_id"]] == ids


def test_files_are_bounded_shards_with_row_groups_and_a_page_index(project, cache, monkeypatch, tmp_path):
    monkeypatch.setattr(hf_layout, "GROUP_ROWS", 4)          # 10 rows a split: groups of 4, 4 | 2 in files of 8 and 2
    monkeypatch.setattr(hf_layout, "FILE_BYTES", 8 * 384 * 2)
    export_hf(cache, tmp_path / "small")
    names = sorted(p.name for p in (tmp_path / "small" / "data").iterdir())
    assert names == [f"{split}-0000{i}-of-00002.parquet" for split in ("train", "validation") for i in (0, 1)]
    first = pq.ParquetFile(tmp_path / "small" / "data" / names[0])
    assert [first.metadata.row_group(g).num_rows for g in range(first.num_row_groups)] == [4, 4]
    assert first.metadata.row_group(0).column(2).has_offset_index      # the page index (column 2: no label)
    assert "label" not in first.schema_arrow.names                     # exported without the task's data
    assert str(first.schema_arrow.field("vector").type) == "fixed_size_list<element: halffloat not null>[384]"
    import_hf(f"hf:{tmp_path / 'small'}", tmp_path / "back.zarr")
    assert _files(tmp_path / "back.zarr") == _files(cache)


def test_the_card_renders_from_the_manifest(exported, cache):
    text = (exported / "README.md").read_text()
    header = read_header(text, "README.md")
    assert yaml.safe_load(text.split("---\n")[1]) == header
    assert header["license"] == "cc-by-4.0"
    assert header["configs"] == [{"config_name": "default", "data_files": [
        {"split": "train", "path": "data/train-*"}, {"split": "validation", "path": "data/validation-*"}]}]
    assert {s["name"]: s["num_examples"] for s in header["dataset_info"]["splits"]} == {"train": 10, "validation": 10}
    assert header["dataset_info"]["features"][-1] == {"name": "vector", "list": "float16", "length": 384}
    with CacheReader(cache) as reader:
        manifest = reader.manifest
    assert json.loads((exported / "armada.json").read_text())["manifest"] == manifest.to_dict()
    body = text.split("---\n", 2)[2]
    for fact in ("bbc-news", "piper-whisper", "float16", "| train | 10 | 1 | 10 |", "| validation | 10 | 1 | 10 |",
                 manifest.config_hash, "teacher text template: `{title}`", "armada cache export", "--license cc-by-4.0",
                 "0 = business, 1 = entertainment", "cc-by-4.0",
                 f"| whisper_model_sha256 | {manifest.teacher.provenance['whisper_model_sha256']} |",
                 "The manifest declares no licence for the teacher (piper-whisper) or the data (bbc-news)"):
        assert fact in body, fact


def test_import_gives_back_the_very_same_cache(exported, cache, tmp_path):
    import_hf(f"hf:{exported}", tmp_path / "back.zarr")
    assert _files(tmp_path / "back.zarr") == _files(cache)
    with pytest.raises(ArmadaError, match="already exists: import into a new folder"):
        import_hf(f"hf:{exported}", tmp_path / "back.zarr")


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_distilling_from_the_export_equals_distilling_from_the_cache(project, exported, cache, task, tmp_path):
    student = tiny.make_encoder(tmp_path / "student")
    config = tiny.tiny_config(student, epochs=1)
    train(config, task, str(cache), "", tmp_path / "from-zarr")
    train(config, task, f"hf:{exported}", "", tmp_path / "from-hf")
    metrics = [[{**json.loads(line), "seconds": 0} for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
               for run in ("from-zarr", "from-hf")]
    assert metrics[0] == metrics[1]
    record = json.loads((tmp_path / "from-hf" / "run.json").read_text())
    assert record["cache"]["path"] == f"hf:{exported}"
    from armada.eval.evaluate import predict_aligner_alone   # `armada eval --aligner` reopens the cache the run names

    aligners = [predict_aligner_alone(tmp_path / run).logits for run in ("from-zarr", "from-hf")]
    assert aligners[0].tobytes() == aligners[1].tobytes()


def _copy(exported: Path, to: Path) -> Path:
    import shutil

    return Path(shutil.copytree(exported, to))


def test_an_export_that_does_not_match_its_manifest_is_refused_naming_the_difference(exported, task, tmp_path):
    card = _copy(exported, tmp_path / "card")
    text = (card / "README.md").read_text()
    (card / "README.md").write_text(text.replace("list: float16", "list: float32", 1))
    with pytest.raises(ArmadaError, match=r"declares the column 'vector' as \{\"length\":384,\"list\":\"float32\"\}, "
                                          r"armada.json's manifest says \{\"length\":384,\"list\":\"float16\"\}"):
        open_hf(f"hf:{card}")

    extra = _copy(exported, tmp_path / "extra")
    (extra / "data" / "train-extra.parquet").write_bytes((extra / "data" / "train-00000-of-00001.parquet").read_bytes())
    with pytest.raises(ArmadaError, match="data/train-extra.parquet is not one of the export's 1 files of split train"):
        open_hf(f"hf:{extra}")

    columns = _copy(exported, tmp_path / "columns")
    path = columns / "data" / "validation-00000-of-00001.parquet"
    pq.write_table(pq.read_table(path).rename_columns(["example_id", "text_sha256", "class", "vector"]), path)
    with pytest.raises(ArmadaError, match=r"validation-00000-of-00001.parquet: its columns are \['example_id', "
                                          r"'text_sha256', 'class', 'vector'\], armada.json's manifest needs"):
        open_hf(f"hf:{columns}")

    labels = _copy(exported, tmp_path / "labels")
    path = labels / "data" / "validation-00000-of-00001.parquet"
    table = pq.read_table(path)
    flipped = pa.array([1 - v for v in table.column("label").to_pylist()], pa.int64())
    pq.write_table(table.set_column(2, "label", flipped), path)
    with pytest.raises(ArmadaError, match="the label or text_sha256 column of split validation differs from the rows "
                                          "the cache was extracted from"):
        open_hf(f"hf:{labels}").read_split("validation")


def test_training_refuses_an_export_of_other_rows(exported, task, tmp_path):
    reader = open_hf(f"hf:{exported}")
    split = task.load("validation", limit=10, template="{title}")
    with pytest.raises(ArmadaError, match="teacher text changed for 10 examples"):
        reader.load("validation", split.ids, [h[::-1] for h in split.teacher_hashes])
    with pytest.raises(ArmadaError, match="has no features for 1 of the 11 requested examples: nowhere"):
        reader.load("validation", split.ids + ["nowhere"], split.teacher_hashes + ["0" * 64])


def test_a_hub_dataset_neither_here_nor_in_huggingface_hubs_cache_is_refused_offline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ArmadaError, match=r"hf:team/nothing: no folder team/nothing here, and from the Hub: cannot "
                                          r"download the Hub dataset team/nothing: .*\(offline, and not in huggingface_hub's cache\)"):
        open_hf("hf:team/nothing")
    with pytest.raises(ArmadaError, match="'team' is not a Hub dataset name: give org/name"):
        open_hf("hf:team")


def test_labels_from_other_rows_are_refused_at_export(cache, task, tmp_path):
    other = {split: task.load(split, limit=10, template="{body}") for split in ("train", "validation")}
    with pytest.raises(ArmadaError, match=r"the task's train rows read from .* are not those the cache was extracted "
                                          r"from .*--no-labels"):
        export_hf(cache, tmp_path / "out", labelled=other)
    assert not (tmp_path / "out").exists()


@pytest.fixture
def hub():
    server, state = hub_server.serve(token="hf_test_token")
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


def test_publish_then_import_from_the_hub_through_huggingface_hub(project, cache, hub, monkeypatch, tmp_path):
    endpoint, state = hub
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf-home"),
           "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
           "HF_HUB_ETAG_TIMEOUT": "120", "HF_HUB_DOWNLOAD_TIMEOUT": "120"}       # a busy machine is no failure
    env.pop("HF_TOKEN", None)
    monkeypatch.setattr(hf_layout, "GROUP_ROWS", 4)          # an earlier export in two files a split
    monkeypatch.setattr(hf_layout, "FILE_BYTES", 8 * 384 * 2)
    earlier = export_hf(cache, tmp_path / "earlier", labelled=None)
    publish = [ARMADA, "cache", "publish", f"hf:{earlier}", "team/bbc"]
    refused = subprocess.run(publish, env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "HF_TOKEN or `hf auth login`" in refused.stderr
    env["HF_TOKEN"] = "hf_test_token"
    outputs = [subprocess.run(command, env=env, capture_output=True, text=True)
               for command in (publish, [ARMADA, "cache", "publish", str(cache), "team/bbc"])]
    for output in outputs:
        assert output.returncode == 0, output.stderr
    assert len(state.repos["team/bbc"][1][1]) == 6                               # the earlier export's 4 files
    assert any(r.startswith("PUT /lfs-upload/") for r in state.requests)          # the Git LFS upload, not a shortcut
    commit, files = state.repos["team/bbc"][-1]
    assert sorted(files) == ["README.md", "armada.json", "data/train-00000-of-00001.parquet",   # the 2-file ones gone
                             "data/validation-00000-of-00001.parquet"]
    assert 'load_dataset("team/bbc", split="train")' in state.blobs[files["README.md"]].decode()
    imported = subprocess.run([ARMADA, "cache", "import", "--format", "hf", f"hf:team/bbc@{commit}",
                               str(tmp_path / "back.zarr")], env=env, capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr
    assert _files(tmp_path / "back.zarr") == _files(cache)
    written = [p.read_text(errors="replace") for folder in (tmp_path / "hf-home", tmp_path / "back.zarr")
               for p in folder.rglob("*") if p.is_file()]
    assert not any("hf_test_token" in text for text in written + [o.stdout + o.stderr for o in outputs])
