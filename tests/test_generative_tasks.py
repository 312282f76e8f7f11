"""Generative tasks on a few rows of each published layout (tests/fixtures/data): Dolly and its held-out rows, SInst,
instruction JSONL, LLM-Adapters reasoning sets. The whole published files: test_published_data.py."""

import json

import pytest

from armada import config
from armada.errors import ArmadaError
from armada.tasks import get_task
from armada.tasks.generative import build_prompt, dolly_match_keys

REASONING = {   # the task and whether it has a train split; the fixture files hold 5 items each
    "reasoning/arc-c": True, "reasoning/arc-e": True, "reasoning/boolq": True, "reasoning/openbookqa": True,
    "reasoning/piqa": False, "reasoning/social-iqa": False, "reasoning/winogrande": False, "reasoning/multiarith": False,
    "reasoning/singleeq": False, "reasoning/aqua": False, "reasoning/addsub": False, "reasoning/svamp": False,
    "reasoning/gsm8k": False,
}
FIXTURE_ITEMS = 5


@pytest.fixture(scope="module")
def instruction(task_files):
    return task_files / "generative" / "instruction"


@pytest.fixture(scope="module")
def reasoning(task_files):
    return task_files / "generative" / "reasoning"


@pytest.fixture(scope="module")
def dolly(instruction):
    task = get_task("instruct/dolly")
    return {split: task.load(split, data_dir=str(instruction)) for split in task.splits}


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_generative_tasks_are_registered_and_listed():
    from typer.testing import CliRunner

    from armada.cli import app

    names = {"instruct/dolly", "instruct/dolly-test", "instruct/sinst", "reasoning/math-train", *REASONING}
    listed = CliRunner().invoke(app, ["tasks"]).output
    for name in names:
        task = get_task(name)
        assert task.kind == "generation" and task.metric == ("rougeL" if name.startswith("instruct") or name.endswith("math-train") else "accuracy")
        assert f"\n{name} " in "\n" + listed
    assert get_task("reasoning/aqua").labels == tuple("ABCDE")
    assert get_task("reasoning/boolq").labels == ("true", "false")
    assert get_task("reasoning/gsm8k").answer_format == "number"


# --- Dolly -----------------------------------------------------------------------------------

def test_dolly_splits_hold_the_evaluation_rows_out_of_train(dolly, instruction):
    """The fixture's release: the 11 rows its evaluation rows match (one only without citation marks) and 8 others."""
    assert {name: len(split) for name, split in dolly.items()} == {"train": 8, "validation": 5, "test": 7}
    release = _jsonl(instruction / "dolly-15k" / "databricks-dolly-15k.jsonl")
    release_keys = set().union(*(dolly_match_keys({"instruction": r["instruction"], "input": r["context"],
                                                   "output": r["response"]}) for r in release))
    held_out = set().union(*(dolly_match_keys(e.fields | {"output": e.references[0]})
                             for name in ("validation", "test") for e in dolly[name].examples))
    # Every test row and all but one validation row (as in the real files) match a release row...
    assert sum(bool(dolly_match_keys(e.fields | {"output": e.references[0]}) & release_keys) for e in dolly["test"].examples) == 7
    assert sum(bool(dolly_match_keys(e.fields | {"output": e.references[0]}) & release_keys)
               for e in dolly["validation"].examples) == 4
    # ...and no training row matches an evaluation row.
    assert not any(dolly_match_keys(e.fields | {"output": e.references[0]}) & held_out for e in dolly["train"].examples)
    assert len(release) - len(dolly["train"]) == 11
    for split in dolly.values():
        assert len(set(split.ids)) == len(split)
        assert all(len(e.inputs) == 1 and len(e.inputs[0]) == 2 and e.label is None for e in split.examples)
        assert all(len(e.references) == 1 and e.references[0].strip() for e in split.examples)


def test_dolly_matching_ignores_citation_marks_and_whitespace_only():
    row = {"instruction": "When did  Virgin Australia start?", "input": "It began in 2000.[3] It grew.[a]", "output": "In 2000."}
    edited = {"instruction": "When did Virgin Australia start?", "input": "It began in 2000. It grew.", "output": "2000"}
    assert dolly_match_keys(row) & dolly_match_keys(edited)                     # same instruction and context
    edited_context = {**row, "input": "A new context."}
    assert dolly_match_keys(row) & dolly_match_keys(edited_context)             # same instruction and response
    ipa = {**row, "input": "Brdinje (pronounced [bəɾˈdiːnjɛ])", "output": "A village."}
    assert not dolly_match_keys(ipa) & dolly_match_keys({**ipa, "input": "Brdinje (pronounced )", "output": "A hamlet."})


