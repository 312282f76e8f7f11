"""The authors' code made exact (issue 26): each point of `recipe = "authors"` that their code
(LCS2-IIITD/ARMADA) decides, against a hand computation, their own construction, or a tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import orthogonal

import distill_tiny as tiny
from armada.config import RECIPES, FileTask
from armada.distill.build import adamw
from armada.distill.data import TextHandling, encode, epoch_batches
from armada.distill.heads import HeadShape, TSAligner, _projection
from armada.distill.model import heads_config, load_aligner, predict_aligner
from armada.distill.recipe import _improved, train
from armada.tasks import get_task
from armada.tasks.metrics import compute, f1_macro, selection_score


def test_the_authors_recipe_sets_every_point_and_the_paper_recipe_keeps_the_old_behaviour():
    authors, paper = RECIPES["authors"], RECIPES["paper"]
    assert (authors["weight_decay_on"], authors["selection"], authors["aligner_kept"], authors["orthogonal_map"],
            authors["reshuffle_per_phase"], authors["lowercase"], authors["cls_segment_id"]) == (
        "all", "authors", "own-best", "matrix_exp", True, True, 1)
    assert (paper["weight_decay_on"], paper["selection"], paper["aligner_kept"], paper["orthogonal_map"],
            paper["reshuffle_per_phase"], paper["lowercase"], paper["cls_segment_id"]) == (
        "weights", "primary", "student-best", "cayley", False, False, 0)


def test_decay_on_every_parameter_shrinks_biases_and_norms_too():
    # With a zero gradient Adam's own step is 0 (m = v = 0), so one AdamW step is the decay alone: p ← p·(1 − lr·wd).
    def stepped(decay_on: str) -> nn.Module:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 2), nn.LayerNorm(2))
        optimizer = adamw(model, lr=0.1, weight_decay=0.5, decay_on=decay_on)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        optimizer.step()
        return before, model.state_dict()

    before, after = stepped("all")
    for name in before:                                 # weight, bias, norm weight, norm bias: all × 0.95
        assert torch.allclose(after[name], before[name] * 0.95)
    before, after = stepped("weights")
    assert torch.allclose(after["0.weight"], before["0.weight"] * 0.95)
    for name in ("0.bias", "1.weight", "1.bias"):        # BERT's habit: 1-d parameters exempt
        assert torch.equal(after[name], before[name])


def test_the_authors_select_cb_by_macro_f1_and_glue_by_the_first_score_of_their_chain():
    assert selection_score("accuracy_f1_macro", "authors") == "f1_macro"      # CB
    assert selection_score("accuracy", "authors") == "accuracy"               # BoolQ, COPA, RTE, WiC, WSC
    assert selection_score("mcc", "authors") == "mcc"                         # CoLA
    assert selection_score("accuracy_f1", "authors") == "f1"                  # MRPC, QQP
    assert selection_score("pearson_spearman", "authors") == "spearman"       # STS-B
    assert selection_score("accuracy_f1_macro", "primary") == "accuracy"
    assert get_task("super_glue/cb").metric == "accuracy_f1_macro"


def test_macro_f1_is_the_mean_of_the_per_class_f1s_by_hand():
    p, y = np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0])
    # class 0: tp 1, fp 1, fn 1 → 1/2; class 1: tp 1, fn 1 → 2/3; class 2: tp 1, fp 1 → 2/3
    assert f1_macro(p, y) == pytest.approx((1 / 2 + 2 / 3 + 2 / 3) / 3)
    assert compute("accuracy_f1_macro", p, y) == {"accuracy": pytest.approx(0.6), "f1_macro": pytest.approx(11 / 18)}


class _Objective:
    metric, selection, lower_is_better = "accuracy", "f1", False


def test_the_best_epoch_is_chosen_by_the_selection_score_not_the_reported_one():
    objective = _Objective()
    # Epoch 2 has the better accuracy, epoch 1 the better F1: the authors keep epoch 1.
    assert _improved(objective, "f1", {"accuracy": 0.70, "f1": 0.60}, best_epoch=1, best=0.65) is False
    assert _improved(objective, "f1", {"accuracy": 0.60, "f1": 0.66}, best_epoch=1, best=0.65) is True
    assert _improved(objective, "f1", {"accuracy": 0.60, "f1": None}, best_epoch=1, best=0.65) is False
    assert _improved(objective, "f1", {"f1": 0.1}, best_epoch=0, best=None) is True       # the first epoch


def test_p_ts_is_built_as_the_authors_build_it():
    # models.py 159: orthogonal(nn.Linear(1024, 1024, bias=False)) with torch's defaults, here at 64.
    torch.manual_seed(7)
    theirs = torch.nn.utils.parametrizations.orthogonal(nn.Linear(64, 64, bias=False))
    torch.manual_seed(7)
    ours = _projection(64, 64, True, "matrix_exp")
    assert torch.equal(ours.weight, theirs.weight)
    assert ours.parametrizations.weight[0].orthogonal_map.name == "matrix_exp"
    assert torch.allclose(ours.weight @ ours.weight.T, torch.eye(64), atol=1e-5)
    assert abs(ours.weight.diagonal().mean().item()) < 0.2              # a random rotation, not the identity
    cayley = TSAligner(64, 24, 2, 64, HeadShape("authors", orthogonal_map="cayley")).P_ts
    assert cayley.weight.diagonal().mean().item() > 0.5                 # Cayley without a base: near the identity
    authors = TSAligner(64, 24, 2, 64, HeadShape("authors", orthogonal_map="matrix_exp")).P_ts
    assert authors.parametrizations.weight[0].orthogonal_map.name == "matrix_exp"


@pytest.mark.parametrize("inputs, outputs", [(24, 24), (10, 24), (24, 10)])
def test_p_ts_by_matrix_exp_is_torchs_forward_bit_for_bit_and_its_exact_gradient(inputs, outputs):
    # Square, and embedded in a square matrix either way (piper-whisper's 384 → 1024 is the tall case).
    torch.manual_seed(3)
    theirs = orthogonal(nn.Linear(inputs, outputs, bias=False), orthogonal_map="matrix_exp")
    torch.manual_seed(3)
    ours = _projection(inputs, outputs, True, "matrix_exp")
    with torch.no_grad():                       # a point away from the base, where the gradient is not trivial
        ours.parametrizations.weight.original.normal_(0, 0.3)
        theirs.parametrizations.weight.original.copy_(ours.parametrizations.weight.original)
    x = torch.randn(5, inputs)
    assert torch.equal(ours(x), theirs(x))
    # The gradient against float64, where torch's block-matrix exponential is exact to rounding.
    exact = orthogonal(nn.Linear(inputs, outputs, bias=False), orthogonal_map="matrix_exp").double()
    with torch.no_grad():
        exact.parametrizations.weight.original.copy_(ours.parametrizations.weight.original)
        exact.parametrizations.weight[0].base.copy_(ours.parametrizations.weight[0].base)
    for layer, inputs_ in ((ours, x), (theirs, x), (exact, x.double())):
        layer(inputs_).sin().sum().backward()
    grad = lambda layer: layer.parametrizations.weight.original.grad.double()
    assert torch.allclose(grad(ours), grad(exact), rtol=0, atol=1e-5 * grad(exact).abs().max().item())
    assert torch.allclose(grad(ours), grad(theirs), rtol=0, atol=1e-4 * grad(exact).abs().max().item())


def test_the_matrix_exponentials_gradient_is_exact_where_eigenvalues_repeat():
    # exp of a skew-symmetric A with repeated eigenvalues (±i twice, and 0): Φ's equal-eigenvalue entries by sinc(0).
    from armada.distill.heads import _SkewExp
    block = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    A = torch.block_diag(block, block, torch.zeros(1, 1, dtype=torch.float64))
    G = torch.randn(5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ours, reference = A.clone().requires_grad_(), A.clone().requires_grad_()
    (_SkewExp.apply(ours) * G).sum().backward()
    (torch.matrix_exp(reference) * G).sum().backward()
    assert torch.allclose(ours.grad, reference.grad, atol=1e-12)


def test_each_phase_draws_its_own_order_and_the_same_one_again_on_resume():
    student, aligner = epoch_batches(40, 8, 3, 2), epoch_batches(40, 8, 3, 2, phase=1)
    assert sorted(np.concatenate(aligner)) == list(range(40))
    assert not all(np.array_equal(a, b) for a, b in zip(student, aligner))
    assert all(np.array_equal(a, b) for a, b in zip(aligner, epoch_batches(40, 8, 3, 2, phase=1)))


@pytest.fixture(scope="module")
def cased_tokenizer(tmp_path_factory):
    from transformers import BertTokenizer

    folder = tiny.make_encoder(tmp_path_factory.mktemp("encoder"))
    return BertTokenizer.from_pretrained(folder, do_lower_case=False)


def test_the_authors_lowercase_the_text_and_give_cls_the_second_segment(cased_tokenizer, tmp_path):
    rows = [{"id": "a", "text": "The Movie was GOOD", "other": "Not bad", "label": "pos"},
            {"id": "b", "text": "an Awful plot", "other": "The Cat sat", "label": "neg"}]
    tiny.write_rows(tmp_path / "rows.jsonl", rows)
    spec = FileTask(train=str(tmp_path / "rows.jsonl"), text_fields=("text", "other"), labels=("neg", "pos"), id_field="id")
    split = get_task("file:cased", {"cased": spec}).load("train")
    plain = encode(cased_tokenizer, split, 64)
    authors = encode(cased_tokenizer, split, 64, TextHandling(lowercase=True, cls_segment_id=1))
    lowered = cased_tokenizer([r["text"].lower() for r in rows], [r["other"].lower() for r in rows])
    for i, example in enumerate(authors.tokens):
        row, before = example[0], plain.tokens[i][0]
        assert row["input_ids"] == lowered["input_ids"][i] != before["input_ids"]    # a cased vocabulary sees it
        # [CLS] a [SEP] b [SEP]: segments 0 then 1, [CLS] now 1 (utils_superglue.py 553-564)
        assert row["token_type_ids"] == [1, *lowered["token_type_ids"][i][1:]]
        assert before["token_type_ids"][0] == 0 and 1 in before["token_type_ids"]


def test_copa_as_the_authors_build_it(task_files):
    split = get_task("super_glue/copa-authors").load("train", data_dir=str(task_files / "superglue"), limit=2)
    assert split.task.kind == "classification" and split.task.num_labels == 2
    for example in split.examples:
        f = example.fields
        assert example.inputs == ((f["premise"], f["choice1"]),)      # text_a and text_b: the second choice is unseen
        assert example.teacher_text == f"{f['premise']} {f['choice1']} {f['choice2']} {f['question']}".lower()
    multiple = get_task("super_glue/copa").load("train", data_dir=str(task_files / "superglue"), limit=2)
    assert [e.id for e in multiple.examples] == [e.id for e in split.examples]
    assert [e.label for e in multiple.examples] == [e.label for e in split.examples]


def _weak_vectors(split, dim: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    out = rng.normal(0, 1.0, size=(len(split), dim)).astype(np.float32)
    out[np.arange(len(split)), [int(e.label) for e in split.examples]] += 0.5
    return out


def test_an_authors_run_keeps_the_aligner_of_its_own_best_epoch(tmp_path, task_files, monkeypatch):
    from armada.distill import loop

    phases = []
    original = loop.TrainingLoop._phase

    def recorded(self, label, batches, phase):
        phases.append((label, phase, [b.tolist() for b in batches]))
        return original(self, label, batches, phase)

    monkeypatch.setattr(loop.TrainingLoop, "_phase", recorded)
    student = tiny.make_encoder(tmp_path / "encoder")
    task = get_task("glue/rte")
    data_dir = str(task_files / "glue")
    splits = {s: task.load(s, data_dir=data_dir, limit=16) for s in ("train", "validation")}
    cache = tiny.write_cache(tmp_path / "cache.zarr", task, splits, dim=8, vectors=_weak_vectors)
    # A weak signal and a large step: the aligner's dev score moves from epoch to epoch (its best epoch was 2, the
    # student's 1, when written), so which aligner is kept shows.
    config = tiny.tiny_config(student, epochs=3, aligner_lr=0.2)
    assert (config.recipe, config.aligner_kept, config.schedule) == ("authors", "own-best", "alternating")
    out = tmp_path / "run"
    train(config, task, str(cache), data_dir, out, train_limit=16, validation_limit=16)

    aligner_phases = [batches for label, phase, batches in phases if phase == "aligner"]
    student_phases = [batches for label, phase, batches in phases if phase == "student"]
    assert len(aligner_phases) == len(student_phases) == 3
    assert all(a != s for a, s in zip(aligner_phases, student_phases))     # each phase its own shuffle

    record = json.loads((out / "run.json").read_text())
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    scores = [e["aligner_dev"]["accuracy"] for e in epochs]
    assert record["aligner_best_epoch"] == 1 + int(np.argmax(scores))       # the first of the best, as their `>` keeps
    aligner = load_aligner(out)
    predictions, _ = predict_aligner(aligner, _weak_vectors(splits["validation"], 8))
    assert np.mean(predictions == np.asarray(splits["validation"].labels)) == pytest.approx(max(scores))
    assert heads_config(out).text_handling == {"lowercase": True, "cls_segment_id": 1}
