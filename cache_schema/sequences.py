"""A SeqKD cache (Kim & Rush, 2016): a teacher LM's own responses to a task's training prompts, as text; the only
code that knows its files. armada.extract.sequences writes one (the teacher's greedy decoding); a generative
student reads it in place of the references (`distill.seqkd_cache`).

A sequence cache is a folder:

  manifest.json     the task, split, limit and fingerprint of the rows; the teacher (run path, record,
                    sha256 of its saved student files); prompt style; decoding; armada's version;
                    "complete": true once every response is written
  responses.jsonl   one line per example, in the split's order: {"id", "input_sha256", "response"}

`input_sha256` hashes the example's instruction and input (what the student's prompt is built
from), so a student reads a response only for the very prompt it was written to. Lines are appended
a batch at a time, flushed and synced; an interrupted writer resumes after its last whole line
(a torn last line is dropped), and a folder written with other settings is refused, naming them.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Iterable

from armada.cache_schema.bucket import refuse_url
from armada.errors import ArmadaError
from armada.files import write_atomically
from armada.tasks import Split, Task, sha256_text
from armada.tasks.model import student_input_text

MANIFEST, RESPONSES = "manifest.json", "responses.jsonl"
KIND = "armada-seqkd"


def input_hash(example) -> str:
    return sha256_text(student_input_text(example.inputs))


class SequenceWriter:
    """Appends responses to the sequence cache at `out`, made for `manifest` (a dict: KIND is added). `done` is how
    many responses an earlier writer of the same settings already wrote; the caller continues after them."""

    def __init__(self, out: str | Path, manifest: dict):
        self.out = Path(out)
        self.manifest = {"kind": KIND, **manifest}
        self.done = _resume(self.out, self.manifest)

    def append(self, pairs: Iterable[tuple]) -> None:
        """(example, response) pairs, in the split's order after the ones already written; flushed and synced."""
        with open(self.out / RESPONSES, "a", encoding="utf-8") as lines:
            for example, response in pairs:
                lines.write(json.dumps({"id": example.id, "input_sha256": input_hash(example), "response": response},
                                       ensure_ascii=False) + "\n")
            lines.flush()
            os.fsync(lines.fileno())

    def finish(self) -> None:
        write_atomically(self.out / MANIFEST, json.dumps({**self.manifest, "complete": True}, indent=2) + "\n")


def _resume(out: Path, manifest: dict) -> int:
    """Prepare `out` for `manifest`: how many of its responses are already written (0 for a new folder)."""
    path = out / MANIFEST
    if path.is_file():
        existing = json.loads(path.read_text())
        existing.pop("complete", None)
        differ = [f"{key}: {existing.get(key)!r} → {manifest[key]!r}" for key in manifest
                  if key != "armada" and existing.get(key) != manifest[key]]
        if differ:
            raise ArmadaError(f"the sequence cache at {out} was written with other settings (existing → requested):\n  "
                              + "\n  ".join(differ) + "\nwrite to another --out, or delete it")
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(manifest, indent=2) + "\n")
    responses = out / RESPONSES
    if not responses.exists():
        return 0
    text = responses.read_text(encoding="utf-8")
    whole = text[:text.rfind("\n") + 1]             # a torn last line (a write cut short) is dropped
    if whole != text:
        write_atomically(responses, whole)
    return whole.count("\n")


def read_sequences(path: str | Path, task: Task, split: Split) -> tuple[Split, dict]:
    """(`split` with each example's references replaced by the teacher's response, the cache's manifest), after
    refusing a cache for another task, an unfinished one, and examples it lacks or wrote for another prompt."""
    refuse_url(path, "a SeqKD cache (distill.seqkd_cache)")
    path = Path(path)
    where = f"the SeqKD cache {path} (distill.seqkd_cache)"
    if not (path / MANIFEST).is_file():
        raise ArmadaError(f"{where} has no {MANIFEST}: write one with armada extract --teacher run:PATH --dataset "
                          f"{task.name} (PATH a generative run)")
    manifest = json.loads((path / MANIFEST).read_text())
    if manifest.get("kind") != KIND:
        raise ArmadaError(f"{where} is not a SeqKD cache (kind {manifest.get('kind')!r})")
    if manifest["task"] != task.name:
        raise ArmadaError(f"{where} holds responses to {manifest['task']}'s prompts, not {task.name}'s; write one for "
                          f"{task.name}")
    if not manifest.get("complete"):
        raise ArmadaError(f"{where} is unfinished: run the same armada extract again to finish it")
    responses = {}
    for line in (path / RESPONSES).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        responses[row["id"]] = row
    missing = [e.id for e in split.examples if e.id not in responses]
    if missing:
        raise ArmadaError(f"{where} has no response for {len(missing)} of the {len(split)} {split.name} examples "
                          f"(e.g. {missing[:3]}); write it for these rows (the same --limit or none)")
    changed = [e.id for e in split.examples if responses[e.id]["input_sha256"] != input_hash(e)]
    if changed:
        raise ArmadaError(f"{where} answered other prompts for {len(changed)} examples (e.g. {changed[:3]}): their "
                          "instruction or input changed since; write the cache again")
    examples = tuple(dataclasses.replace(e, references=(responses[e.id]["response"],)) for e in split.examples)
    return dataclasses.replace(split, examples=examples), manifest
