"""Generative evaluation: answer extraction, RougeL, batched generation, choice log-likelihood, split scoring.

The causal LMs are tiny LLaMA and OPT models built from configs with a byte-level BPE tokenizer
trained on a few sentences; both are saved to a folder and loaded back with `from_pretrained`.
"""

import math

import pytest
import torch

from armada.errors import ArmadaError
from armada.eval import answers
from armada.eval import generative
from armada.eval.generation import Decoding, generate
from armada.eval.likelihood import ChoiceScores, score_choices
from armada.eval.rouge import rouge_l
from armada.tasks import get_task
from armada.tasks.generative import build_prompt, encode_prompt

CORPUS = [
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.",
    "### Instruction: ### Input: ### Response: the correct answer is answer1 answer2 true false solution1 option2",
    "What colour is the sky? blue green red. The cat sat on the mat; 1,234.5 dollars (A) (B) (C) (D) (E)",
]


def _tokenizer(folder):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(CORPUS * 10, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    # No pad token, as many causal LMs ship.
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>").save_pretrained(folder)


def _build(folder, family):
    from transformers import LlamaConfig, LlamaForCausalLM, OPTConfig, OPTForCausalLM

    _tokenizer(folder)
    torch.manual_seed(0)
    # A wide initialisation makes the next token depend on the prompt, so batching mistakes show.
    if family == "llama":
        config = LlamaConfig(vocab_size=400, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                             bos_token_id=1, eos_token_id=2, initializer_range=0.5)
        LlamaForCausalLM(config).save_pretrained(folder)
    else:
        config = OPTConfig(vocab_size=400, hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4,
                           word_embed_proj_dim=32, max_position_embeddings=1024, bos_token_id=1, eos_token_id=2,
                           pad_token_id=0, init_std=0.5)
        OPTForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=["llama", "opt"])
