"""Generative students (`objective = "lm"`) on tiny LLaMA and OPT models: they learn with and without the
aligner, the prompt carries no loss, the aligner learns by reconstruction (first or jointly), the saved
model (merged or adapter) loads with transformers alone and generates, a run resumes exactly, and bad
settings are refused before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import distill_tiny
import lm_tiny
from armada import config as config_module
from armada.config import DistillConfig
from armada.distill import checkpoint
from armada.distill.build import build_lm_student
from armada.distill.heads import ReconstructionAligner
from armada.distill.lm_data import IGNORE, LMCollator, encode_lm
from armada.distill.model import load_aligner, load_causal_student
from armada.distill.recipe import train
from armada.errors import ArmadaError, ConfigError
from armada.eval.generation import Decoding, generate
from armada.tasks import get_task
from armada.tasks.generative import build_prompt


@pytest.fixture(scope="module")
def lms(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lms")
    return {family: lm_tiny.make_lm(root / family, family) for family in ("llama", "opt")}


@pytest.fixture(scope="module")
def instruct(tmp_path_factory):
    """(task, cache path): the tiny instruction task and a cache of random teacher vectors for it."""
    root = tmp_path_factory.mktemp("instruct")
    name, tables = lm_tiny.instruction_task(root / "data")
    task = get_task(f"file:{name}", tables)
    splits = {s: task.load(s) for s in ("train", "validation")}

    def vectors(split, dim):
        return np.random.default_rng(len(split)).normal(size=(len(split), dim)).astype(np.float32)

    return task, distill_tiny.write_cache(root / "cache.zarr", task, splits, dim=8, vectors=vectors)


def _lines(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("distilled", [True, False], ids=["armada", "undistilled"])
@pytest.mark.parametrize("family", ["llama", "opt"])
def test_a_causal_student_learns_the_responses_with_and_without_the_aligner(tmp_path, lms, instruct, family, distilled):
    task, cache = instruct
    out = tmp_path / "run"
    result = train(lm_tiny.lm_config(lms[family], epochs=4, undistilled=not distilled), task,
                   str(cache) if distilled else None, "", out, variant="armada-euclid" if distilled else "undistilled")

    lines = _lines(out)
    assert [line["epoch"] for line in lines] == [1, 2, 3, 4]
    first, last = lines[0], lines[-1]
    assert last["train"]["lm"] < 0.8 * first["train"]["lm"]             # LoRA learns the repeated answers
    assert last["dev"]["lm_loss"] < first["dev"]["lm_loss"]
    expected = {"loss_s", "lm", "manifold", "loss_t", "reconstruction"} if distilled else {"loss_s", "lm"}
    assert all(set(line["train"]) == expected for line in lines)
    if distilled:
        assert last["train"]["manifold"] < first["train"]["manifold"]   # the student moves onto the aligner's manifold
        assert all(line["aligner_dev"]["reconstruction_mse"] > 0 for line in lines)
        assert isinstance(load_aligner(out), ReconstructionAligner)
    else:
        assert not (out / "aligner.safetensors").exists()
    record = json.loads((out / "run.json").read_text())
    assert record["objective"] == "lm" and record["status"] == "finished" and record["metric"] == "lm_loss"
    assert record["prompt_style"] == ("chat" if family == "llama" else "alpaca")
    assert record["unused_settings"] == {"alpha": 0.5, "gamma": 1.0, "tau": 5.0, "soft_loss": "mse"}
    assert record["examples"]["train"] == {"kept": 16, "left_out": 0, "responses_cut": 0}
    best = min(lines, key=lambda line: line["dev"]["lm_loss"])
    assert record["best_epoch"] == best["epoch"] == result.best_epoch and record["best_dev"] == best["dev"]["lm_loss"]


@pytest.mark.parametrize("family", ["llama", "opt"])
def test_prompt_and_padding_tokens_carry_no_loss(lms, instruct, family):
    task, _ = instruct
    config = lm_tiny.lm_config(lms[family])
    student, tokenizer = build_lm_student(config, task)
    split = task.load("validation")
    encoded = encode_lm(tokenizer, split, config.max_length, student.info.prompt_style)
    positions = np.array([0, 4, 6])                                     # prompts and responses of different lengths
    batch = LMCollator(tokenizer, encoded)(positions)

    eos = "</s>"
    for row, position in enumerate(positions):
        example = split.examples[position]
        prompt, length = encoded.prompt_lengths[position], len(encoded.tokens[position])
        ids, labels = batch.input_ids[row], batch.labels[row]
        assert (labels[:prompt] == IGNORE).all() and (labels[length:] == IGNORE).all()
        assert torch.equal(labels[prompt:length], ids[prompt:length])
        assert batch.attention_mask[row].sum() == length and batch.pool_index[row] == prompt - 1
        text = build_prompt(*example.inputs[0], tokenizer=tokenizer)
        assert tokenizer.decode(ids[:prompt]) == (text if text.startswith("<s>") else "<s>" + text)   # BOS once
        response = tokenizer.decode(ids[prompt:length])
        # The chat template's assistant turn (and its end mark), or the reference and EOS.
        assert response == (f"{example.references[0]}{eos}\n" if family == "llama" else f"{example.references[0]}{eos}")

    with torch.no_grad():
        nll, count, _ = student(batch)
        logits = student.backbone(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits.float()
    by_hand, tokens = 0.0, 0
    for row, position in enumerate(positions):
        prompt, length = encoded.prompt_lengths[position], len(encoded.tokens[position])
        for t in range(prompt, length):                                  # token t is predicted at t - 1
            by_hand -= torch.log_softmax(logits[row, t - 1], dim=-1)[batch.input_ids[row, t]].item()
            tokens += 1
    assert int(count) == tokens
    assert float(nll) / int(count) == pytest.approx(by_hand / tokens, rel=1e-5)


def test_prompts_too_long_are_left_out_and_long_responses_cut(lms, instruct):
    task, _ = instruct
    config = lm_tiny.lm_config(lms["opt"])
    student, tokenizer = build_lm_student(config, task)
    split = task.load("validation")
    prompts = [len(tokenizer(build_prompt(*e.inputs[0], tokenizer=tokenizer))["input_ids"]) for e in split.examples]
    limit = sorted(prompts)[len(prompts) // 2] + 1                       # room for one response token in about half
    encoded = encode_lm(tokenizer, split, limit, "alpaca")
    assert len(encoded) + len(encoded.left_out) == len(split)
    assert set(encoded.left_out) == {e.id for e, n in zip(split.examples, prompts) if n >= limit}
    whole = encode_lm(tokenizer, split, 1000, "alpaca")
    cut = [len(whole.tokens[row]) > limit for row in encoded.rows]
    assert encoded.truncated == sum(cut) > 0
    for tokens, row, was_cut in zip(encoded.tokens, encoded.rows, cut):
        assert tokens == whole.tokens[row][:limit] and len(tokens) == (limit if was_cut else len(whole.tokens[row]))
    with pytest.raises(ArmadaError, match="every prompt is 8 tokens or longer; raise --max-length"):
        encode_lm(tokenizer, split, 8, "alpaca")


def test_the_aligner_is_pretrained_by_reconstruction_then_kept_fixed(tmp_path, lms, instruct):
    task, cache = instruct
    out = tmp_path / "run"
    train(lm_tiny.lm_config(lms["llama"], epochs=2, aligner_pretrain_epochs=3, aligner_lr=1e-2), task, str(cache), "", out)
    pretraining = json.loads((out / "run.json").read_text())["aligner_pretraining"]
    assert [p["epoch"] for p in pretraining] == [1, 2, 3]
    assert pretraining[-1]["train"]["loss_t"] < pretraining[0]["train"]["loss_t"]
    lines = _lines(out)
    # A fixed aligner reconstructs the same rows equally well in every student epoch.
    assert lines[0]["train"]["loss_t"] == lines[1]["train"]["loss_t"]
    assert lines[0]["aligner_dev"] == lines[1]["aligner_dev"]
    newest = checkpoint.newest(out / "checkpoints")
    assert not (newest / "optimizer-aligner.safetensors").exists() and (newest / "optimizer-student.safetensors").exists()


def test_the_student_saves_merged_or_as_an_adapter_and_both_generate_with_transformers_alone(tmp_path, lms, instruct):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    task, cache = instruct
    runs = {}
    for saved in ("merged", "adapter"):
        runs[saved] = tmp_path / saved
        train(lm_tiny.lm_config(lms["llama"], epochs=2, save_adapter=saved == "adapter"), task, str(cache), "", runs[saved])
    merged_dir, adapter_dir = runs["merged"] / "student", runs["adapter"] / "student"
    assert (merged_dir / "model.safetensors").is_file() and not (merged_dir / "adapter_config.json").exists()
    assert (adapter_dir / "adapter_config.json").is_file() and not (adapter_dir / "model.safetensors").exists()

    prompts = [build_prompt(q, x, tokenizer=AutoTokenizer.from_pretrained(merged_dir)) for q, x, _ in lm_tiny.PAIRS[:3]]
    texts, logits = {}, {}
    for saved, folder in (("merged", merged_dir), ("adapter", adapter_dir)):
        model = AutoModelForCausalLM.from_pretrained(folder).eval()     # the adapter's base comes from its config
        tokenizer = AutoTokenizer.from_pretrained(folder)
        ids = tokenizer(prompts[0], add_special_tokens=False, return_tensors="pt")
        with torch.no_grad():
            logits[saved] = model(**ids).logits
            generated = model.generate(**ids, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.eos_token_id)
        assert generated.shape[1] > ids["input_ids"].shape[1]
        texts[saved] = generate(model, tokenizer, prompts, Decoding(max_new_tokens=6, batch_size=2))
    # The same training, saved two ways: the same model.
    torch.testing.assert_close(logits["merged"], logits["adapter"], rtol=1e-4, atol=1e-4)
    assert texts["merged"] == texts["adapter"]
    base = AutoModelForCausalLM.from_pretrained(lms["llama"]).eval()
    with torch.no_grad():
        assert not torch.allclose(base(**ids).logits, logits["merged"], atol=1e-3)     # LoRA was trained and merged

    for run in runs.values():
        model, tokenizer, info = load_causal_student(run)
        assert info.prompt_style == "chat" and info.saved == run.name
        assert generate(model, tokenizer, prompts, Decoding(max_new_tokens=6, batch_size=2)) == texts["merged"]


def test_a_resumed_lm_run_equals_an_uninterrupted_one(tmp_path, lms, instruct, monkeypatch):
    task, cache = instruct
    # LoRA dropout, teacher noise, a pretrained aligner and the linear schedule all carry state across epochs.
    config = lm_tiny.lm_config(lms["opt"], epochs=3, aligner_pretrain_epochs=1, teacher_noise=0.1, lr_schedule="linear",
                               warmup_ratio=0.2)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    train(config, task, str(cache), "", whole)
    original = checkpoint.prune

    def prune(root, keep):
        original(root, keep)
        if keep.name == "epoch-0001":
            raise KeyboardInterrupt("stopped after a checkpoint, as a kill would")

    with monkeypatch.context() as patch:
        patch.setattr(checkpoint, "prune", prune)
        with pytest.raises(KeyboardInterrupt):
            train(config, task, str(cache), "", resumed)
    train(config, task, str(cache), "", resumed, resume=True)

    a, b = whole / "checkpoints" / "epoch-0003", resumed / "checkpoints" / "epoch-0003"
    names = sorted(p.name for p in a.glob("*.safetensors"))
    assert names == sorted(p.name for p in b.glob("*.safetensors")) and "aligner.safetensors" in names
    for name in names:
        left, right = load_file(str(a / name)), load_file(str(b / name))
        assert left.keys() == right.keys()
        for key in left:
            torch.testing.assert_close(left[key], right[key], rtol=1e-6, atol=1e-7)
    drop_seconds = lambda text: [{**json.loads(x), "seconds": 0} for x in text.splitlines()]  # noqa: E731
    assert drop_seconds((whole / "metrics.jsonl").read_text()) == drop_seconds((resumed / "metrics.jsonl").read_text())


def test_objective_lm_brings_the_generative_defaults(tmp_path):
    path = tmp_path / "pipeline.toml"
    path.write_text('[distill]\nobjective = "lm"\nlora_r = 4\n')
    settings = config_module.load(path).distill
    assert (settings.lora_r, settings.epochs, settings.lr, settings.batch_size) == (4, 3, 3e-4, 4)   # given beats default
    nlu = config_module.load(None, flags={"distill.lr": 5e-5})
    variant = config_module.Variant("lm", {"objective": "lm"})
    switched = nlu.distill_for("instruct/dolly", variant)
    assert (switched.objective, switched.lora_r, switched.lr) == ("lm", 8, 3e-4)
    assert nlu.distill.lora_r == 0


def test_the_retired_aligner_objective_loads_where_it_says_what_the_objective_implies(tmp_path):
    """Run folders and pipeline files written before the key's removal name it; they still load where it
    held the objective's own value, and a contradicting value is refused, not dropped."""
    for objective, held in (("lm", "reconstruction"), ("task", "task")):
        path = tmp_path / f"{objective}.toml"
        path.write_text(f'[distill]\nobjective = "{objective}"\naligner_objective = "{held}"\n')
        assert config_module.load(path).distill.objective == objective
    path = tmp_path / "contradicts.toml"
    path.write_text('[distill]\naligner_objective = "reconstruction"\n')
    with pytest.raises(ConfigError, match=r"distill.aligner_objective = 'reconstruction' was removed.*objective = 'task' "
                                          r"means 'task'"):
        config_module.load(path)


