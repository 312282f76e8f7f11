"""Students: aliases, the offline models, loading through from_pretrained, pooling, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import distill_tiny as tiny
from armada.cli import app
from armada.distill.data import Collator, encode
from armada.distill.heads import StudentHeads
from armada.distill.model import ArmadaStudent, HeadsConfig
from armada.distill.students import ALIASES, load_backbone, locate
from armada.errors import ArmadaError
from armada.tasks import get_task


def _student(folder: Path, kind: str = "classification") -> tuple[ArmadaStudent, object]:
    backbone = load_backbone(str(folder))
    heads = StudentHeads(32, 2, 16)
    config = HeadsConfig("t", kind, ["a", "b"], 2, 32, 2, 16, backbone.pooling, backbone.kind, str(folder), backbone.source, 32)
    return ArmadaStudent(backbone.model, heads, config).eval(), backbone.tokenizer


@pytest.mark.parametrize("side", ["right", "left"])
def test_causal_pooling_reads_the_last_real_token_on_either_padding_side(tmp_path, side):
    student, tokenizer = _student(tiny.make_causal(tmp_path / "causal", padding_side=side))
    assert tokenizer.pad_token == "</s>" and tokenizer.padding_side == side     # it had none: set from eos
    assert student.config.pooling == "last-token"
    name, tables = tiny.file_task(tmp_path / "data")
    split = get_task(f"file:{name}", tables).load("train")
    collate = Collator(tokenizer, encode(tokenizer, split, 32), "classification")
    lengths = collate.encoded.lengths
    short, long = int(lengths.argmin()), int(lengths.argmax())
    assert lengths[short] < lengths[long]
    padded = collate([short, long]).inputs["attention_mask"][0]
    assert padded[0 if side == "left" else -1] == 0
    with torch.no_grad():
        together = student.pool(collate([short, long]).inputs)
        alone = torch.cat([student.pool(collate([short]).inputs), student.pool(collate([long]).inputs)])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


def test_an_encoder_uses_its_pooler_only_where_the_checkpoint_has_one(tmp_path):
    from transformers import BertConfig, BertModel

    assert load_backbone(str(tiny.make_encoder(tmp_path / "with"))).pooling == "pooler"
    folder = tiny.make_encoder(tmp_path / "without")
    config = BertConfig.from_pretrained(folder)
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    assert load_backbone(str(folder)).pooling == "cls"                 # its pooler would be random


def test_cutting_layers_keeps_the_first_ones(tmp_path):
    """bert-6l's mechanism: from_pretrained with num_hidden_layers keeps the checkpoint's first layers."""
    from transformers import AutoModel

    folder = tiny.make_encoder(tmp_path / "encoder")
    full = AutoModel.from_pretrained(folder)
    assert locate("bert-6l").kwargs() == {"num_hidden_layers": 6} and locate("bert-6l").path == "bert-base-uncased"
    cut = AutoModel.from_pretrained(folder, num_hidden_layers=1)
    assert len(cut.encoder.layer) == 1
    torch.testing.assert_close(cut.encoder.layer[0].state_dict(), full.encoder.layer[0].state_dict())


def test_aliases_name_the_papers_models():
    assert {a: ALIASES[a].source for a in ("bert-base", "deberta-v2-xxlarge", "opt-1.3b", "llama-7b", "llama-3.2-3b",
                                           "llama-3.1-8b")} == {
        "bert-base": "bert-base-uncased", "deberta-v2-xxlarge": "microsoft/deberta-v2-xxlarge",
        "opt-1.3b": "facebook/opt-1.3b", "llama-7b": "huggyllama/llama-7b",
        "llama-3.2-3b": "meta-llama/Llama-3.2-3B-Instruct", "llama-3.1-8b": "meta-llama/Llama-3.1-8B"}
    assert locate("facebook/opt-125m").path == "facebook/opt-125m"        # any hub id passes through


def test_minilm_loads_offline_from_its_package_with_the_pooling_its_makers_declared():
    backbone = load_backbone("minilm-l6")
    # all-MiniLM-L6-v2's 1_Pooling/config.json: pooling_mode_mean_tokens
    assert (backbone.kind, backbone.pooling, backbone.model.config.hidden_size) == ("encoder", "mean", 384)
    assert type(backbone.model).__name__ == "BertModel"
    assert load_backbone("minilm-l6", pooling="pooler").pooling == "pooler"


def _declare(folder: Path, settings: dict) -> None:
    import json

    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, **settings}))


@pytest.mark.parametrize("mode, pooling", [("pooling_mode_mean_tokens", "mean"), ("pooling_mode_cls_token", "cls"),
                                           ("pooling_mode_max_tokens", "max")])
def test_a_sentence_transformers_folder_gets_the_pooling_it_declares(tmp_path, mode, pooling):
    folder = tiny.make_encoder(tmp_path / "encoder")
    _declare(folder, {mode: True})
    assert load_backbone(str(folder)).pooling == pooling


def test_a_declared_pooling_armada_does_not_compute_is_a_clear_error(tmp_path):
    folder = tiny.make_encoder(tmp_path / "encoder")
    _declare(folder, {"pooling_mode_weightedmean_tokens": True})
    with pytest.raises(ArmadaError, match=r"pooling_mode_weightedmean_tokens.*set distill.pooling"):
        load_backbone(str(folder))


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_mean_and_max_pooling_read_the_real_tokens_alone(tmp_path, pooling):
    folder = tiny.make_encoder(tmp_path / "encoder")
    backbone = load_backbone(str(folder), pooling=pooling)
    config = HeadsConfig("t", "classification", ["a", "b"], 2, 32, 2, 16, backbone.pooling, backbone.kind, str(folder),
                         backbone.source, 32)
    student = ArmadaStudent(backbone.model, StudentHeads(32, 2, 16), config).eval()
    name, tables = tiny.file_task(tmp_path / "data")
    split = get_task(f"file:{name}", tables).load("train")
    collate = Collator(backbone.tokenizer, encode(backbone.tokenizer, split, 32), "classification")
    lengths = collate.encoded.lengths
    short, long = int(lengths.argmin()), int(lengths.argmax())
    with torch.no_grad():
        together = student.pool(collate([short, long]).inputs)
        alone = torch.cat([student.pool(collate([short]).inputs), student.pool(collate([long]).inputs)])
        states = backbone.model(**collate([short]).inputs).last_hidden_state[0]
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)      # padding changes nothing
    expected = states.mean(dim=0) if pooling == "mean" else states.max(dim=0).values
    torch.testing.assert_close(alone[0], expected, rtol=1e-4, atol=1e-5)


def test_pooling_a_causal_lm_any_other_way_is_refused(tmp_path):
    with pytest.raises(ArmadaError, match="causal LM: it pools its last real token"):
        load_backbone(str(tiny.make_causal(tmp_path / "causal")), pooling="mean")


def test_a_student_that_cannot_be_reached_offline_is_a_clear_error():
    with pytest.raises(ArmadaError, match=r"(?s)student 'armada-tests/no-such-model'.*cannot be loaded.*minilm-l6, smollm2-135m"):
        load_backbone("armada-tests/no-such-model")
    with pytest.raises(ArmadaError, match="no such folder"):
        load_backbone("./no/such/student")


def test_armada_students_lists_every_alias():
    result = CliRunner().invoke(app, ["students"])
    assert result.exit_code == 0
    for alias in ALIASES.values():
        assert alias.name in result.output and alias.kind in result.output
