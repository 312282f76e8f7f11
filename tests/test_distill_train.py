"""End-to-end distillation on tiny students: every task kind, both student kinds, the run directory
others rely on, the baseline and ablations, exact resume, and a real two-process run."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
import tomli_w
from safetensors.torch import load_file
from typer.testing import CliRunner

import distill_tiny as tiny
import launched
from armada import config as config_module
from armada.cli import app
from armada.distill import checkpoint
from armada.distill.model import load_aligner, load_student, predict, predict_aligner
from armada.distill.recipe import train
from armada.tasks.metrics import compute
from armada.tasks import get_task


@pytest.fixture(scope="module")
def students(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("students")
    return {"encoder": tiny.make_encoder(root / "encoder"), "causal": tiny.make_causal(root / "causal")}


def _task(root: Path, kind: str, task_files: Path):
    """(task, data_dir, limit) for a task kind: file tasks in tmp, COPA and RTE rows as published (the fixtures), with a limit."""
    if kind == "multiple_choice":
        return get_task("super_glue/copa"), str(task_files / "superglue"), 16
    if kind == "pairs":
        return get_task("glue/rte"), str(task_files / "glue"), 16
    name, tables = tiny.file_task(root / "data", kind=kind)
    return get_task(f"file:{name}", tables), "", 0


def _cached(root: Path, task, data_dir: str, limit: int, dim: int = 8) -> tuple[dict, Path]:
    splits = {s: task.load(s, data_dir=data_dir, limit=limit) for s in ("train", "validation")}
    return splits, tiny.write_cache(root / "cache.zarr", task, splits, dim=dim)


@pytest.mark.parametrize("kind", ["classification", "regression", "multiple_choice", "pairs"])
@pytest.mark.parametrize("student", ["encoder", "causal"])
def test_a_run_writes_what_eval_and_run_rely_on(tmp_path, students, task_files, kind, student):
    task, data_dir, limit = _task(tmp_path, kind, task_files)
    splits, cache = _cached(tmp_path, task, data_dir, limit)
    out = tmp_path / "run"
    # The authors' regression heads end in a ReLU: a tiny student two epochs in can sit below zero on every dev
    # example and score a constant (Pearson undefined), which is not what this test is about.
    heads = {"heads": "paper"} if kind == "regression" else {}
    result = train(tiny.tiny_config(students[student], **heads), task, str(cache), data_dir, out, variant="armada-euclid")

    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2]
    for line in lines:
        assert set(line["train"]) == {"loss_s", "task", "soft", "manifold", "aux", "loss_t", "aligner_task", "aligner_aux"}
        assert all(np.isfinite(v) for v in line["train"].values())
        assert set(line["dev"]) == set(compute(task.metric, [0, 1], [0, 1])) and line["aligner_dev"] is not None
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "finished" and record["processes"] == 1 and record["variant"] == "armada-euclid"
    assert record["task"] == task.name and record["undistilled"] is False and record["epochs"] == 2
    assert record["cache"]["fingerprints"] == {s: splits[s].fingerprint() for s in splits}
    assert set(record["versions"]) == {"torch", "transformers", "accelerate", "armada"}
    best = lines[record["best_epoch"] - 1]
    assert record["best_dev"] == best["dev"][record["metric"]] == result.best_dev
    assert config_module.load(out / "config.toml").distill.projection_dim == 16   # the resolved config reads back

    # The saved best epoch reproduces its own validation scores through the public API.
    model, tokenizer, heads = load_student(out)
    assert heads["kind"] == task.kind and heads["task"] == task.name
    assert heads["pooling"] == ("pooler" if student == "encoder" else "last-token")
    # The batches of training's own evaluation (eval_batch_size 8): padded to other widths, the sums change order, and
    # the near-tied choices of a barely trained tiny model can flip.
    predictions, logits, pooled = predict(model, tokenizer, splits["validation"], batch_size=8)
    assert logits.shape == (len(splits["validation"]), task.num_labels) and pooled.shape == (len(splits["validation"]), 32)
    assert compute(task.metric, predictions, splits["validation"].labels) == pytest.approx(best["dev"], abs=1e-3)
    aligner = load_aligner(out)
    from armada.cache_schema import CacheReader

    features = CacheReader(cache).load("validation", splits["validation"].ids, splits["validation"].teacher_hashes)
    aligner_predictions, _ = predict_aligner(aligner, features[np.arange(len(features))])
    kept = lines[record["aligner_best_epoch"] - 1]          # the authors' recipe keeps the aligner of its own best epoch
    assert compute(task.metric, aligner_predictions, splits["validation"].labels) == pytest.approx(kept["aligner_dev"], abs=1e-3)

    # The backbone needs nothing of ARMADA to load.
    from transformers import AutoModel

    assert type(AutoModel.from_pretrained(out / "student")).__name__ == ("BertModel" if student == "encoder" else "LlamaModel")


def test_undistilled_is_the_same_path_with_the_extra_losses_off(tmp_path, students):
    task, data_dir, _ = _task(tmp_path, "classification", Path())
    out = tmp_path / "run"
    train(tiny.tiny_config(students["encoder"], undistilled=True), task, None, data_dir, out)
    for line in (out / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        assert set(record["train"]) == {"loss_s", "task"}
        assert record["train"]["loss_s"] == record["train"]["task"]
        assert record["aligner_dev"] is None
    assert not (out / "aligner.safetensors").exists()
    record = json.loads((out / "run.json").read_text())
    assert record["cache"] is None and record["undistilled"] is True
    newest = checkpoint.newest(out / "checkpoints")
    assert not (newest / "aligner.safetensors").exists()
    trained = load_file(str(newest / "student.safetensors"))
    assert not any(k.startswith(("heads.P_s", "heads.O_aux_s")) for k in trained)   # untouched by the task loss


def test_the_aligner_learns_the_task_from_the_teacher_vectors_alone(tmp_path, students):
    task, data_dir, _ = _task(tmp_path, "classification", Path())
    splits, cache = _cached(tmp_path, task, data_dir, 0)
    out = tmp_path / "run"
    train(tiny.tiny_config(students["encoder"], epochs=4, aligner_lr=1e-2), task, str(cache), data_dir, out)
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["aligner_dev"]["accuracy"] == 1.0     # the vectors carry the label: only if rows match examples


def test_frozen_random_aligner_is_never_trained(tmp_path, students):
    task, data_dir, _ = _task(tmp_path, "classification", Path())
    _, cache = _cached(tmp_path, task, data_dir, 0)
    out = tmp_path / "run"
    train(tiny.tiny_config(students["encoder"], aligner="frozen-random", schedule="alternating"), task, str(cache), data_dir, out)
    newest = checkpoint.newest(out / "checkpoints")
    assert not (newest / "optimizer-aligner.safetensors").exists()
    final = load_file(str(newest / "aligner.safetensors"))
    best = load_file(str(out / "aligner.safetensors"))
    common = final.keys() & best.keys()     # the checkpoint keeps P_ts parametrised, the export materialised
    assert {"O_ts.weight", "O_aux_ts.weight"} <= common and any(k.startswith("Ftilde_ts.") for k in common)
    for key in common:
        assert torch.equal(final[key], best[key]), key
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert {"soft", "manifold", "aux"} <= set(record["train"])


def test_alternating_schedule_trains_the_aligner_then_the_student(tmp_path, students):
    task, data_dir, _ = _task(tmp_path, "classification", Path())
    _, cache = _cached(tmp_path, task, data_dir, 0)
    out = tmp_path / "run"
    train(tiny.tiny_config(students["causal"], schedule="alternating", epochs=1, teacher_noise=0.5), task, str(cache),
          data_dir, out)
    newest = checkpoint.newest(out / "checkpoints")
    state = json.loads((newest / "state.json").read_text())
    steps = len(task.load("train")) // 4
    assert state["schedulers"]["aligner"]["last_epoch"] == steps == state["schedulers"]["student"]["last_epoch"]


def _epoch_in_progress(output: str, epoch: int, epochs: int) -> bool:
    """Whether the progress bar shows a student step of `epoch` done (tqdm: "epoch 2/2:  15%|█▌   | 9/60 [...", or on
    the alternating schedule "epoch 2/2 student: ...", after that epoch's aligner phase)."""
    return re.search(rf"epoch {epoch}/{epochs}(?: student)?: +\d+%\|[^|]*\| *[1-9]\d*/\d+", output) is not None


@pytest.mark.slow
def test_a_run_killed_mid_epoch_then_resumed_equals_an_uninterrupted_one(tmp_path, students):
    """`armada distill` killed with SIGKILL during epoch 2, then --resume: the final weights, optimizer states and
    metrics.jsonl (less its wall-clock seconds) are those of a run never interrupted, bit for bit."""
    name, tables = tiny.file_task(tmp_path / "data", train=240)
    task = get_task(f"file:{name}", tables)
    _, cache = _cached(tmp_path, task, "", 0)
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(tomli_w.dumps({"tasks": {name: config_module.to_dict(tables[name])}}))
    # Dropout, teacher noise, warmup and decay, and accumulation windows all carry state across epochs.
    command = [Path(sys.executable).with_name("armada"), "distill", "--cache", cache, "--student", students["encoder"],
               "--config", pipeline, "--epochs", "2", "--batch-size", "4", "--projection-dim", "16", "--aligner-hidden",
               "24", "--max-length", "32", "--lr", "1e-3", "--teacher-noise", "0.2", "--lr-schedule", "linear",
               "--warmup-ratio", "0.2", "--gradient-accumulation-steps", "2", "--group-by-length"]
    env = {"OMP_NUM_THREADS": "1"}      # the same kernels in all three processes
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    with launched.started([*command, "--out", whole], tmp_path / "whole.log", env) as run:
        assert run.wait(timeout=600) == 0, run.output()[-3000:]

    with launched.started([*command, "--out", resumed], tmp_path / "killed.log", env) as run:
        deadline = time.time() + 600
        while not (checkpoint.newest(resumed / "checkpoints") is not None and _epoch_in_progress(run.output(), 2, 2)):
            assert run.process.poll() is None, run.output()[-3000:]
            assert time.time() < deadline, "epoch 2 did not start in time"
            time.sleep(0.02)
        os.killpg(run.process.pid, signal.SIGKILL)
        assert run.process.wait() == -signal.SIGKILL
    assert checkpoint.newest(resumed / "checkpoints").name == "epoch-0001", "killed too late: epoch 2 had finished"
    assert len((resumed / "metrics.jsonl").read_text().splitlines()) == 1
    (resumed / "checkpoints" / "epoch-0002").mkdir()        # an unfinished checkpoint (no marker) is ignored
    with launched.started([*command, "--out", resumed, "--resume"], tmp_path / "resumed.log", env) as run:
        assert run.wait(timeout=600) == 0, run.output()[-3000:]
    assert "resuming" in run.output() and "after epoch 1" in run.output()

    a, b = whole / "checkpoints" / "epoch-0002", resumed / "checkpoints" / "epoch-0002"
    names = sorted(p.name for p in a.glob("*.safetensors"))
    assert names == sorted(p.name for p in b.glob("*.safetensors")) and "optimizer-student.safetensors" in names
    for name in [*(f"checkpoints/epoch-0002/{n}" for n in names), "student/model.safetensors", "aligner.safetensors"]:
        left, right = load_file(str(whole / name)), load_file(str(resumed / name))
        assert left.keys() == right.keys()
        for key in left:
            assert torch.equal(left[key], right[key]), f"{name} {key}: {(left[key] - right[key]).abs().max()}"
    state_a, state_b = (json.loads((d / "state.json").read_text()) for d in (a, b))
    assert state_a["schedulers"] == state_b["schedulers"] and state_a["optimizers"] == state_b["optimizers"]
    drop_seconds = lambda text: [{**json.loads(x), "seconds": 0} for x in text.splitlines()]  # noqa: E731
    assert drop_seconds((whole / "metrics.jsonl").read_text()) == drop_seconds((resumed / "metrics.jsonl").read_text())
    assert json.loads((resumed / "run.json").read_text())["status"] == "finished"


@pytest.mark.slow
def test_two_processes_train_what_one_process_trains_on_their_joint_batches(tmp_path):
    """torchrun, 2 processes × batch 4 against 1 process × batch 8: at each step the one process sees the
    8 examples the two see together (epoch_batches, process_share), and DDP averages the two halves'
    gradients, so both train the same weights. Dropout is off (each process draws its own masks) and the
    manifold loss is the per-example one (a loss on batch means is not the mean of two half-batch losses)."""
    student = tiny.make_encoder(tmp_path / "student", dropout=0.0)
    name, tables = tiny.file_task(tmp_path / "data", train=32)
    task = get_task(f"file:{name}", tables)
    _, cache = _cached(tmp_path, task, "", 0)
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(tomli_w.dumps({"tasks": {name: config_module.to_dict(tables[name])}}))
    settings = ["distill", "--cache", cache, "--student", student, "--config", pipeline, "--epochs", "2",
                "--manifold", "elementwise", "--projection-dim", "16", "--aligner-hidden", "24", "--max-length", "32",
                "--lr", "1e-3", "--dropout", "0"]           # the heads' dropout too (the authors' recipe has 0.1)
    two, one = tmp_path / "two", tmp_path / "one"
    venv = Path(sys.executable).parent
    torchrun = [venv / "torchrun", "--standalone", "--nproc-per-node", "2", "--no-python", venv / "armada"]
    with launched.started([*torchrun, *settings, "--out", two, "--batch-size", "4"], tmp_path / "torchrun.log",
                          env={"OMP_NUM_THREADS": "1"}) as command:
        assert command.wait(timeout=300) == 0, command.output()[-3000:]
        assert not command.alive()                       # torchrun ended after both workers, leaving nothing behind
    record = json.loads((two / "run.json").read_text())
    assert record["processes"] == 2
    # 32 examples in batches of 4 = 8 batches an epoch, 4 for each process, for 2 epochs.
    assert record["steps_per_process"] == [8, 8]
    assert len((two / "metrics.jsonl").read_text().splitlines()) == 2
    assert command.output().count("epoch 2/2  loss_s") == 1        # only the main process reports (and draws bars)
    assert tomllib.loads((two / "config.toml").read_text())["distill"]["epochs"] == 2

    done = CliRunner().invoke(app, [str(part) for part in (*settings, "--out", one, "--batch-size", "8")])
    assert done.exit_code == 0, done.output
    assert json.loads((one / "run.json").read_text())["steps_per_process"] == [8]
    initial = load_file(str(student / "model.safetensors"))
    for name in ("student.safetensors", "aligner.safetensors"):
        a, b = (load_file(str(run / "checkpoints" / "epoch-0002" / name)) for run in (two, one))
        assert a.keys() == b.keys()
        for key in a:
            # Only rounding differs: batches of 4 padded to other widths than batches of 8, gradients summed in
            # another order (measured: at most 2e-7). 1e-5 is 1% of one step's Adam update (lr 1e-3), the size of
            # what a process stepping on its own half batch's gradient would change.
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-5, msg=f"{name} {key}")
    moved = load_file(str(two / "checkpoints" / "epoch-0002" / "student.safetensors"))
    key = "backbone.encoder.layer.0.attention.self.query.weight"
    assert (moved[key] - initial[key.removeprefix("backbone.")]).abs().max() > 1e-3   # the comparison is not vacuous


