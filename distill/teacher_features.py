"""The teacher's vectors for the splits a run trains and evaluates on, read from the cache and checked.

The cache reader matches every example of the split to its cached row by example id and checks
its teacher-text hash, refusing any mismatch, unfinished or damaged shard; this module adds the
run-level checks: the cache is for this task and holds a training split.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from armada.errors import ArmadaError
from armada.tasks import Split


@dataclass
class TeacherFeatures:
    train: object                   # armada.cache_schema.Features: feats[positions] -> float32 [n, D]
    validation: object | None       # None when the cache has no validation split
    dim: int
    provenance: dict                # what the run's record says of the cache


def open_cache(path: str):
    """A reader on a cache (directory, packed file, http(s) URL) or on one exported as a Hugging Face dataset
    (hf:DIR, hf:org/name[@revision]): both check every id and teacher-text hash the same way."""
    from armada.cache_schema import CacheReader
    from armada.cache_schema.hf_reader import PREFIX, open_hf

    return open_hf(path) if path.startswith(PREFIX) else CacheReader(path)


def absolute_location(location: str) -> str:
    """`location` as any folder finds it: a local path (or hf:DIR) made absolute; a URL or Hub id as it is."""
    from armada.cache_schema.hf_reader import PREFIX

    prefix = PREFIX if location.startswith(PREFIX) else ""
    target = location[len(prefix):]
    return prefix + os.path.abspath(target) if "://" not in target and Path(target).exists() else location


def split_settings(reader, split: str) -> tuple[int, str]:
    """(limit, teacher template) the cache's split was extracted with: the defaults to read the split with."""
    info = reader.manifest.dataset.splits.get(split)
    return (info.limit if info else 0), reader.manifest.extraction.teacher_template


def check_task(reader, task_name: str) -> None:
    cached = reader.manifest.dataset.task
    if cached != task_name:
        raise ArmadaError(f"the cache at {reader.location} holds {cached!r}, not {task_name!r}; "
                          f"use a cache extracted for {task_name} (armada extract --dataset {task_name})")


def load_teacher_features(reader, train: Split, validation: Split | None) -> TeacherFeatures:
    """The features of every training example, and of every validation example where the task and the cache have
    them; the reader was checked to hold the task when it was opened (armada.distill.inputs)."""
    splits = reader.manifest.dataset.splits
    if "train" not in splits:
        raise ArmadaError(f"the cache at {reader.location} has no train split (it has {sorted(splits)}); "
                          "extract the train split: armada extract --split train ...")
    train_features = reader.load("train", train.ids, train.teacher_hashes)
    validation_features = (reader.load("validation", validation.ids, validation.teacher_hashes)
                           if validation is not None and "validation" in splits else None)
    manifest = reader.manifest
    provenance = {
        "path": reader.location,
        # where a later command finds it from another folder (`path` is as given, relative to where the run started)
        "absolute_path": absolute_location(reader.location),
        "config_hash": manifest.config_hash,
        "teacher": {"name": manifest.teacher.name, "kind": manifest.teacher.kind, "dim": manifest.teacher.dim},
        "fingerprints": {name: info.fingerprint for name, info in splits.items()},
    }
    return TeacherFeatures(train_features, validation_features, manifest.teacher.dim, provenance)