def test_dolly_ids_do_not_depend_on_where_the_release_comes_from(dolly, instruction, monkeypatch):
    """--data-dir as the instruction folder, the dolly-15k folder, or eval/dolly with the release from the hub."""
    import datasets

    task = get_task("instruct/dolly")
    from_release_folder = task.load("train", data_dir=str(instruction / "dolly-15k"))
    assert from_release_folder.fingerprint() == dolly["train"].fingerprint()
    assert task.load("test", data_dir=str(instruction / "dolly-15k")).ids == dolly["test"].ids

    release = _jsonl(instruction / "dolly-15k" / "databricks-dolly-15k.jsonl")
    calls = []

    def fake_hub(path, name, split):
        calls.append((path, name, split))
        return datasets.Dataset.from_list(release)

    monkeypatch.setattr(datasets, "load_dataset", fake_hub)
    from_hub = task.load("train", data_dir=str(instruction / "eval" / "dolly"))
    assert calls == [("databricks/databricks-dolly-15k", None, "train")]
    assert from_hub.fingerprint() == dolly["train"].fingerprint()
    assert [e.references for e in from_hub.examples[:50]] == [e.references for e in dolly["train"].examples[:50]]


def test_dolly_test_task_is_the_dolly_test_split(dolly, instruction):
    test = get_task("instruct/dolly-test").load("test", data_dir=str(instruction))
    assert test.ids == dolly["test"].ids and test.fingerprint() != dolly["test"].fingerprint()   # same rows, another task
    assert [e.teacher_text for e in test.examples] == [e.teacher_text for e in dolly["test"].examples]


def test_dolly_needs_its_evaluation_files(tmp_path):
    task = get_task("instruct/dolly")
    with pytest.raises(ArmadaError, match=r"instruct/dolly: the validation split is read from local files; pass --data-dir"):
        task.load("validation")
    with pytest.raises(ArmadaError, match=r"--data-dir .*: instruct/dolly reads the test split from eval/dolly/valid.jsonl or"):
        task.load("test", data_dir=str(tmp_path))


def test_sinst_keeps_every_reference(instruction):
    split = get_task("instruct/sinst").load("test", data_dir=str(instruction))
    rows = _jsonl(instruction / "eval" / "sinst" / "valid.jsonl")
    assert len(split) == FIXTURE_ITEMS
    assert [list(e.references) for e in split.examples] == [r["output"] for r in rows]
    assert max(len(e.references) for e in split.examples) > 1


# --- prompts and teacher texts ---------------------------------------------------------------

@pytest.mark.parametrize("file", ["dolly/valid.jsonl", "dolly/dev.jsonl", "sinst/valid.jsonl"])
def test_alpaca_prompts_equal_minillms(instruction, file):
    """MiniLLM's files carry the prompt they were evaluated with; ours is the same text, row for row."""
    rows = _jsonl(instruction / "eval" / file)
    assert all(build_prompt(r["instruction"], r["input"]) == r["prompt"] for r in rows)
    assert any(r["input"] for r in rows) and (file.startswith("sinst") or any(not r["input"] for r in rows))


def test_chat_template_prompts(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"<unk>": 0, "</s>": 1}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    plain = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="</s>")
    plain.save_pretrained(tmp_path / "plain")
    plain.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
                           "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    plain.save_pretrained(tmp_path / "chat")
    chat, plain = AutoTokenizer.from_pretrained(tmp_path / "chat"), AutoTokenizer.from_pretrained(tmp_path / "plain")

    assert build_prompt("Name a fish.", tokenizer=chat) == "<|user|>Name a fish.</s><|assistant|>"
    assert build_prompt("Summarise.", "A long text.", tokenizer=chat) == "<|user|>Summarise.\n\nA long text.</s><|assistant|>"
    assert build_prompt("Name a fish.", tokenizer=chat, style="alpaca") == build_prompt("Name a fish.")
    assert build_prompt("Name a fish.", tokenizer=plain) == build_prompt("Name a fish.")
    with pytest.raises(ArmadaError, match=r"'chat' needs a tokenizer with a chat template"):
        build_prompt("Name a fish.", tokenizer=plain, style="chat")
    with pytest.raises(ArmadaError, match=r"unknown prompt style 'vicuna'"):
        build_prompt("Name a fish.", style="vicuna")