def test_lora_trains_adapters_and_heads_and_saves_the_merged_backbone(tmp_path, students):
    from transformers import AutoModel

    task, data_dir, _ = _task(tmp_path, "classification", Path())
    _, cache = _cached(tmp_path, task, data_dir, 0)
    out = tmp_path / "run"
    train(tiny.tiny_config(students["encoder"], lora_r=2, epochs=1), task, str(cache), data_dir, out)
    trained = load_file(str(checkpoint.newest(out / "checkpoints") / "student.safetensors"))
    assert any("lora_" in k for k in trained)
    assert all("lora_" in k or k.startswith("heads.") for k in trained)     # the backbone's own weights stay frozen
    saved = load_file(str(out / "student" / "model.safetensors"))
    original = load_file(str(students["encoder"] / "model.safetensors"))
    assert saved.keys() == original.keys()                                # merged: a plain BERT again
    key = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(saved[key], original[key])
    assert type(AutoModel.from_pretrained(out / "student")).__name__ == "BertModel"


def test_bf16_mixed_precision_trains(tmp_path, students):
    task, data_dir, _ = _task(tmp_path, "classification", Path())
    _, cache = _cached(tmp_path, task, data_dir, 0)
    out = tmp_path / "run"
    train(tiny.tiny_config(students["causal"], mixed_precision="bf16", epochs=1), task, str(cache), data_dir, out)
    line = json.loads((out / "metrics.jsonl").read_text())
    assert all(np.isfinite(v) for v in line["train"].values())


