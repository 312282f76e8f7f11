"""Tasks read from the hub and from local files through the same definitions."""

import json

import pytest

from armada import config
from armada.errors import ArmadaError
from armada.tasks import STUDENT_INPUT, get_task, task_names
from armada.tasks.registry import TASKS

# The layouts of the published files, a few rows each (tests/fixtures/data; the whole files: test_published_data.py).
SUITES = {"glue/cola": "glue", "glue/mrpc": "glue", "glue/rte": "glue", "glue/stsb": "glue", "glue/sst2": "glue",
          "super_glue/rte": "superglue", "super_glue/copa": "superglue", "super_glue/copa-authors": "superglue",
          "super_glue/wsc": "superglue"}
FIXTURE_ROWS = 16


def test_the_registry_has_the_papers_tasks():
    expected = {f"glue/{t}" for t in ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte")}
    expected |= {f"super_glue/{t}" for t in ("boolq", "cb", "copa", "rte", "wic", "wsc")} | {"bbc-news"}
    expected |= {"super_glue/copa-authors"}     # COPA as the authors' code builds it (docs/recipes.md)
    expected |= {"instruct/dolly", "instruct/dolly-test", "instruct/sinst", "reasoning/math-train"}
    expected |= {f"reasoning/{t}" for t in ("arc-e", "arc-c", "openbookqa", "boolq", "piqa", "social-iqa", "winogrande",
                                            "multiarith", "singleeq", "aqua", "addsub", "svamp", "gsm8k")}
    assert set(task_names()) == expected


@pytest.mark.parametrize("name", sorted(SUITES))
def test_local_files_as_published(name, task_files):
    task = get_task(name)
    train = task.load("train", data_dir=str(task_files / SUITES[name]))
    dev = task.load("validation", data_dir=str(task_files / SUITES[name]))
    assert (len(train), len(dev)) == (FIXTURE_ROWS, FIXTURE_ROWS)
    for split in (train, dev):
        assert_well_formed(task, split)


def assert_well_formed(task, split) -> None:
    """Unique ids, a teacher text per row, labels in the task's range, one input per choice (tests/test_published_data.py
    checks the whole published files the same way)."""
    assert len(set(split.ids)) == len(split)
    assert all(e.teacher_text.strip() for e in split.examples)
    if task.kind == "regression":
        assert all(0.0 <= e.label <= 5.0 for e in split.examples)
    else:
        assert {e.label for e in split.examples} <= set(range(task.num_labels))
    choices = 2 if task.kind == "multiple_choice" else 1
    assert all(len(e.inputs) == choices for e in split.examples)


def test_suite_folder_and_task_folder_read_the_same(task_files):
    task = get_task("glue/rte")
    a = task.load("validation", data_dir=str(task_files / "glue"))
    b = task.load("validation", data_dir=str(task_files / "glue" / "RTE"))
    assert a.fingerprint() == b.fingerprint() and a.ids == b.ids


def test_missing_local_folder_says_what_to_point_at(tmp_path):
    with pytest.raises(ArmadaError, match=r"neither a CoLA/ folder nor the CoLA files"):
        get_task("glue/cola").load("train", data_dir=str(tmp_path))


def test_unindexed_ids_combine_position_and_content(task_files, tmp_path):
    """CoLA has no index column: an id is never the line number alone."""
    task = get_task("glue/cola")
    dev = task.load("validation", data_dir=str(task_files / "glue"))
    assert dev.ids[0].startswith("0-") and len(dev.ids[0]) > 2
    lines = (task_files / "glue" / "CoLA" / "dev.tsv").read_text().splitlines(keepends=True)
    (tmp_path / "CoLA").mkdir()
    (tmp_path / "CoLA" / "dev.tsv").write_text("".join(lines[1:]))      # one row dropped at the top
    shifted = task.load("validation", data_dir=str(tmp_path))
    assert not set(shifted.ids) & set(dev.ids[1:2])                      # a dropped row cannot shift ids silently
    assert shifted.ids[0].split("-")[1] == dev.ids[1].split("-")[1]      # same text, same content hash


def test_hub_rows_give_the_same_examples_as_local_files(task_files, monkeypatch):
    """The hub path (datasets.load_dataset) and --data-dir go through one definition."""
    import datasets

    rte = get_task("glue/rte").load("validation", data_dir=str(task_files / "glue"))
    copa = get_task("super_glue/copa").load("validation", data_dir=str(task_files / "superglue"))
    wsc_rows = [json.loads(line) for line in (task_files / "superglue" / "WSC" / "val.jsonl").read_text().splitlines()]
    wsc = get_task("super_glue/wsc").load("validation", data_dir=str(task_files / "superglue"))

    def fake_hub(path, name, split):
        # The hub's field names and label encodings: ints for labels, spans flattened for WSC.
        if (path, name) == ("nyu-mll/glue", "rte"):
            return datasets.Dataset.from_list([
                {"sentence1": e.fields["sentence1"], "sentence2": e.fields["sentence2"], "label": e.label, "idx": int(e.id)}
                for e in rte.examples])
        if (path, name) == ("aps/super_glue", "copa"):
            return datasets.Dataset.from_list([{**e.fields, "label": e.label, "idx": int(e.id)} for e in copa.examples])
        if (path, name) == ("aps/super_glue", "wsc"):
            return datasets.Dataset.from_list([
                {"text": r["text"], **r["target"], "label": int(r["label"]), "idx": r["idx"]} for r in wsc_rows])
        raise AssertionError((path, name, split))

    monkeypatch.setattr(datasets, "load_dataset", fake_hub)
    assert get_task("glue/rte").load("validation").fingerprint() == rte.fingerprint()
    hub_copa = get_task("super_glue/copa").load("validation")
    assert hub_copa.fingerprint() == copa.fingerprint()
    assert [e.inputs for e in hub_copa.examples] == [e.inputs for e in copa.examples]
    assert get_task("super_glue/wsc").load("validation").fingerprint() == wsc.fingerprint()


def test_unreachable_hub_says_how_to_use_local_files():
    with pytest.raises(ArmadaError, match=r"(?s)glue/cola: could not load nyu-mll/glue.*--data-dir DIR, where DIR holds CoLA/"):
        get_task("glue/cola").load("train")


def test_teacher_text_default_and_template(task_files):
    task = get_task("glue/mrpc")
    example = task.load("validation", data_dir=str(task_files / "glue"), limit=1).examples[0]
    assert example.teacher_text == f"{example.fields['sentence1']} {example.fields['sentence2']}".lower()
    templated = task.load("validation", data_dir=str(task_files / "glue"), limit=1, template="{sentence2}").examples[0]
    assert templated.teacher_text == example.fields["sentence2"]
    with pytest.raises(ArmadaError, match=r"uses \['title'\].*\{sentence1\}, \{sentence2\}"):
        task.load("validation", data_dir=str(task_files / "glue"), template="{title}")


def test_a_text_teacher_reads_the_student_input_as_is(task_files):
    """STUDENT_INPUT: the teacher text is the student's input (pairs as pairs, case kept), so a text
    teacher's cache hashes, deduplicates and fingerprints exactly what it reads."""
    mrpc = get_task("glue/mrpc").load("validation", data_dir=str(task_files / "glue"), limit=3, template=STUDENT_INPUT)
    example = mrpc.examples[0]
    assert json.loads(example.teacher_text) == [[example.fields["sentence1"], example.fields["sentence2"]]]
    assert example.inputs == ((example.fields["sentence1"], example.fields["sentence2"]),)
    default = get_task("glue/mrpc").load("validation", data_dir=str(task_files / "glue"), limit=3)
    assert mrpc.teacher_hashes != default.teacher_hashes and mrpc.fingerprint() != default.fingerprint()
    copa = get_task("super_glue/copa").load("validation", data_dir=str(task_files / "superglue"), limit=1,
                                            template=STUDENT_INPUT).examples[0]
    assert json.loads(copa.teacher_text) == [list(choice) for choice in copa.inputs] and len(copa.inputs) == 2


def test_limit_and_split_fingerprints(task_files):
    task = get_task("super_glue/copa")
    full = task.load("train", data_dir=str(task_files / "superglue"))
    head = task.load("train", data_dir=str(task_files / "superglue"), limit=10)
    assert head.ids == full.ids[:10] and head.fingerprint() != full.fingerprint()
    with pytest.raises(ArmadaError, match="has no split 'dev'"):
        task.load("dev", data_dir=str(task_files / "superglue"))


def test_bbc_news_fixed_split():
    task = get_task("bbc-news")
    train, dev = task.load("train"), task.load("validation")
    assert (len(train), len(dev)) == (1781, 444)
    assert not set(train.ids) & set(dev.ids)
    assert all(int(i.split("/")[1]) % 5 == 0 for i in dev.ids)
    assert sorted({train.examples[i].label for i in range(5)}) == [0, 1, 2, 3, 4]   # interleaved topics
    pound = next(e for e in train.examples if e.id == "sports/199")                 # the Windows-1252 article
    assert "£15.8" in pound.inputs[0][0]
    assert task.load("train", template="{title}").examples[0].teacher_text == train.examples[0].fields["title"]


def _file_task(tmp_path, name, text, **spec):
    path = tmp_path / name
    path.write_text(text)
    cfg = config.load(None, sets=[f'tasks.t.train="{path}"'] + [f"tasks.t.{k}={json.dumps(v)}" for k, v in spec.items()])
    return get_task("file:t", cfg.tasks)


def test_file_tasks_csv_tsv_jsonl(tmp_path):
    csv_task = _file_task(tmp_path, "a.csv", 'text,label\n"hello, world",pos\nbye,neg\n', labels=["neg", "pos"])
    assert [e.label for e in csv_task.load("train").examples] == [1, 0]
    tsv_task = _file_task(tmp_path, "a.tsv", "id\tq\tp\tscore\nx1\tA?\tB.\t0.5\n", text_fields=["q", "p"],
                          label_field="score", id_field="id", kind="regression", metric="pearson_spearman")
    example = tsv_task.load("train").examples[0]
    assert (example.id, example.label, example.inputs) == ("x1", 0.5, (("A?", "B."),))
    jsonl_task = _file_task(tmp_path, "a.jsonl", '{"text": "é\\u0007", "label": 1}\n', labels=["0", "1"])
    assert jsonl_task.load("train").examples[0].label == 1


def test_file_task_bad_rows_are_named(tmp_path):
    bad_label = _file_task(tmp_path, "b.csv", "text,label\nfine,pos\nodd,maybe\n", labels=["neg", "pos"])
    with pytest.raises(ArmadaError, match=r"label 'maybe' at .*b\.csv:3 is not in the task's label set \['neg', 'pos'\]"):
        bad_label.load("train")
    duplicate = _file_task(tmp_path, "c.csv", "id,text,label\n7,a,pos\n7,b,neg\n", labels=["neg", "pos"], id_field="id")
    with pytest.raises(ArmadaError, match=r"example id '7' appears twice"):
        duplicate.load("train")
    missing = _file_task(tmp_path, "d.csv", "sentence,label\na,pos\n", labels=["neg", "pos"])
    with pytest.raises(ArmadaError, match=r"no field 'text'"):
        missing.load("train")
    with pytest.raises(ArmadaError, match=r"needs labels"):
        _file_task(tmp_path, "e.csv", "text,label\na,pos\n")


def test_unknown_task_lists_the_valid_ones():
    with pytest.raises(ArmadaError, match=r"unknown task 'glue/cola2'; the tasks are: .*glue/cola"):
        get_task("glue/cola2")
    assert set(TASKS) == set(task_names())