def test_generative_teacher_text_default_and_template(instruction):
    task = get_task("instruct/dolly-test")
    examples = task.load("test", data_dir=str(instruction)).examples
    with_input = next(e for e in examples if e.fields["input"])
    without = next(e for e in examples if not e.fields["input"])
    assert with_input.teacher_text == f"{with_input.fields['instruction']} {with_input.fields['input']}".lower()
    assert without.teacher_text == without.fields["instruction"].lower()             # no trailing space
    templated = task.load("test", data_dir=str(instruction), limit=3, template="{instruction}").examples
    assert [e.teacher_text for e in templated] == [e.fields["instruction"] for e in examples[:3]]
    with pytest.raises(ArmadaError, match=r"uses \['context'\].*\{instruction\}, \{input\}"):
        task.load("test", data_dir=str(instruction), template="{context}")


# --- instruction JSONL through file: ---------------------------------------------------------

def _generation_file_task(tmp_path, rows, **spec):
    path = tmp_path / "vicuna.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    sets = [f'tasks.v.test="{path}"', 'tasks.v.kind="generation"'] + [f"tasks.v.{k}={json.dumps(v)}" for k, v in spec.items()]
    return get_task("file:v", config.load(None, sets=sets).tasks)


def test_instruction_jsonl_with_a_field_mapping(tmp_path):
    rows = [{"qid": "q1", "question": "Why is the sky blue?", "context": "", "answers": ["Rayleigh scattering.", "Light scatters."]},
            {"qid": "q2", "question": "Summarise.", "context": "A long text.", "answers": "Short."}]
    task = _generation_file_task(tmp_path, rows, text_fields=["question", "context"], label_field="answers", id_field="qid")
    split = task.load("test")
    assert (task.kind, task.metric, task.answer_format) == ("generation", "rougeL", "text")
    assert split.ids == ["q1", "q2"]
    assert [e.inputs for e in split.examples] == [(("Why is the sky blue?", ""),), (("Summarise.", "A long text."),)]
    assert [e.references for e in split.examples] == [("Rayleigh scattering.", "Light scatters."), ("Short.",)]
    assert split.examples[1].teacher_text == "summarise. a long text."

    only_instruction = _generation_file_task(tmp_path, rows, text_fields=["question"], label_field="answers").load("test")
    assert only_instruction.examples[1].inputs == (("Summarise.", ""),)
    assert only_instruction.ids[0].startswith("0-")                                  # position + content hash


def test_instruction_jsonl_errors_name_the_row(tmp_path):
    rows = [{"instruction": "Say hi.", "output": "Hi."}, {"instruction": "Say bye."}]
    task = _generation_file_task(tmp_path, rows, text_fields=["instruction"], label_field="output")
    with pytest.raises(ArmadaError, match=r"vicuna\.jsonl:2: the response field 'output' must be a text or a list of texts, got None"):
        task.load("test")
    with pytest.raises(ArmadaError, match=r"a generation task takes text_fields = \[instruction field\] or"):
        _generation_file_task(tmp_path, rows, text_fields=["a", "b", "c"], label_field="output")


# --- LLM-Adapters reasoning sets -------------------------------------------------------------

def test_reasoning_sets_as_published(reasoning):
    for name, has_train in REASONING.items():
        task = get_task(name)
        assert task.splits == (("train", "test") if has_train else ("test",)), name
        for split_name in task.splits:
            split = task.load(split_name, data_dir=str(reasoning))
            assert_reasoning_items(task, split, FIXTURE_ITEMS)
    math = get_task("reasoning/math-train").load("train", data_dir=str(reasoning))
    assert len(math) == FIXTURE_ITEMS and all(e.label is None and e.references[0].strip() for e in math.examples)
    assert "5" not in {i.split("-")[0] for i in math.ids}           # the fixture's item without a response


def assert_reasoning_items(task, split, rows: int) -> None:
    """`rows` items with unique ids, each a number or 2-5 non-empty options with the answer among them
    (tests/test_published_data.py checks the whole published sets the same way)."""
    name = task.name
    assert len(split) == rows and len(set(split.ids)) == rows, name
    if task.answer_format == "number":
        assert all(isinstance(e.label, float) and not e.choices for e in split.examples), name
    else:
        assert all(2 <= len(e.choices) <= 5 and 0 <= e.label < len(e.choices) for e in split.examples), name
        assert all(all(c.strip() for c in e.choices) for e in split.examples), name