def _authors(student: Path, **changes):
    """tiny_config with the authors' recipe: its presets, then the tiny sizes."""
    recipe = {k: v for k, v in config_module.RECIPES["authors"].items() if k not in ("projection_dim", "aligner_hidden")}
    return tiny.tiny_config(student, recipe="authors", **{**recipe, **changes})


def test_the_authors_recipe_records_each_loss_term_and_its_gradient_share(tmp_path, students):
    name, tables = tiny.file_task(tmp_path / "data")
    task = get_task(f"file:{name}", tables)
    _, cache = _cached(tmp_path, task, "", 0)
    out = tmp_path / "run"
    train(_authors(students["encoder"]), task, str(cache), "", out)
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        assert set(line["train"]) >= {"task", "soft", "aux", "manifold"}
        assert set(line["balance"]) == {"task", "soft", "aux", "manifold"}
        assert sum(line["balance"].values()) == pytest.approx(1.0, abs=1e-4)
        assert line["dev_predicted_classes"] in (1, 2)
    _, _, heads = load_student(out)
    assert heads["shape"] == {"shape": "authors", "dropout": 0.1, "relu_outputs": False, "orthogonal_map": "matrix_exp"}
    assert isinstance(json.loads((out / "run.json").read_text())["warnings"], list)


def test_a_manifold_term_that_swamps_the_gradient_is_a_warning(tmp_path, students, capsys):
    name, tables = tiny.file_task(tmp_path / "data")
    task = get_task(f"file:{name}", tables)
    _, cache = _cached(tmp_path, task, "", 0)
    out = tmp_path / "run"
    train(tiny.tiny_config(students["encoder"], beta=1000.0), task, str(cache), "", out)
    balance = [json.loads(line)["balance"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(shares["manifold"] > 0.8 for shares in balance)
    warnings = json.loads((out / "run.json").read_text())["warnings"]
    assert any("manifold term took more than 80% of the gradient" in w for w in warnings)
    assert "warning: the manifold term took more than 80%" in capsys.readouterr().out


def test_gradients_are_clipped_to_max_grad_norm(tmp_path, students, monkeypatch):
    from accelerate import Accelerator

    norms = []
    original = Accelerator.clip_grad_norm_

    def recording(self, parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        total = original(self, parameters, max_norm, *args, **kwargs)
        norms.append((max_norm, float(total), float(torch.norm(torch.stack([p.grad.norm() for p in parameters if p.grad is not None])))))
        return total

    monkeypatch.setattr(Accelerator, "clip_grad_norm_", recording)
    name, tables = tiny.file_task(tmp_path / "data")
    task = get_task(f"file:{name}", tables)
    _, cache = _cached(tmp_path, task, "", 0)
    train(tiny.tiny_config(students["encoder"], max_grad_norm=0.01, epochs=1), task, str(cache), "", tmp_path / "run")
    assert norms and all(limit == 0.01 for limit, _, _ in norms)
    assert any(before > 0.01 for _, before, _ in norms)                  # there was something to clip ...
    assert all(after <= 0.01 * 1.001 for _, _, after in norms)           # ... and every step went out clipped


def test_regression_predictions_are_clipped_to_the_task_range_when_asked(tmp_path):
    from armada.distill.model import predictions_from

    logits = np.array([[-0.7], [2.5], [6.1]])
    assert predictions_from("regression", logits).tolist() == [-0.7, 2.5, 6.1]
    assert predictions_from("regression", logits, [0.0, 5.0]).tolist() == [0.0, 2.5, 5.0]
    assert get_task("glue/stsb").label_range == (0.0, 5.0)