@pytest.mark.parametrize("settings, message", [
    ({"objective": "lm", "alpha": 0.3, "gamma": 0.0}, "alpha, gamma have no role"),
    ({"objective": "lm", "schedule": "alternating"}, "aligner_pretrain_epochs"),
    ({"prompt_style": "chat"}, 'prompt_style applies to distill.objective = "lm" only'),
])
def test_settings_without_a_meaning_for_the_objective_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message):
        DistillConfig(**settings)


def test_bad_inputs_are_refused_before_anything_is_written(tmp_path, lms, instruct):
    task, cache = instruct
    out = tmp_path / "run"
    classification = get_task(*(lambda n, t: (f"file:{n}", t))(*distill_tiny.file_task(tmp_path / "cls")))
    encoder = distill_tiny.make_encoder(tmp_path / "encoder")
    cases = [
        (DistillConfig(student=str(lms["llama"]), undistilled=True), task, None, "generation task: train a causal LM on it with --objective lm"),
        (lm_tiny.lm_config(lms["llama"], undistilled=True), classification, None, 'objective "lm" trains generation tasks'),
        (lm_tiny.lm_config(encoder, undistilled=True), task, None, "is an encoder"),
        (lm_tiny.lm_config(lms["llama"], undistilled=True, lora_r=0, save_adapter=True), task, None, "save_adapter needs a LoRA adapter"),
        (lm_tiny.lm_config(lms["llama"]), task, None, "ARMADA needs the teacher's features"),
        (lm_tiny.lm_config(lms["llama"], batch_size=32), task, str(cache), "--batch-size 32 is larger than the 16"),
    ]
    for config, which, cache_path, message in cases:
        with pytest.raises(ArmadaError, match=message):
            train(config, which, cache_path, "", out)
        assert not out.exists()


