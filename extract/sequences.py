"""SeqKD's teacher (Kim & Rush, 2016): a causal LM's own greedy responses to a task's training prompts, written
once as text, for students to learn in place of the references (`distill.seqkd_cache`).

The teacher is a finished `armada distill --objective lm` run (run:PATH, as for KD: `armada extract
--teacher run:PATH --dataset instruct/dolly` sees the run is generative and writes this cache). Its
prompts are built as its own evaluation builds them (its prompt style), decoded greedily: no
sampling, one beam, until its end of turn or `max_new_tokens`. The cache's files, how an interrupted
one resumes and what a reader refuses are armada.cache_schema.sequences'.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from armada.errors import ArmadaError
from armada.tasks import Split, Task


@dataclass(frozen=True)
class SequenceSummary:
    path: str
    written: int
    already_done: int
    seconds: float


def write_sequences(run: str | Path, task: Task, split: Split, out: str | Path, *, max_new_tokens: int,
                    batch_size: int = 8, say=print) -> SequenceSummary:
    """Greedy responses of the generative run `run` to every example of `split`, into the sequence cache `out`.
    One writer at a time: while another writes `out`, this one is refused (two would interleave their lines)."""
    from armada.extract.runner import writing_alone

    with writing_alone(str(out)):
        return _write_sequences(run, task, split, out, max_new_tokens=max_new_tokens, batch_size=batch_size, say=say)


def _write_sequences(run: str | Path, task: Task, split: Split, out: str | Path, *, max_new_tokens: int,
                     batch_size: int, say) -> SequenceSummary:
    from armada.cache_schema.sequences import SequenceWriter
    from armada.distill.model import load_causal_student
    from armada.eval.generation import Decoding, generate
    from armada.extract.text import run_record
    from armada.files import folder_sha256
    from armada.run_schema import RunFolder
    from armada.tasks.generative import build_prompt

    started = time.time()
    run = Path(run)
    if task.kind != "generation":
        raise ArmadaError(f"{run} is a generative run (a SeqKD teacher), and {task.name} is a {task.kind} task: its "
                          "responses teach generation tasks (instruct/..., reasoning/...)")
    record = run_record(f"run:{run}", run, generative=True)
    model, tokenizer, info = load_causal_student(run)
    decoding = Decoding(max_new_tokens=max_new_tokens, num_beams=1, batch_size=batch_size)
    writer = SequenceWriter(out, {
        "task": task.name, "split": split.name, "limit": split.limit, "rows": len(split),
        "fingerprint": split.fingerprint(),
        "teacher": {"run": str(run), "task": record.task, "student": record.student, "seed": record.seed,
                    "best_epoch": record.best_epoch, "best_dev": record.best_dev,
                    "student_files_sha256": folder_sha256(RunFolder(run).student)},
        "prompt_style": info.prompt_style,
        "decoding": {**dataclasses.asdict(decoding), "do_sample": False},
        "armada": _version(),
    })
    examples = split.examples[writer.done:]
    say(f"{task.name} {split.name}: {len(split)} prompts, {writer.done} already answered; greedy, at most "
        f"{max_new_tokens} new tokens, by {run}")
    for start in range(0, len(examples), batch_size):
        batch = examples[start:start + batch_size]
        prompts = [build_prompt(*e.inputs[0], tokenizer=tokenizer, style=info.prompt_style) for e in batch]
        writer.append(zip(batch, generate(model, tokenizer, prompts, decoding)))
    writer.finish()
    return SequenceSummary(str(writer.out), len(examples), writer.done, round(time.time() - started, 3))


def _version() -> str:
    from importlib.metadata import version

    return version("armada")
