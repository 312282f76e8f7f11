"""SeqKD's teacher (Kim & Rush, 2016): a causal LM's own greedy responses to a task's training prompts, written
once as text, for students to learn in place of the references (`distill.seqkd_cache`).

The teacher is a finished `armada distill --objective lm` run (run:PATH, as for KD: `armada extract
--teacher run:PATH --dataset instruct/dolly` sees the run is generative and writes this cache). Its
prompts are built as its own evaluation builds them (its prompt style), decoded greedily: no
sampling, one beam, until its end of turn or `max_new_tokens`. A sequence cache is a folder:

  manifest.json     the task, split, limit and fingerprint of the rows; the teacher (run path, record,
                    sha256 of its saved student files); prompt style; decoding; armada's version
  responses.jsonl   one line per example, in the split's order: {"id", "input_sha256", "response"}

`input_sha256` hashes the example's instruction and input (what the student's prompt is built
from), so a student reads a response only for the very prompt it was written to. Lines are appended
a batch at a time, flushed and synced; an interrupted extraction resumes after its last whole line
(a torn last line is dropped), and a folder written with other settings is refused, naming them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from armada.errors import ArmadaError
from armada.tasks import Split, Task, sha256_text
from armada.tasks.model import student_input_text

MANIFEST, RESPONSES = "manifest.json", "responses.jsonl"
KIND = "armada-seqkd"


@dataclass(frozen=True)
class SequenceSummary:
    path: str
    written: int
    already_done: int
    seconds: float


def input_hash(example) -> str:
    return sha256_text(student_input_text(example.inputs))


def write_sequences(run: str | Path, task: Task, split: Split, out: str | Path, *, max_new_tokens: int,
                    batch_size: int = 8, say=print) -> SequenceSummary:
    """Greedy responses of the generative run `run` to every example of `split`, into the sequence cache `out`.
    One writer at a time: while another writes `out`, this one is refused (two would interleave their lines)."""
    from armada.extract.runner import writing_alone

    with writing_alone(str(out)):
        return _write_sequences(run, task, split, out, max_new_tokens=max_new_tokens, batch_size=batch_size, say=say)


def _write_sequences(run: str | Path, task: Task, split: Split, out: str | Path, *, max_new_tokens: int,
                     batch_size: int, say) -> SequenceSummary:
    from armada.distill.model import load_causal_student
    from armada.eval.generation import Decoding, generate
    from armada.extract.text import run_record
    from armada.extract.teacher import folder_sha256
    from armada.files import write_atomically
    from armada.run_schema import RunFolder
    from armada.tasks.generative import build_prompt

    started = time.time()
    run, out = Path(run), Path(out)
    if task.kind != "generation":
        raise ArmadaError(f"{run} is a generative run (a SeqKD teacher), and {task.name} is a {task.kind} task: its "
                          "responses teach generation tasks (instruct/..., reasoning/...)")
    record = run_record(f"run:{run}", run, generative=True)
    model, tokenizer, info = load_causal_student(run)
    decoding = Decoding(max_new_tokens=max_new_tokens, num_beams=1, batch_size=batch_size)
    manifest = {
        "kind": KIND, "task": task.name, "split": split.name, "limit": split.limit, "rows": len(split),
        "fingerprint": split.fingerprint(),
        "teacher": {"run": str(run), "task": record.task, "student": record.student, "seed": record.seed,
                    "best_epoch": record.best_epoch, "best_dev": record.best_dev,
                    "student_files_sha256": folder_sha256(RunFolder(run).student)},
        "prompt_style": info.prompt_style,
        "decoding": {**dataclasses.asdict(decoding), "do_sample": False},
        "armada": _version(),
    }
    done = _resume(out, manifest)
    examples = split.examples[done:]
    say(f"{task.name} {split.name}: {len(split)} prompts, {done} already answered; greedy, at most {max_new_tokens} "
        f"new tokens, by {run}")
    with open(out / RESPONSES, "a", encoding="utf-8") as lines:
        for start in range(0, len(examples), batch_size):
            batch = examples[start:start + batch_size]
            prompts = [build_prompt(*e.inputs[0], tokenizer=tokenizer, style=info.prompt_style) for e in batch]
            for example, response in zip(batch, generate(model, tokenizer, prompts, decoding)):
                lines.write(json.dumps({"id": example.id, "input_sha256": input_hash(example), "response": response},
                                       ensure_ascii=False) + "\n")
            lines.flush()
            os.fsync(lines.fileno())
    write_atomically(out / MANIFEST, json.dumps({**manifest, "complete": True}, indent=2) + "\n")
    return SequenceSummary(str(out), len(examples), done, round(time.time() - started, 3))


def _resume(out: Path, manifest: dict) -> int:
    """Prepare `out` for `manifest`: how many of its responses are already written (0 for a new folder)."""
    from armada.files import write_atomically

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
    from armada.cache_schema.bucket import refuse_url

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


def _version() -> str:
    from importlib.metadata import version

    return version("armada")