@pytest.mark.slow
def test_the_offline_gguf_student_is_dequantised_once_and_saves_merged_and_as_an_adapter(tmp_path):
    """smollm2-135m is read offline from the GGUF file its package ships, dequantised once into a plain folder under
    ARMADA_CACHE (the folder holds the file's values and vocabulary), with a pad token set: both saves must load
    back as the same model, the adapter's base through the same dequantised folder."""
    import dataclasses

    from gguf import GGUFReader
    from gguf.quants import dequantize
    from transformers import AutoModelForCausalLM

    from armada.distill.model import save_causal_student
    from armada.distill.students import cache_home, locate, student_kind

    location = locate("smollm2-135m")
    gguf_path = Path(location.path) / location.gguf_file
    assert gguf_path.suffix == ".gguf" and gguf_path.is_file()
    task = get_task("instruct/dolly-test")
    student, tokenizer = build_lm_student(DistillConfig(student="smollm2-135m", objective="lm", lora_r=8, schedule="joint",
                                                        undistilled=True), task)
    config = student.backbone.config
    assert (student_kind(config), config.hidden_size, student.info.base_gguf_file) == ("causal", 576, location.gguf_file)
    assert tokenizer.pad_token is not None and config.pad_token_id == tokenizer.pad_token_id
    assert "quantization_config" not in config.to_dict()

    # The dequantised folder holds what the GGUF file holds: its vocabulary and its values, dequantised by gguf itself.
    [folder] = (cache_home() / "gguf").iterdir()
    assert json.loads((folder / "gguf-source.json").read_text())["file"] == str(gguf_path)
    reader = GGUFReader(gguf_path)
    vocabulary = reader.fields["tokenizer.ggml.tokens"]
    assert tokenizer.convert_ids_to_tokens(list(range(len(vocabulary.data)))) == [
        bytes(vocabulary.parts[i]).decode() for i in vocabulary.data]
    weights = {name: p for name, p in student.backbone.named_parameters()}
    for gguf_name, suffix in (("token_embd.weight", "embed_tokens.weight"), ("blk.0.ffn_down.weight", "layers.0.mlp.down_proj.base_layer.weight")):
        tensor = next(t for t in reader.tensors if t.name == gguf_name)
        [ours] = [p for name, p in weights.items() if name.endswith(suffix)]
        assert torch.equal(ours.detach(), torch.from_numpy(dequantize(tensor.data, tensor.tensor_type)))

    torch.manual_seed(0)
    with torch.no_grad():       # a trained adapter: LoRA's B starts at zero, which would make any merge a no-op
        for name, parameter in student.backbone.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.01)
    student.eval()
    ids = tokenizer("Name three primary colours.", return_tensors="pt")
    with torch.no_grad():
        expected = student.backbone(**ids).logits
    save_causal_student(tmp_path / "merged", student, tokenizer)
    student.info = dataclasses.replace(student.info, saved="adapter")
    save_causal_student(tmp_path / "adapter", student, tokenizer)

    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()     # transformers alone, no GGUF file
    adapter, _, info = load_causal_student(tmp_path / "adapter")                  # its base found through the GGUF file
    assert info.base_gguf_file == location.gguf_file and "quantization_config" not in merged.config.to_dict()
    assert [p.name for p in (cache_home() / "gguf").iterdir()] == [folder.name]     # dequantised once, nothing half-written
    # Merging rounds W + BA once where the adapter rounds Wx + B(Ax) at every call: on these logits (up to 25) the two
    # differed by 3.5e-5 alone and by 1.45e-4 in a clean clone's whole suite (another draw of B), against 0.75 for
    # the adapter's own effect on them (B drawn as above against B = 0). 1e-3 tells a lost or mis-scaled adapter
    # from rounding. The adapter reloaded computes as the one saved did, so it keeps the tighter bound.
    with torch.no_grad():
        torch.testing.assert_close(merged(**ids).logits, expected, rtol=0, atol=1e-3)
        torch.testing.assert_close(adapter(**ids).logits, expected, rtol=1e-4, atol=1e-4)


