"""`armada extract` and `armada teachers` through the installed `armada` command, on the real
piper-whisper teacher (offline: its models ship in PyPI packages)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from armada.cache_schema import CacheReader
from armada.tasks import sha256_text

ARMADA = str(Path(sys.executable).parent / "armada")

TRAIN = ["The cat sat on the mat.", "Café au lait, s'il vous plaît: naïve façade!", "The cat sat on the mat.",
         "Tabs\tand a bell\x07 between words."]
VALIDATION = ["A short one.", "Numbers: 1, 2, 3."]


def armada(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([ARMADA, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A folder with a pipeline file defining the file: task `tiny` (4 train rows, one repeated; 2 validation)."""
    folder = tmp_path_factory.mktemp("project")
    for split, texts in (("train", TRAIN), ("validation", VALIDATION)):
        lines = [json.dumps({"id": f"{split[0]}{i}", "text": t, "label": "a"}) for i, t in enumerate(texts)]
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "pipeline.toml").write_text(
        "[extract]\nshard_rows = 2\n\n"
        f"[tasks.tiny]\ntrain = \"{folder / 'train.jsonl'}\"\nvalidation = \"{folder / 'validation.jsonl'}\"\n"
        "labels = [\"a\", \"b\"]\nid_field = \"id\"\n",
        encoding="utf-8",
    )
    return folder


@pytest.fixture(scope="module")
def extracted(project) -> tuple[subprocess.CompletedProcess, Path]:
    result = armada("extract", "--teacher", "piper-whisper", "--dataset", "file:tiny", "--config", "pipeline.toml",
                    cwd=project)
    return result, project / "cache" / "file_tiny--piper-whisper.zarr"


def stored(path: Path) -> dict[str, np.ndarray]:
    reader = CacheReader(path)
    out = {}
    for split, texts in (("train", TRAIN), ("validation", VALIDATION)):
        features = reader.load(split, [f"{split[0]}{i}" for i in range(len(texts))], [sha256_text(t.lower()) for t in texts])
        out[split] = features[np.arange(len(texts))]
    return out


def test_extract_writes_a_cache_of_the_teachers_vectors(extracted):
    from armada.extract.registry import load_teacher

    result, path = extracted
    assert result.returncode == 0, result.stderr
    assert "rows written: 6 (3 shards; 0 were already done)" in result.stdout
    assert "rows deduplicated: 1" in result.stdout
    assert f"cache: cache/{path.name}" in result.stdout
    assert "examples/s" in result.stderr                          # the progress bar

    teacher = load_teacher("piper-whisper")
    features = stored(path)
    for split, texts in (("train", TRAIN), ("validation", VALIDATION)):
        expected = teacher.encode([t.lower() for t in texts]).astype(np.float16)   # the default teacher text: lowercased
        np.testing.assert_array_equal(features[split], expected.astype(np.float32))
    np.testing.assert_array_equal(features["train"][0], features["train"][2])
    verify = subprocess.run([ARMADA, "cache", "verify", str(path)], capture_output=True, text=True, timeout=300)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_the_same_command_again_resumes(extracted, project):
    _, path = extracted
    result = armada("extract", "--teacher", "piper-whisper", "--dataset", "file:tiny", "--config", "pipeline.toml",
                    cwd=project)
    assert result.returncode == 0, result.stderr
    assert "resuming: 3 of 3 shards were already done" in result.stdout
    assert "rows written: 0 (0 shards; 3 were already done)" in result.stdout