def test_reasoning_items_read_exactly(reasoning):
    def first(name):
        return get_task(name).load("test", data_dir=str(reasoning), limit=1).examples[0]

    arc = first("reasoning/arc-c")
    assert arc.choices == ("Planetary density will decrease.", "Planetary years will become longer.",
                           "Planetary days will become shorter.", "Planetary gravity will become stronger.")
    assert arc.label == 2 and arc.references == ("the correct answer is answer3",)
    assert arc.inputs[0][0].startswith("Please choose the correct answer to the question: An astronomer")
    assert first("reasoning/winogrande").choices == ("Sarah", "Maria")
    assert first("reasoning/piqa").choices[1].endswith("ripped jeans material, you will also need to supply it with a "
                                                      "water bottle and a food dish.")
    aqua = first("reasoning/aqua")
    assert (aqua.choices, aqua.label) == (("23.65", "1000", "35.62", "2.65", "1023.65"), 0)
    boolq = first("reasoning/boolq")
    assert (boolq.choices, boolq.label) == (("true", "false"), 1)
    assert first("reasoning/multiarith").label == 15.0
    siqa = get_task("reasoning/social-iqa").load("test", data_dir=str(reasoning), limit=1).examples[0]
    assert siqa.choices == ("make a new plan", "Go home and see Riley", "Find somewhere to go") and siqa.label == 2


def test_reasoning_folder_and_task_folder_read_the_same(reasoning):
    task = get_task("reasoning/openbookqa")
    assert task.load("test", data_dir=str(reasoning)).fingerprint() == \
        task.load("test", data_dir=str(reasoning / "openbookqa")).fingerprint()


ARC_ITEM = {"instruction": "Please choose the correct answer to the question: Which is a gas?\n\nAnswer1: ice "
                           "Answer2: steam Answer3: rock Answer4: wood\n\nAnswer format: answer1/answer2/answer3/answer4",
            "input": "", "output": "the correct answer is answer2", "answer": "answer2"}


@pytest.mark.parametrize("change, message", [
    ({"instruction": "Which is a gas? Answer1: ice Answer3: steam\n\nAnswer format: answer1/answer2"},
     r"test\.json\[1\]: the options of this reasoning/arc-e item cannot be read from its instruction \(the Answer1: Answer2:"),
    ({"instruction": ARC_ITEM["instruction"].replace("\n\nAnswer format: answer1/answer2/answer3/answer4", "")},
     r"test\.json\[1\]: .*cannot be read .*no 'Answer format:' line"),
    ({"instruction": ARC_ITEM["instruction"].replace("answer3/answer4", "answer3")},
     r"test\.json\[1\]: .*4 options but the answer format says 'answer1/answer2/answer3'"),
    ({"answer": "answer5"}, r"test\.json\[1\]: the answer 'answer5' names an option the instruction does not list \(it lists 4\)"),
    ({"answer": "answer7"}, r"label 'answer7' at .*test\.json\[1\] is not in the task's label set"),
    ({"answer": ""}, r"test\.json\[1\]: this reasoning/arc-e item has no answer"),
])
def test_bad_reasoning_items_are_named(tmp_path, change, message):
    folder = tmp_path / "ARC-Easy"
    folder.mkdir()
    (folder / "test.json").write_text(json.dumps([ARC_ITEM, {**ARC_ITEM, **change}]))
    with pytest.raises(ArmadaError, match=message):
        get_task("reasoning/arc-e").load("test", data_dir=str(tmp_path))


def test_bad_math_items_and_folders_are_named(tmp_path):
    folder = tmp_path / "SingleEq"
    folder.mkdir()
    (folder / "test.json").write_text(json.dumps([{"instruction": "1+1?", "input": "", "output": "", "answer": "two"}]))
    with pytest.raises(ArmadaError, match=r"SingleEq/test\.json\[0\]: the answer 'two' is not a number"):
        get_task("reasoning/singleeq").load("test", data_dir=str(tmp_path))
    (folder / "test.json").write_text('{"instruction": "1+1?"}')
    with pytest.raises(ArmadaError, match=r"test\.json: expected a JSON list"):
        get_task("reasoning/singleeq").load("test", data_dir=str(tmp_path))
    with pytest.raises(ArmadaError, match=r"reasoning/gsm8k: the test split is read from local files; pass --data-dir DIR, "
                                          r"where DIR holds gsm8k/test\.json"):
        get_task("reasoning/gsm8k").load("test")
    with pytest.raises(ArmadaError, match=r"reasoning/gsm8k reads the test split from gsm8k/test\.json or test\.json there"):
        get_task("reasoning/gsm8k").load("test", data_dir=str(tmp_path))