def test_a_dequantised_copy_already_in_place_wins_and_the_late_copy_is_removed(tmp_path):
    """Two processes dequantising the same GGUF file at once: the first rename puts its folder in place, the second
    finds it there and removes its own (the same bytes), so neither ever reads half a folder."""
    from armada.distill.students import move_into_place

    folder = tmp_path / "model-abc"
    for writer in ("first", "second"):
        partial = tmp_path / f"model-abc.partial-{writer}"
        partial.mkdir()
        (partial / "config.json").write_text(writer)
        move_into_place(partial, folder)
        assert not partial.exists()
    assert (folder / "config.json").read_text() == "first"


# --- SeqKD: a generative run's greedy responses as the training targets (armada.extract.sequences) ------------

@pytest.fixture(scope="module")
def seqkd(tmp_path_factory, lms, instruct):
    """(teacher run, its sequence cache, the cache's lines): a tiny LLaMA run answering the training prompts."""
    from armada.extract.sequences import write_sequences

    task, _ = instruct
    root = tmp_path_factory.mktemp("seqkd")
    teacher = root / "teacher"
    train(lm_tiny.lm_config(lms["llama"], undistilled=True, epochs=1), task, None, "", teacher)
    summary = write_sequences(teacher, task, task.load("train"), root / "responses.seqkd", max_new_tokens=12,
                              batch_size=5, say=lambda _: None)
    assert (summary.written, summary.already_done) == (16, 0)
    return teacher, Path(summary.path), (Path(summary.path) / "responses.jsonl").read_text()


