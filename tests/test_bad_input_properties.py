"""Property-based bad input (issue 27): whatever value a numeric setting is given, from a pipeline file, `--set`
or a flag, and whatever a JSONL row holds, the outcome is success or a clear ArmadaError, never another
exception type. Hypothesis draws the values; the examples are bounded so that the file runs in seconds."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import distill_tiny as tiny
from armada import config as config_module
from armada.config import DataConfig, DistillConfig, ExtractConfig, RunConfig
from armada.errors import ArmadaError
from armada.extract.registry import FAMILIES
from armada.run_schema import RunFolder
from armada.tasks import get_task

QUICK = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Everything TOML can hold, and what Python callers pass besides (NaN and the infinities are TOML too).
SCALARS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-2**70, max_value=2**70),
                    st.booleans(), st.text(max_size=8), st.none())
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                      max_leaves=6)


def _numeric_fields(cls) -> list[str]:
    hints = typing.get_type_hints(cls)
    return [f.name for f in dataclasses.fields(cls) if hints[f.name] in (int, float)]


SECTIONS = {"run": RunConfig, "data": DataConfig, "extract": ExtractConfig, "distill": DistillConfig}
NUMERIC_KEYS = [f"{section}.{name}" for section, cls in SECTIONS.items() for name in _numeric_fields(cls)]
TEACHER_KEYS = [(family, name) for family, info in FAMILIES.items() for name in _numeric_fields(info.settings)]


def _outcome(action) -> object:
    """Run `action`: its result, or the ArmadaError it raised; any other exception fails the property."""
    try:
        return action()
    except ArmadaError as e:
        assert str(e), "an ArmadaError must say what is wrong"
        return e


@QUICK
@given(key=st.sampled_from(NUMERIC_KEYS), value=VALUES)
def test_any_value_of_a_numeric_setting_from_a_flag_is_accepted_or_a_clear_error(key, value):
    result = _outcome(lambda: config_module.load(flags={key: value}))
    if not isinstance(result, ArmadaError):
        section, name = key.split(".")
        loaded = getattr(getattr(result, section), name)
        assert isinstance(loaded, (int, float)) and loaded == loaded and abs(loaded) != float("inf")


@QUICK
@given(key=st.sampled_from(NUMERIC_KEYS), text=st.one_of(
    st.sampled_from(["nan", "+nan", "-nan", "inf", "-inf", "1e999", "0x10", "1_000", "'3'", "[1]", "{a=1}", "", "="]),
    st.text(max_size=10)))
def test_any_text_given_with_set_is_accepted_or_a_clear_error(key, text):
    _outcome(lambda: config_module.load(sets=[f"{key}={text}"]))


@QUICK
@given(teacher=st.sampled_from(TEACHER_KEYS), value=VALUES)
def test_any_value_in_a_teacher_table_is_accepted_or_a_clear_error(teacher, value):
    from armada.extract.registry import resolve

    family, name = teacher
    _outcome(lambda: resolve("mine", {"mine": {"kind": family, name: value}}))


@QUICK
@given(text=st.text(max_size=40))
def test_any_pipeline_file_line_under_distill_is_accepted_or_a_clear_error(tmp_path, text):
    path = tmp_path / "pipeline.toml"
    path.write_text(f"[distill]\n{text}\n", encoding="utf-8")
    _outcome(lambda: config_module.load(path))


# --- malformed JSONL rows -------------------------------------------------------------------------

ROW_VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=2), st.dictionaries(st.text(max_size=3), SCALARS, max_size=2))
ROWS = st.one_of(
    st.fixed_dictionaries({"id": ROW_VALUES, "text": ROW_VALUES, "label": ROW_VALUES}),
    st.dictionaries(st.sampled_from(["id", "text", "label", "other"]), ROW_VALUES, max_size=4),
    VALUES,
)


@pytest.fixture(scope="module")
def task_files(tmp_path_factory) -> tuple[str, dict]:
    return tiny.file_task(tmp_path_factory.mktemp("rows"))


@QUICK
@given(rows=st.lists(ROWS, min_size=1, max_size=3), garbage=st.binary(max_size=12))
def test_any_jsonl_row_of_a_task_file_is_read_or_a_clear_error(task_files, rows, garbage):
    name, tables = task_files
    for kind in ("classification", "regression"):
        spec = dataclasses.replace(tables[name], kind=kind, labels=("neg", "pos") if kind == "classification" else (),
                                   metric="accuracy" if kind == "classification" else "pearson_spearman")
        path = Path(spec.train)
        good = [json.dumps({"id": "t-0", "text": "good movie", "label": "pos" if kind == "classification" else 1.0})]
        lines = good + [json.dumps(row) for row in rows]
        path.write_bytes(("\n".join(lines) + "\n").encode() + garbage)
        _outcome(lambda: get_task(f"file:{name}", {name: spec}).load("train"))


@QUICK
@given(lines=st.lists(st.one_of(VALUES.map(json.dumps), st.text(max_size=12)), min_size=1, max_size=3))
def test_any_metrics_line_is_an_epoch_or_a_clear_error(tmp_path, lines):
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir(exist_ok=True)
    (folder.path / "metrics.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _outcome(folder.read_epochs)