def tiny_lm(request, tmp_path_factory):
    """(model, tokenizer) loaded back from a saved folder through from_pretrained."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = _build(tmp_path_factory.mktemp(request.param), request.param)
    return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


# --- answer extraction (LLM-Adapters) --------------------------------------------------------

ARC = ("answer1", "answer2", "answer3", "answer4", "answer5")


@pytest.mark.parametrize("text, expected", [
    ("the correct answer is answer3", "answer3"),
    ("answer2 or answer4? I say answer4", "answer2"),            # the first option word, not the last
    ("The correct Answer3 is blue", ""),                         # case-sensitive
    ("see answer12", "answer1"),                                 # no word boundaries
    ("I do not know", ""),
])
def test_option_words_first_occurrence(text, expected):
    assert answers.extract("option", text, ARC) == expected


@pytest.mark.parametrize("text, expected", [
    ("the correct answer is false", "false"),
    ("true, or rather false", "true"),
    ("True", ""),                                                # LLM-Adapters matches lowercase only
    ("it is untrue", "true"),
])
def test_true_false(text, expected):
    assert answers.extract("option", text, ("true", "false")) == expected


@pytest.mark.parametrize("text, expected", [
    ("The answer is (D).", "D"),
    ("Answer: (D)", "A"),                                        # the capital A of "Answer" comes first
    ("so 4 + 5 = 9, the answer is c", ""),
    ("\n (E) 12", "E"),
])
def test_option_letters(text, expected):
    assert answers.extract("option", text, tuple("ABCDE")) == expected


@pytest.mark.parametrize("text, expected", [
    ("The answer is 1,234.5.", 1234.5),
    ("3 apples and 4 pears make 7", 7.0),
    ("from 3-4", -4.0),                                          # "-4" is a number to their regex
    ("costs $-2.50 now", -2.5),
    ("1.2.3", 3.0),
    ("The answer is 5.", 5.0),
    ("no number here", None),
    ("", None),
])
def test_last_number(text, expected):
    assert answers.extract("number", text) == expected


def test_numbers_compare_with_their_tolerance():
    assert answers.is_correct("number", 15.0004, "15.0")
    assert not answers.is_correct("number", 15.002, 15.0)
    assert not answers.is_correct("number", None, 15.0)
    assert answers.is_correct("option", "answer2", "answer2") and not answers.is_correct("option", "", "answer2")


def test_unknown_answer_format_is_named():
    with pytest.raises(ArmadaError, match=r"unknown answer format 'letters'"):
        answers.extract("letters", "A")


# --- RougeL ----------------------------------------------------------------------------------

def test_rouge_l_against_hand_computed_values():
    # LCS("the cat sat on the mat", "the cat is on the mat") = the cat on the mat: 5 of 6 tokens each way.
    assert rouge_l("the cat sat on the mat", ["the cat is on the mat"]) == pytest.approx(5 / 6)
    # Lowercased, punctuation dropped: identical token lists.
    assert rouge_l("The Cat, sat!", ["the cat sat"]) == pytest.approx(1.0)
    # Stemming: "running dogs" and "run dog" stem to the same tokens.
    assert rouge_l("running dogs", ["run dog"]) == pytest.approx(1.0)
    # P = 2/2, R = 2/4: F = 2PR/(P+R) = 2/3.
    assert rouge_l("blue sky", ["the blue sky above"]) == pytest.approx(2 / 3)
    # The best of several references counts.
    assert rouge_l("blue sky", ["green grass", "the blue sky above"]) == pytest.approx(2 / 3)
    assert rouge_l("", ["anything"]) == 0.0
    assert rouge_l("日本語", ["日本語"]) == 0.0                     # the package keeps [a-z0-9] only


# --- generation ------------------------------------------------------------------------------

PROMPTS = [build_prompt("What colour is the sky?"), build_prompt("Give me 1,234.5 things", "the cat sat on the mat"),
           build_prompt("x"), build_prompt("List five colours, with a long explanation of each one of them please")]


def test_batched_generation_equals_one_at_a_time(tiny_lm):
    model, tokenizer = tiny_lm
    model.train()
    batched = generate(model, tokenizer, PROMPTS, Decoding(max_new_tokens=10, batch_size=3))
    single = [generate(model, tokenizer, [p], Decoding(max_new_tokens=10, batch_size=1))[0] for p in PROMPTS]
    assert batched == single
    assert len(set(batched)) > 1                                # the outputs depend on the prompt
    assert model.training                                       # the caller's mode is restored
    model.eval()
    assert tokenizer.pad_token is None                          # the tokenizer is left as it was


def test_generation_returns_the_continuation_until_eos(tiny_lm):
    model, tokenizer = tiny_lm
    ids = torch.tensor([encode_prompt(tokenizer, PROMPTS[0])])
    with torch.no_grad():
        full = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False,
                              pad_token_id=2, eos_token_id=2)[0, ids.shape[1]:].tolist()
    assert generate(model, tokenizer, PROMPTS[:1], Decoding(max_new_tokens=6))[0] == tokenizer.decode(full)
    stop = full[3]                                              # make a token the model writes an end of sequence
    original = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = [2, stop]
    try:
        out = generate(model, tokenizer, PROMPTS, Decoding(max_new_tokens=6, batch_size=4))
        assert out[0] == tokenizer.decode(full[:full.index(stop)])
        assert out == [generate(model, tokenizer, [p], Decoding(max_new_tokens=6))[0] for p in PROMPTS]
    finally:
        model.generation_config.eos_token_id = original


def test_beam_search_batched_equals_one_at_a_time(tiny_lm):
    model, tokenizer = tiny_lm
    decoding = Decoding(max_new_tokens=5, num_beams=3, batch_size=2)
    assert generate(model, tokenizer, PROMPTS[:2], decoding) == [generate(model, tokenizer, [p], decoding)[0] for p in PROMPTS[:2]]


def test_a_prompt_longer_than_the_model_is_refused(tiny_lm):
    model, tokenizer = tiny_lm
    long_prompt = build_prompt("sky " * 1100)
    with pytest.raises(ArmadaError, match=r"the prompt 'Below is .* positions .* more than the model's 1024"):
        generate(model, tokenizer, [PROMPTS[0], long_prompt], Decoding(max_new_tokens=4))
    with pytest.raises(ArmadaError, match=r"more than the model's 1024"):
        score_choices(model, tokenizer, [(long_prompt, ["blue"])])


def test_a_chat_template_prompt_gets_no_second_bos(tiny_lm):
    _, tokenizer = tiny_lm
    assert encode_prompt(tokenizer, "hello")[0] == tokenizer.bos_token_id
    assert encode_prompt(tokenizer, "<s>hello") == encode_prompt(tokenizer, "hello")


# --- log-likelihood of choices ---------------------------------------------------------------

COLOURS = {"What colour is the sky?": "blue", "What colour is grass?": "green", "What colour is blood?": "red"}


def _teach(model, tokenizer, steps=25):
    """A few steps on prompt → answer, so each prompt has one clearly likely continuation."""
    sequences = [encode_prompt(tokenizer, build_prompt(q)) + tokenizer(a, add_special_tokens=False)["input_ids"]
                 for q, a in COLOURS.items()]
    width = max(map(len, sequences))
    ids = torch.tensor([s + [2] * (width - len(s)) for s in sequences])
    labels = torch.tensor([s + [-100] * (width - len(s)) for s in sequences])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = model(input_ids=ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@pytest.fixture(scope="module")
def taught_llama(tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = _build(tmp_path_factory.mktemp("taught"), "llama")
    model, tokenizer = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    _teach(model, tokenizer)
    return model, tokenizer


def test_log_likelihood_picks_the_taught_choice(taught_llama):
    model, tokenizer = taught_llama
    items = [(build_prompt(q), ["blue", "green", "red"]) for q in COLOURS]
    scores = score_choices(model, tokenizer, items, batch_size=4)
    assert [s.best for s in scores] == [0, 1, 2] and [s.best_mean for s in scores] == [0, 1, 2]
    for s, gold in zip(scores, (0, 1, 2)):
        assert s.sums[gold] > max(v for i, v in enumerate(s.sums) if i != gold) + 2.0   # clearly, not by a hair


def test_padding_side_does_not_change_scores(tiny_lm):
    model, tokenizer = tiny_lm
    items = [(PROMPTS[0], ["blue", "a much longer continuation with many tokens"]), (PROMPTS[1], ["true", "false", "(C)"])]
    side = tokenizer.padding_side
    try:
        by_side = {}
        for tokenizer.padding_side in ("left", "right"):
            by_side[tokenizer.padding_side] = score_choices(model, tokenizer, items, batch_size=5)
    finally:
        tokenizer.padding_side = side
    alone = [score_choices(model, tokenizer, [(p, [c])], batch_size=1)[0].sums[0] for p, cs in items for c in cs]
    for scores in by_side.values():
        assert [v for s in scores for v in s.sums] == pytest.approx(alone, abs=1e-4)
    assert [s.lengths for s in by_side["left"]] == [s.lengths for s in by_side["right"]]


def test_choice_scores_sum_mean_and_ties():
    scores = ChoiceScores(sums=(-4.0, -3.0, -3.0), lengths=(4, 1, 3))
    assert scores.means == (-1.0, -3.0, -1.0)
    assert scores.best == 1                                     # the first of the tied sums
    assert scores.best_mean == 0                                # the first of the tied means


def test_a_choice_without_tokens_is_named(tiny_lm):
    model, tokenizer = tiny_lm
    with pytest.raises(ArmadaError, match=r"the choice '' .* has no tokens"):
        score_choices(model, tokenizer, [(PROMPTS[0], ["blue", ""])])


# --- scoring a split -------------------------------------------------------------------------

def test_score_split_metrics_from_known_outputs(task_files, monkeypatch):
    """The metric arithmetic, with the generated texts fixed."""
    reasoning, instruction = task_files / "generative" / "reasoning", task_files / "generative" / "instruction"
    boolq = get_task("reasoning/boolq").load("test", data_dir=str(reasoning), limit=4)
    gold = [boolq.task.labels[e.label] for e in boolq.examples]
    outputs = [f"the correct answer is {gold[0]}", "True", f"{gold[2]}", "no idea"]
    monkeypatch.setattr(generative, "generate", lambda model, tokenizer, prompts, decoding: outputs)
    result = generative.score_split(boolq, None, None, likelihood=False)
    assert result.metric == "accuracy" and result.scores == {"accuracy": 0.5}
    assert [p.correct for p in result.predictions] == [True, False, True, False]
    assert [p.answer for p in result.predictions] == [gold[0], "", gold[2], ""]

    multiarith = get_task("reasoning/multiarith").load("test", data_dir=str(reasoning), limit=2)
    outputs = [f"so it is {multiarith.examples[0].label:,.1f}.", "The answer is 1,000,000"]
    assert generative.score_split(multiarith, None, None).scores == {"accuracy": 0.5}

    sinst = get_task("instruct/sinst").load("test", data_dir=str(instruction), limit=3)
    outputs = [e.references[-1] for e in sinst.examples]       # any reference scores 1
    result = generative.score_split(sinst, None, None)
    assert result.metric == "rougeL" and result.scores["rougeL"] == pytest.approx(1.0)
    assert all(p.rouge_l == pytest.approx(1.0) for p in result.predictions)


def test_score_split_with_a_tiny_model(tiny_lm, task_files):
    model, tokenizer = tiny_lm
    reasoning = task_files / "generative" / "reasoning"
    split = get_task("reasoning/piqa").load("test", data_dir=str(reasoning), limit=3)
    result = generative.score_split(split, model, tokenizer, Decoding(max_new_tokens=4, batch_size=3))
    assert set(result.scores) == {"accuracy", "loglik_accuracy", "loglik_mean_accuracy"}
    assert all(0.0 <= v <= 1.0 for v in result.scores.values())
    assert [p.id for p in result.predictions] == split.ids
    assert all(p.choice in (0, 1) and p.choice_mean in (0, 1) for p in result.predictions)
    expected = score_choices(model, tokenizer, [(build_prompt(*e.inputs[0]), e.choices) for e in split.examples])
    assert [p.choice for p in result.predictions] == [s.best for s in expected]
    assert result.scores["loglik_accuracy"] == pytest.approx(
        sum(s.best == e.label for s, e in zip(expected, split.examples)) / len(split))
    texts = generate(model, tokenizer, [build_prompt(*e.inputs[0]) for e in split.examples], Decoding(max_new_tokens=4))
    assert [p.output for p in result.predictions] == texts
    assert not math.isnan(result.scores["accuracy"])


def test_only_generative_tasks_are_scored(task_files):
    split = get_task("super_glue/copa").load("validation", data_dir=str(task_files / "superglue"), limit=2)
    with pytest.raises(ArmadaError, match=r"super_glue/copa is a multiple_choice task"):
        generative.score_split(split, None, None)
