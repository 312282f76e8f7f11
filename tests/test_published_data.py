"""The whole published files, as the real data folder holds them: row counts, ids, labels, the Dolly hold-out.

The other tests read a few rows of each layout from tests/fixtures/data. These checks need the real
files and run when ARMADA_TEST_DATA names their folder (the one with glue/, superglue/ and generative/;
.ci/run sets it to ../shared/data when that folder exists).
"""

import json
import os
from pathlib import Path

import pytest

from armada.tasks import get_task
from armada.tasks.generative import build_prompt, dolly_match_keys
from test_generative_tasks import assert_reasoning_items
from test_tasks import assert_well_formed

DATA = os.environ.get("ARMADA_TEST_DATA", "")
if not DATA:
    pytest.skip("the published data files are not given: set ARMADA_TEST_DATA to the folder holding glue/, superglue/ "
                "and generative/ to check them", allow_module_level=True)

# Rows per split (train, validation) of the published files (the data folder's README).
SUITE_ROWS = {
    "glue/cola": ("glue", 8551, 1043),
    "glue/mrpc": ("glue", 3668, 408),
    "glue/rte": ("glue", 2490, 277),
    "glue/stsb": ("glue", 5749, 1500),
    "glue/sst2": ("glue", 67349, 872),
    "super_glue/rte": ("superglue", 2490, 277),
    "super_glue/copa": ("superglue", 400, 100),
    "super_glue/wsc": ("superglue", 554, 104),
}
REASONING_ROWS = {   # the generative README's table: (test rows, train rows or None)
    "reasoning/arc-c": (1172, 1119), "reasoning/arc-e": (2376, 2251), "reasoning/boolq": (3270, 9427),
    "reasoning/openbookqa": (500, 4957), "reasoning/piqa": (1838, None), "reasoning/social-iqa": (1954, None),
    "reasoning/winogrande": (1267, None), "reasoning/multiarith": (600, None), "reasoning/singleeq": (508, None),
    "reasoning/aqua": (254, None), "reasoning/addsub": (395, None), "reasoning/svamp": (1000, None),
    "reasoning/gsm8k": (1319, None),
}


@pytest.fixture(scope="module")
def data() -> Path:
    folder = Path(DATA)
    if not (folder / "glue").is_dir():
        raise RuntimeError(f"ARMADA_TEST_DATA={DATA}: no glue/ folder there; point it at the folder holding glue/, "
                           "superglue/ and generative/")
    return folder


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("name", sorted(SUITE_ROWS))
def test_suite_files(name, data):
    suite, n_train, n_dev = SUITE_ROWS[name]
    task = get_task(name)
    train = task.load("train", data_dir=str(data / suite))
    dev = task.load("validation", data_dir=str(data / suite))
    assert (len(train), len(dev)) == (n_train, n_dev)
    for split in (train, dev):
        assert_well_formed(task, split)


def test_rte_test_file_has_no_labels(data):
    test = get_task("glue/rte").load("test", data_dir=str(data / "glue"))
    assert len(test) == 3000 and all(e.label is None for e in test.examples)


def test_dolly_splits_hold_the_evaluation_rows_out_of_train(data):
    instruction = data / "generative" / "instruction"
    task = get_task("instruct/dolly")
    dolly = {split: task.load(split, data_dir=str(instruction)) for split in task.splits}
    assert {name: len(split) for name, split in dolly.items()} == {"train": 13454, "validation": 1000, "test": 500}
    release = _jsonl(instruction / "dolly-15k" / "databricks-dolly-15k.jsonl")
    release_keys = set().union(*(dolly_match_keys({"instruction": r["instruction"], "input": r["context"],
                                                   "output": r["response"]}) for r in release))
    keys = {name: [dolly_match_keys(e.fields | {"output": e.references[0]}) for e in dolly[name].examples]
            for name in ("validation", "test")}
    # The documented matching finds every test row and all but one validation row in the release...
    assert sum(bool(k & release_keys) for k in keys["test"]) == 500
    assert sum(bool(k & release_keys) for k in keys["validation"]) == 999
    # ...and no training row matches an evaluation row.
    held_out = set().union(*keys["validation"], *keys["test"])
    assert not any(dolly_match_keys(e.fields | {"output": e.references[0]}) & held_out for e in dolly["train"].examples)
    assert len(release) - len(dolly["train"]) == 1557
    for split in dolly.values():
        assert len(set(split.ids)) == len(split)
        assert all(len(e.references) == 1 and e.references[0].strip() for e in split.examples)


def test_sinst_and_minillm_prompts(data):
    instruction = data / "generative" / "instruction"
    split = get_task("instruct/sinst").load("test", data_dir=str(instruction))
    assert len(split) == 1694
    assert [list(e.references) for e in split.examples] == [r["output"] for r in _jsonl(instruction / "eval" / "sinst" / "valid.jsonl")]
    for file in ("dolly/valid.jsonl", "dolly/dev.jsonl", "sinst/valid.jsonl"):
        rows = _jsonl(instruction / "eval" / file)
        assert all(build_prompt(r["instruction"], r["input"]) == r["prompt"] for r in rows), file


def test_reasoning_sets(data):
    reasoning = data / "generative" / "reasoning"
    for name, (n_test, n_train) in REASONING_ROWS.items():
        task = get_task(name)
        for split_name, rows in (("test", n_test), ("train", n_train)):
            if rows is None:
                continue
            assert_reasoning_items(task, split=task.load(split_name, data_dir=str(reasoning)), rows=rows)
    math = get_task("reasoning/math-train").load("train", data_dir=str(reasoning))
    assert len(math) == 3257 and all(e.label is None and e.references[0].strip() for e in math.examples)
    assert not {"175", "1448", "2920"} & {i.split("-")[0] for i in math.ids}          # the items without a response
