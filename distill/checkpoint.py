"""Epoch checkpoints: safetensors and JSON only, published whole or not at all.

checkpoints/epoch-0003/
  student.safetensors           the student's trainable tensors (frozen ones are rebuilt from the
                                pretrained weights and the seed, identically)
  aligner.safetensors           the whole TS Aligner (absent for an undistilled run)
  optimizer-<name>.safetensors  each optimizer's per-parameter state tensors ...
  state.json                    ... its param_groups and scalar state, the schedulers' state, the
                                epoch, the best epoch so far and its dev score
  COMPLETE                      written last: each file's size and SHA-256 (armada.checksums)

A checkpoint is written in a temporary folder and renamed into place after its marker, so one whose files
no longer match its marker is damaged: a resume refuses it, naming the file, rather than training on it
or silently starting again. No random
generator state is stored: every epoch reseeds all generators from (seed, epoch, process), so a
resumed run draws exactly what an uninterrupted one draws.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from armada.checksums import folder_checksums, folder_fault, refuse_damaged
from armada.errors import ArmadaError

MARKER = "COMPLETE"
_NAME = re.compile(r"epoch-(\d{4,})")


def _trainable(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().contiguous() for name, p in module.named_parameters() if p.requires_grad}


def _optimizer_tensors(optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer's state_dict into tensors (for safetensors) and the rest (for JSON)."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.detach().contiguous()
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_state(tensors: dict[str, torch.Tensor], rest: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in list(tensors.items()) + list(rest["scalars"].items()):
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": rest["param_groups"]}


def save(root: Path, epoch: int, student, aligner, optimizers: dict, schedulers: dict, progress: dict) -> Path:
    """Write checkpoints/epoch-NNNN under `root` (call from the main process only)."""
    final = root / f"epoch-{epoch:04d}"
    building = root / f".epoch-{epoch:04d}.partial"
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    save_file(_trainable(student), str(building / "student.safetensors"))
    if aligner is not None:
        save_file({k: v.detach().contiguous() for k, v in aligner.state_dict().items()}, str(building / "aligner.safetensors"))
    optimizer_json = {}
    for name, optimizer in optimizers.items():
        tensors, rest = _optimizer_tensors(optimizer)
        save_file(tensors, str(building / f"optimizer-{name}.safetensors"))
        optimizer_json[name] = rest
    state = {"epoch": epoch, "progress": progress, "optimizers": optimizer_json,
             "schedulers": {name: _scheduler_state(s) for name, s in schedulers.items()}}
    (building / "state.json").write_text(json.dumps(state, indent=1))
    _write_synced(building / MARKER, json.dumps({"epoch": epoch, "files": folder_checksums(building)}, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    os.rename(building, final)
    return final


def _scheduler_state(scheduler) -> dict:
    # LambdaLR keeps its lambdas as None when they are plain functions: the rest is numbers.
    return {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def damage(directory: Path) -> str | None:
    """What is wrong with a checkpoint folder that has its marker, or None where every file matches it."""
    marker = directory / MARKER
    try:
        files = json.loads(marker.read_text())["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not a table")
    except (ValueError, KeyError, TypeError) as e:
        return f"{marker} cannot be read ({e!r})"
    return folder_fault(directory, files)


def newest(root: Path) -> Path | None:
    """The newest checkpoint under `root`, checked whole; None where there is none. One without its marker was never
    finished (passed over, and said); one whose files do not match its marker is damaged, and refused."""
    if not root.is_dir():
        return None
    found = sorted((int(m.group(1)), p) for p in root.iterdir() if (m := _NAME.fullmatch(p.name)) and p.is_dir())
    for _, path in reversed(found):
        if not (path / MARKER).is_file():
            print(f"{path} has no {MARKER} marker: an unfinished checkpoint, passed over", flush=True)
            continue
        refuse_damaged(damage(path), f"Remove {path} and resume again: the run goes on from the checkpoint before "
                                     "it where one is left, else from epoch 1 (or train into another --out)")
        return path
    return None


def prune(root: Path, keep: Path) -> None:
    """Remove every checkpoint but `keep` (and any unfinished leftovers)."""
    for path in root.iterdir():
        if path != keep and path.is_dir() and (_NAME.fullmatch(path.name) or path.name.endswith(".partial")):
            shutil.rmtree(path, ignore_errors=True)


def restore(directory: Path, student, aligner, optimizers: dict, schedulers: dict) -> dict:
    """Load a checkpoint into the live objects; returns its state.json."""
    state = json.loads((directory / "state.json").read_text())
    trainable = load_file(str(directory / "student.safetensors"))
    expected = set(_trainable(student))
    if set(trainable) != expected:
        raise ArmadaError(f"checkpoint {directory} was made for another student or settings "
                          f"({len(set(trainable) ^ expected)} trainable tensors differ); start a new --out")
    with torch.no_grad():
        parameters = dict(student.named_parameters())
        for name, value in trainable.items():
            parameters[name].copy_(value)
    if aligner is not None:
        aligner.load_state_dict(load_file(str(directory / "aligner.safetensors")))
    for name, optimizer in optimizers.items():
        tensors = load_file(str(directory / f"optimizer-{name}.safetensors"))
        optimizer.load_state_dict(_optimizer_state(tensors, state["optimizers"][name]))
    for name, scheduler in schedulers.items():
        scheduler.load_state_dict({**state["schedulers"][name], "lr_lambdas": [None] * len(scheduler.lr_lambdas)})
    return state