def test_a_generative_run_writes_its_greedy_responses_to_the_training_prompts(tmp_path, instruct, seqkd):
    from armada.extract.runner import writing_alone
    from armada.extract.sequences import write_sequences

    task, _ = instruct
    teacher, cache, text = seqkd
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["complete"] and manifest["task"] == task.name and manifest["rows"] == 16
    assert manifest["teacher"]["run"] == str(teacher) and manifest["prompt_style"] == "chat"
    assert manifest["decoding"] == {"max_new_tokens": 12, "num_beams": 1, "batch_size": 5, "do_sample": False}
    model, tokenizer, info = load_causal_student(teacher)
    split = task.load("train")
    rows = [json.loads(line) for line in text.splitlines()]
    assert [row["id"] for row in rows] == split.ids
    for example, row in zip(split.examples, rows):          # one prompt at a time, greedy: what the teacher writes
        prompt = build_prompt(*example.inputs[0], tokenizer=tokenizer, style=info.prompt_style)
        assert row["response"] == generate(model, tokenizer, [prompt], Decoding(max_new_tokens=12, batch_size=1))[0]

    copy = tmp_path / "cut.seqkd"                           # killed while writing: three whole lines and a torn one lost
    copy.mkdir()
    (copy / "manifest.json").write_text(json.dumps({k: v for k, v in manifest.items() if k != "complete"}))
    lines = text.splitlines(keepends=True)
    (copy / "responses.jsonl").write_text("".join(lines[:12]) + lines[12][:20])
    resumed = write_sequences(teacher, task, split, copy, max_new_tokens=12, batch_size=5, say=lambda _: None)
    assert (resumed.written, resumed.already_done) == (4, 12)
    assert (copy / "responses.jsonl").read_text() == text
    with pytest.raises(ArmadaError, match=r"written with other settings .*\n  decoding: .*'max_new_tokens': 12.*→.*'max_new_tokens': 8"):
        write_sequences(teacher, task, split, copy, max_new_tokens=8, batch_size=5, say=lambda _: None)
    with writing_alone(str(copy)):                          # another extraction is writing it: refused, nothing written
        with pytest.raises(ArmadaError, match=r"cut\.seqkd is being written by another extraction right now"):
            write_sequences(teacher, task, split, copy, max_new_tokens=12, batch_size=5, say=lambda _: None)
    assert (copy / "responses.jsonl").read_text() == text