@pytest.mark.numerics
def test_two_processes_write_what_one_did(extracted, project):
    _, path = extracted
    result = armada("extract", "--teacher", "piper-whisper", "--dataset", "file:tiny", "--config", "pipeline.toml",
                    "--num-processes", "2", "--out", "two.zarr", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "rows written: 6 (3 shards; 0 were already done)" in result.stdout
    two, one = stored(project / "two.zarr"), stored(path)
    for split in one:
        np.testing.assert_array_equal(two[split], one[split])


def test_other_teacher_settings_on_the_cache_name_the_difference(extracted, project):
    result = armada("extract", "--teacher", "piper-whisper", "--dataset", "file:tiny", "--config", "pipeline.toml",
                    "--set", "teachers.piper-whisper.length_scale=1.25", cwd=project)
    assert result.returncode == 2
    assert "teacher.provenance.length_scale: 1.0 → 1.25" in result.stderr
    assert "--overwrite" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("flag, name, listed", [
    ("--teacher", "stable-diffusion", ["piper-whisper", "sd14", "speecht5"]),
    ("--dataset", "glue/colaa", ["glue/cola", "bbc-news", "file:tiny"]),
])
def test_unknown_names_are_refused_with_the_valid_ones(project, flag, name, listed):
    args = {"--teacher": "piper-whisper", "--dataset": "file:tiny", flag: name}
    result = armada("extract", "--teacher", args["--teacher"], "--dataset", args["--dataset"], "--config", "pipeline.toml",
                    cwd=project)
    assert result.returncode == 2
    assert f"unknown {'teacher' if flag == '--teacher' else 'task'} {name!r}" in result.stderr
    assert all(n in result.stderr for n in listed), result.stderr
    assert "Traceback" not in result.stderr


def test_a_hub_model_out_of_reach_is_a_message_not_a_traceback(project):
    result = armada("extract", "--teacher", "sd14", "--dataset", "file:tiny", "--config", "pipeline.toml", cwd=project)
    assert result.returncode == 2
    assert "CompVis/stable-diffusion-v1-4" in result.stderr and "Traceback" not in result.stderr
    assert not (project / "cache" / "file_tiny--sd14.zarr").exists()


def test_teachers_lists_every_teacher_with_its_family_and_size(project):
    (project / "teachers.toml").write_text('[teachers.remote]\nkind = "http"\nurl = "http://127.0.0.1:9/encode"\ndim = 32\n',
                                           encoding="utf-8")
    # An empty Hugging Face cache: the sizes come from what is local, never from a download.
    result = subprocess.run([ARMADA, "teachers", "--config", "teachers.toml"], cwd=project, capture_output=True,
                            text=True, timeout=600, env={**os.environ, "HF_HUB_CACHE": str(project / "empty-hf-cache")})
    assert result.returncode == 0, result.stderr
    table, families = result.stdout.split("\n\n")
    rows = {line.split()[0]: line.split()[1:3] for line in table.splitlines()[1:]}
    assert rows.keys() == {"sd14", "mj", "modelscope-t2v", "speecht5", "piper-whisper", "piper-whisper-base", "http",
                           "remote", "run:PATH"}
    assert rows["run:PATH"] == ["armada-run", "?"]
    assert {line.split()[0] for line in families.splitlines()[1:]} == {
        "diffusers-t2i", "text-to-video", "speecht5", "piper-whisper", "http", "text-classifier", "armada-run"}
    assert rows["sd14"] == rows["mj"] == ["diffusers-t2i", "1024"]               # 256 px, 4×32×32, channel mean
    assert rows["modelscope-t2v"] == ["text-to-video", "1024"]
    assert rows["remote"] == ["http", "32"] and rows["http"] == ["http", "?"]    # no dim set yet
    assert rows["piper-whisper"] == ["piper-whisper", "384"] and rows["piper-whisper-base"] == ["piper-whisper", "512"]
    assert rows["speecht5"] == ["speecht5", "?"]    # wav2vec2-base's config is neither local nor cached
    assert "http://127.0.0.1:9/encode" in result.stdout and "prompthero/openjourney-lora" in result.stdout


def test_a_refusal_on_one_of_two_processes_reaches_the_user_whole(extracted, project):
    """The main process refuses the existing cache; its message is what the user sees, once, and the other process
    stops without a traceback of its own."""
    result = armada("extract", "--teacher", "piper-whisper", "--dataset", "file:tiny", "--config", "pipeline.toml",
                    "--set", "teachers.piper-whisper.length_scale=1.25", "--num-processes", "2", cwd=project)
    assert result.returncode == 2, result.stderr
    assert "teacher.provenance.length_scale: 1.0 → 1.25" in result.stderr
    assert "--overwrite" in result.stderr
    assert "Traceback" not in result.stderr and "Connection closed" not in result.stderr
    assert result.stderr.count("error: ") == 1
