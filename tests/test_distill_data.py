"""Batches: epoch orders, process shares, per-batch padding, teacher vectors by position."""

from __future__ import annotations

import numpy as np
import pytest

import distill_tiny as tiny
from armada.distill.data import Collator, encode, epoch_batches, process_share
from armada.errors import ArmadaError
from armada.tasks import get_task


def test_an_epoch_visits_every_example_once_in_an_order_fixed_by_seed_and_epoch():
    batches = epoch_batches(23, 4, seed=1, epoch=2)
    assert sorted(np.concatenate(batches).tolist()) == list(range(23))
    assert [len(b) for b in batches] == [4] * 5 + [3]
    again = epoch_batches(23, 4, seed=1, epoch=2)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    assert not np.array_equal(np.concatenate(batches), np.concatenate(epoch_batches(23, 4, seed=1, epoch=3)))
    assert not np.array_equal(np.concatenate(batches), np.concatenate(epoch_batches(23, 4, seed=2, epoch=2)))


def test_length_grouping_keeps_the_examples_and_cuts_padding():
    lengths = np.random.default_rng(0).integers(5, 120, size=1000)
    grouped = epoch_batches(1000, 8, seed=0, epoch=1, lengths=lengths)
    plain = epoch_batches(1000, 8, seed=0, epoch=1)
    assert sorted(np.concatenate(grouped).tolist()) == list(range(1000))
    padded = lambda batches: sum(len(b) * lengths[b].max() for b in batches)  # noqa: E731
    assert padded(grouped) < 0.8 * padded(plain)


def test_processes_get_as_many_batches_and_together_all_of_them():
    batches = epoch_batches(22, 4, seed=0, epoch=1)         # 6 batches
    shares = [process_share(batches, p, 4) for p in range(4)]
    assert [len(s) for s in shares] == [2, 2, 2, 2]
    seen = np.concatenate([b for share in shares for b in share])
    assert set(seen.tolist()) == set(range(22))
    assert process_share(batches, 0, 1) == batches


@pytest.fixture()
def task(tmp_path):
    name, tables = tiny.file_task(tmp_path, pairs=True)
    return get_task(f"file:{name}", tables)


@pytest.mark.parametrize("side", ["right", "left"])
def test_a_batch_is_padded_to_its_longest_sequence_on_the_tokenizers_side(tmp_path, task, side):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny.make_encoder(tmp_path / "encoder"))
    tokenizer.padding_side = side
    split = task.load("train")
    encoded = encode(tokenizer, split, max_length=12)
    assert encoded.lengths.max() <= 12
    features = np.arange(len(split) * 3, dtype=np.float32).reshape(len(split), 3)
    collate = Collator(tokenizer, encoded, task.kind, features)
    positions = np.array([5, 0, 17])
    batch = collate(positions)
    width = int(encoded.lengths[positions].max())
    assert batch.inputs["input_ids"].shape == (3, width) and set(batch.inputs) == {"input_ids", "token_type_ids", "attention_mask"}
    for row, p in enumerate(positions):
        ids = encoded.tokens[p][0]["input_ids"]
        got = batch.inputs["input_ids"][row].tolist()
        assert (got[width - len(ids):] if side == "left" else got[:len(ids)]) == ids
        assert batch.inputs["attention_mask"][row].sum() == len(ids)
    np.testing.assert_array_equal(batch.features.numpy(), features[positions])
    assert batch.labels.tolist() == [split.examples[p].label for p in positions]


def test_multiple_choice_batches_hold_every_choice_example_by_example(tmp_path, task_files):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny.make_encoder(tmp_path / "encoder"))
    split = get_task("super_glue/copa").load("validation", data_dir=str(task_files / "superglue"), limit=6)
    encoded = encode(tokenizer, split, max_length=64)
    batch = Collator(tokenizer, encoded, "multiple_choice")(np.array([3, 1]))
    assert batch.choices == 2 and batch.inputs["input_ids"].shape[0] == 4
    for row, (p, c) in enumerate([(3, 0), (3, 1), (1, 0), (1, 1)]):
        ids = encoded.tokens[p][c]["input_ids"]
        assert batch.inputs["input_ids"][row, :len(ids)].tolist() == ids
    assert batch.labels.tolist() == [split.examples[3].label, split.examples[1].label]


def test_non_finite_teacher_vectors_are_refused_with_their_ids(tmp_path, task):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny.make_encoder(tmp_path / "encoder"))
    split = task.load("train")
    features = np.zeros((len(split), 3), dtype=np.float32)
    features[4, 1] = np.nan
    collate = Collator(tokenizer, encode(tokenizer, split, 16), task.kind, features)
    with pytest.raises(ArmadaError, match=split.examples[4].id):
        collate(np.array([2, 4]))