def test_a_seqkd_student_learns_the_teachers_responses_not_the_references(tmp_path, lms, instruct, seqkd):
    from armada.distill.lm import LMObjective

    task, cache = instruct
    teacher, responses, text = seqkd
    config = lm_tiny.lm_config(lms["opt"], undistilled=True, epochs=1, seqkd_cache=str(responses))
    objective = LMObjective(config, task)
    splits = {s: task.load(s) for s in ("train", "validation")}
    objective.check(splits)
    student, tokenizer = build_lm_student(config, task)
    objective.data(tokenizer, student, splits, None)
    wanted = [json.loads(line)["response"] for line in text.splitlines()]
    encoded = objective.encoded["train"]
    for tokens, start, response in zip(encoded.tokens, encoded.prompt_lengths, wanted):   # OPT: alpaca, response + EOS
        assert tokenizer.decode(tokens[start:], skip_special_tokens=True) == tokenizer.decode(
            tokenizer(response, add_special_tokens=False)["input_ids"], skip_special_tokens=True)
    assert [e.references for e in objective.encoded["validation"].split.examples] == [
        e.references for e in splits["validation"].examples]                            # dev keeps the references

    result = train(config, task, str(cache), "", tmp_path / "both", variant="armada-seqkd")   # ARMADA and SeqKD together
    assert result.status == "finished" and result.best_epoch == 1
    record = json.loads((tmp_path / "both/run.json").read_text())
    assert record["seqkd_teacher"] == {"path": str(responses), "teacher": str(teacher),
                                       "decoding": {"max_new_tokens": 12, "num_beams": 1, "batch_size": 5, "do_sample": False}}


