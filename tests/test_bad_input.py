"""Bad input that needs no training: non-finite settings wherever they are read, the one JSONL reader, the one
writable-folder check behind every output, strict JSON in run records, checked HDF5 imports, and a report over
a folder whose only run was interrupted (issue 27)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import pytest
from typer.testing import CliRunner

import distill_tiny as tiny
from armada import config as config_module
from armada.cache_schema.share import export_hdf5, import_hdf5, pack
from armada.cli import app
from armada.errors import ArmadaError, ConfigError
from armada.files import check_writable_folder
from armada.jsonl import read_jsonl
from armada.numbers import number_fault
from armada.run_schema import EpochRecord, RunFolder, RunRecord
from armada.tasks import get_task
from test_cache_fixtures import build_cache

# A folder no user may write to, root included (sysfs refuses new files to everyone).
UNWRITABLE = Path("/sys/armada-issue-27")


# --- non-finite settings ------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused_from_a_flag_a_set_and_the_file(tmp_path, value):
    number = float(value)
    for where, kwargs in (("--beta", {"flags": {"distill.beta": number}}),
                          ("--set distill.lr", {"sets": [f"distill.lr={value}"]}),
                          ("--set distill.aligner_lr", {"sets": [f"distill.aligner_lr={value}"]})):
        with pytest.raises(ConfigError, match=rf"{where}.*= -?(nan|inf) is impossible: it must be a finite number"):
            config_module.load(**kwargs)
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(f"[distill]\nalpha = {value}\n\n[teachers.piper-whisper]\nlength_scale = 1.0\n")
    with pytest.raises(ConfigError, match=r"pipeline.toml: distill.alpha = -?(nan|inf) is impossible"):
        config_module.load(pipeline)
    pipeline.write_text(f"[extract]\nteacher = \"piper-whisper\"\n\n[teachers.piper-whisper]\nnoise_scale = {value}\n")
    from armada.commands import load_pipeline

    with pytest.raises(ConfigError, match=r"teachers.piper-whisper.noise_scale = -?(nan|inf) is impossible"):
        load_pipeline(str(pipeline))


def test_the_distill_command_refuses_nan_flags_before_any_work():
    for flag in ("--lr", "--beta", "--tau", "--dropout"):
        result = CliRunner().invoke(app, ["distill", flag, "nan", "--dataset", "bbc-news", "--undistilled"])
        assert isinstance(result.exception, ConfigError), result.output
        assert f"{flag}: distill.{flag[2:]} = nan is impossible: it must be a finite number" in str(result.exception)


def test_number_fault_is_the_one_check_of_bounds_and_finiteness():
    assert number_fault(0.5, low=0.0, high=1.0) is None
    assert number_fault(math.nan, low=0.0) == "it must be a finite number >= 0.0"
    assert number_fault(math.inf) == "it must be a finite number"
    assert number_fault(0.0, above=0.0) == "it must be > 0.0"
    assert number_fault(3, low=1) is None and number_fault("text") is None


# --- the JSONL reader ---------------------------------------------------------------------------

@pytest.mark.parametrize("line, message", [
    (b'{"id": "t-1", "text": "caf\xe9", "label": "pos"}\n', r"train.jsonl:2: not UTF-8 text \(byte 0xe9 at column 27\)"),
    (b"42\n", r"train.jsonl:2: a JSON number, where each line must be one JSON object"),
    (b'["id", "text", "label"]\n', r"train.jsonl:2: a JSON array, where each line must be one JSON object"),
    (b'"just text"\n', r"train.jsonl:2: a JSON string"),
    (b'{"id": "t-1", \n', r"train.jsonl:2: not valid JSON"),
])
def test_a_bad_jsonl_line_is_named_by_file_and_line_wherever_it_is_read(tmp_path, line, message):
    name, tables = tiny.file_task(tmp_path / "data")
    path = Path(tables[name].train)
    first = path.read_bytes().splitlines(keepends=True)[0]
    path.write_bytes(first + line)
    with pytest.raises(ArmadaError, match=message):
        get_task(f"file:{name}", tables).load("train")
    with pytest.raises(ArmadaError, match=message):
        list(read_jsonl(path))


def test_the_jsonl_reader_skips_blank_lines_and_a_byte_order_mark(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\n  \n{"a": 2}\n')
    assert list(read_jsonl(path)) == [(f"{path}:1", {"a": 1}), (f"{path}:4", {"a": 2})]


def test_run_records_are_strict_json_even_with_non_finite_numbers(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    folder.append_epoch(EpochRecord(1, {"loss_s": math.nan}, {"accuracy": math.inf}, None, 1.0))
    folder.write_record(RunRecord(task="t", student="s", seed=0, metric="accuracy", status="running", best_dev=math.nan))

    def strict(constant):
        raise AssertionError(f"bare {constant} in a JSON file")

    line = (folder.path / "metrics.jsonl").read_text()
    assert json.loads(line, parse_constant=strict)["train"]["loss_s"] is None
    assert json.loads((folder.path / "run.json").read_text(), parse_constant=strict)["best_dev"] is None
    assert folder.read_epochs()[0].dev == {"accuracy": None}


def test_a_damaged_metrics_line_is_named(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    (folder.path / "metrics.jsonl").write_text('{"epoch": 1}\n[1, 2]\n')
    with pytest.raises(ArmadaError, match=r"metrics.jsonl:2: a JSON array"):
        folder.read_epochs()


# --- one writable-folder check ------------------------------------------------------------------

def test_the_writable_folder_check_names_the_file_in_the_way_and_an_unwritable_parent(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ArmadaError, match=r"--out .*a-file/run: sits under .*a-file, which is a file"):
        check_writable_folder(blocker / "run", "--out")
    with pytest.raises(ArmadaError, match=r"--out .*a-file: is a file, not a folder"):
        check_writable_folder(blocker, "--out")
    with pytest.raises(ArmadaError, match=r"--out /sys/armada-issue-27/run: /sys cannot be written to"):
        check_writable_folder(UNWRITABLE / "run", "--out")
    check_writable_folder(tmp_path / "new" / "deeper", "--out")
    assert not (tmp_path / "new").exists()          # checking makes nothing


@pytest.fixture
def project(tmp_path) -> Path:
    """A file task and its pipeline, a finished cache, and a file standing where outputs will be asked for."""
    name, tables = tiny.file_task(tmp_path / "data")
    (tmp_path / "pipeline.toml").write_text(config_module.to_toml({"tasks": {n: config_module.to_dict(t)
                                                                             for n, t in tables.items()}}))
    build_cache(tmp_path / "c.zarr")
    (tmp_path / "blocker").write_text("a file, not a folder")
    return tmp_path


@pytest.mark.parametrize("bad", [Path("blocker") / "out", UNWRITABLE / "out"])
def test_every_command_that_writes_refuses_an_output_it_cannot_write(project, monkeypatch, bad):
    monkeypatch.chdir(project)
    commands = [
        ["distill", "--dataset", "file:tiny-classification", "--config", "pipeline.toml", "--undistilled",
         "--student", "minilm-l6", "--out", str(bad)],
        ["extract", "--dataset", "file:tiny-classification", "--config", "pipeline.toml", "--out", str(bad / "c.zarr")],
        ["report", str(project / "data"), "--out", str(bad)],
        ["cache", "pack", "c.zarr", str(bad / "c.zarr.zip")],
        ["cache", "export", "c.zarr", str(bad / "c.h5")],
        ["cache", "export", "c.zarr", "--format", "hf", "--no-labels", str(bad / "c-hf")],
    ]
    for command in commands:
        result = CliRunner().invoke(app, command)
        assert isinstance(result.exception, ArmadaError), (command, result.output, result.exception)
        message = str(result.exception)
        assert str(bad) in message and ("which is a file" in message or "cannot be written to" in message), message
    assert not (project / "blocker").is_dir()


# --- HDF5 import checks what export wrote -------------------------------------------------------

def test_an_edited_feature_row_in_an_export_is_refused_on_import(tmp_path):
    build_cache(tmp_path / "c.zarr")
    exported = export_hdf5(tmp_path / "c.zarr", tmp_path / "c.h5")
    with h5py.File(exported, "r+") as f:
        f["train/features"][3, 0] = f["train/features"][3, 0] + 1
    with pytest.raises(ArmadaError, match=r"train/features differ from what `armada cache export` wrote"):
        import_hdf5(exported, tmp_path / "back.zarr")
    assert not (tmp_path / "back.zarr").exists()
    with h5py.File(exported, "r+") as f:
        del f["validation"].attrs["armada_sha256"]
        f["validation"].attrs["armada_sha256"] = "not json"
    with pytest.raises(ArmadaError, match=r"cache export|armada_sha256"):
        import_hdf5(exported, tmp_path / "back.zarr")


def test_pack_refuses_an_existing_output_before_the_folder_check(tmp_path):
    build_cache(tmp_path / "c.zarr")
    (tmp_path / "p.zip").write_text("x")
    with pytest.raises(ArmadaError, match="already exists"):
        pack(tmp_path / "c.zarr", tmp_path / "p.zip")


# --- a report over an interrupted run -----------------------------------------------------------

@pytest.mark.parametrize("epochs", [0, 1])
def test_a_report_over_a_folder_whose_only_run_was_interrupted_says_so(tmp_path, epochs):
    from armada.reporting import write_report

    folder = RunFolder(tmp_path / "runs" / "only")
    folder.path.mkdir(parents=True)
    (folder.path / "config.toml").write_text('[distill]\nmanifold = "euclid"\n')
    for epoch in range(1, epochs + 1):
        folder.append_epoch(EpochRecord(epoch, {"loss_s": 1.0}, {"accuracy": 0.5}, {"accuracy": 0.5}, 1.0))
    folder.write_record(RunRecord(task="file:tiny-classification", student="tiny", seed=0, metric="accuracy",
                                  status="interrupted", undistilled=False, variant="armada-euclid", best_epoch=epochs,
                                  epochs=3))
    files = write_report([tmp_path / "runs"], tmp_path / "report")
    text = files.markdown.read_text()
    assert "unfinished: status 'interrupted'" in text