def test_a_seqkd_cache_that_does_not_answer_these_prompts_is_refused_before_anything_is_written(tmp_path, lms, instruct, seqkd):
    import dataclasses

    task, _ = instruct
    _, responses, text = seqkd
    other = dataclasses.replace(task, name="file:other")
    unfinished = tmp_path / "unfinished.seqkd"
    unfinished.mkdir()
    manifest = json.loads((responses / "manifest.json").read_text())
    (unfinished / "manifest.json").write_text(json.dumps({k: v for k, v in manifest.items() if k != "complete"}))
    (unfinished / "responses.jsonl").write_text(text)
    short = tmp_path / "short.seqkd"
    short.mkdir()
    (short / "manifest.json").write_text(json.dumps(manifest))
    (short / "responses.jsonl").write_text("".join(text.splitlines(keepends=True)[:10]))
    edited = tmp_path / "edited.seqkd"
    edited.mkdir()
    (edited / "manifest.json").write_text(json.dumps(manifest))
    first = json.loads(text.splitlines()[0])
    (edited / "responses.jsonl").write_text(json.dumps({**first, "input_sha256": "0" * 64}) + "\n"
                                            + "".join(text.splitlines(keepends=True)[1:]))
    cases = [(responses, other, r"holds responses to file:tiny-instruct's prompts, not file:other's"),
             (unfinished, task, r"is unfinished: run the same armada extract again"),
             (short, task, r"has no response for 6 of the 16 train examples"),
             (edited, task, r"answered other prompts for 1 examples \(e.g. \['train-0'\]\)")]
    out = tmp_path / "run"
    for cache, which, message in cases:
        with pytest.raises(ArmadaError, match=message):
            train(lm_tiny.lm_config(lms["opt"], undistilled=True, seqkd_cache=str(cache)), which, None, "", out)
        assert not out.exists()
    with pytest.raises(ConfigError, match='distill.seqkd_cache applies to distill.objective = "lm" only'):
        DistillConfig(seqkd_cache=str(responses))
