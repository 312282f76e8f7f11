"""`armada run`: the whole job a pipeline file describes, resumable at every step.

For each task: extract the teacher's features (a finished cache is checked and reused; an
interrupted one resumes), distil every variant × seed (a finished run is skipped, an interrupted
one resumes from its newest complete checkpoint, one another process is training is left to it),
score each run's best student and TS Aligner on the validation split, then write one report over
every run of the pipeline. So several `armada run`s of one pipeline share its runs between them,
and with `[run] processes = N` one `armada run` trains N runs at a time itself.

Several teachers ([extract] teachers, or a variant's own `teacher`): each is extracted once per
task and probed (armada.eval.probe: how much of the task its vectors carry, beside the student's own
embedding); every distilled variant runs once per teacher, as VARIANT@TEACHER where the pipeline
has more than one. With one teacher the names and folders are what they always were.

Layout: <runs_dir>/<name>/<task>/<variant>/seed-<S>/ for runs, <runs_dir>/<name>/<task>/probe--<teacher>.json
for the probes, <report_dir>/<name>/ for the report, the caches where [extract] cache_dir says.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from armada.config import PipelineConfig, Variant
from armada.errors import ArmadaError
from armada.objectives import declaration
from armada.run_schema import RunBusy, RunFolder, pipeline_run_folder
from armada.tasks import Task, get_task


@dataclass(frozen=True)
class PlannedRun:
    task: Task
    variant: Variant
    seed: int
    out: Path
    teacher: str | None                     # None: undistilled, no teacher
    name: str                               # the variant as the report lists it: VARIANT or VARIANT@TEACHER


def plan(cfg: PipelineConfig) -> list[PlannedRun]:
    several = len(cfg.all_teachers()) > 1
    runs = []
    for task in cfg.run.tasks:
        for variant in cfg.variants:
            if variant.tasks and task not in variant.tasks:
                continue
            undistilled = cfg.distill_for(task, variant).undistilled
            for teacher in (None,) if undistilled else cfg.teachers_of(variant):
                name = f"{variant.name}@{teacher}" if several and teacher else variant.name
                runs += [PlannedRun(get_task(task, cfg.tasks), variant, seed,
                                    pipeline_run_folder(cfg.run.runs_dir, cfg.run.name, task, name, seed).path,
                                    teacher, name)
                         for seed in cfg.run.seeds_per_task.get(task, cfg.run.seeds)]
    return runs


def planned_seeds(runs: list[PlannedRun]) -> dict[tuple[str, str], list[int]]:
    """(variant, task) → the seeds of the planned `runs`: what the report's coverage expects."""
    seeds: dict[tuple[str, str], list[int]] = {}
    for run in runs:
        seeds.setdefault((run.name, run.task.name), []).append(run.seed)
    return seeds


def probe_path(cfg: PipelineConfig, task: str, teacher: str) -> Path:
    from armada.eval.probe import PROBE_FILE_PREFIX
    from armada.files import task_slug

    return Path(cfg.run.runs_dir) / cfg.run.name / task_slug(task) / f"{PROBE_FILE_PREFIX}{task_slug(teacher)}.json"


def run_pipeline(cfg: PipelineConfig, say=print, command: list[str] | None = None) -> Path:
    """Run every stage; returns the report folder, which also gets the resolved pipeline
    (pipeline.toml) and provenance.json: `command` (default: this process's argv), machine,
    library versions and this sitting's wall-clock (each run's own is in the report)."""
    from armada import provenance
    from armada.config import refuse_idle_variants, to_dict, to_toml
    from armada.preflight import check_before_work
    from armada.reporting import write_report
    from armada.extract.job import job_from_config
    from armada.extract.runner import run_extract

    started = time.time()
    refuse_idle_variants(cfg)
    runs = plan(cfg)
    check_before_work(cfg, runs)
    caches: dict[tuple[str, str], str] = {}     # (task, teacher) → cache; only baselines need none (rows from [data])
    probes = []
    for name in cfg.run.tasks:
        for teacher in dict.fromkeys(r.teacher for r in runs if r.task.name == name and r.teacher):
            job = job_from_config(cfg, name, teacher=teacher)
            say(f"== extract {name} with {teacher} → {job.out}")
            summary = run_extract(job, when_busy=lambda: say("   another process is extracting it (another armada run "
                                                              "of this pipeline): waiting for it, then resuming"))
            if summary.rows_written == 0:
                say(f"   the cache was already complete ({summary.shards_already_done} shards)")
            else:
                say(f"   {summary.rows_written} rows written in {summary.seconds:.0f} s"
                    + (f", {summary.rows_reused} of them copied from {', '.join(job.reuse)}" if job.reuse else ""))
            caches[(name, teacher)] = job.out
            probes.append(probe(cfg, name, teacher, job.out, say))

    if cfg.run.processes > 1 and len(runs) > 1:
        train_in_processes(cfg, runs, caches, say)
    else:
        for i in range(len(runs)):
            train_and_score(cfg, runs, i, caches, say)

    report = Path(cfg.run.report_dir) / cfg.run.name
    say(f"== report → {report}")
    files = write_report([Path(cfg.run.runs_dir) / cfg.run.name], report, analysis=cfg.run.analysis,
                         file_tasks=cfg.tasks, plan=planned_seeds(runs))   # each run reads its own data folder
    (report / "pipeline.toml").write_text(to_toml(to_dict(cfg)), encoding="utf-8")
    finished = time.time()
    (report / "provenance.json").write_text(json.dumps(provenance.record(command, started, finished), indent=2) + "\n")
    say(f"done in {finished - started:.0f} s: {files.markdown}")
    for result in probes:
        if result is not None and result.teacher_at_chance:
            say(f"note: {result.verdict()} (probe {result.score('teacher').dev:.1f}, chance {result.chance:.1f}): "
                f"distilling from it can move the student only by regularising it")
    return report


def train_and_score(cfg: PipelineConfig, runs: list[PlannedRun], i: int, caches: dict[tuple[str, str], str], say) -> None:
    """Train the i-th run (or resume it, or find it finished) and score it."""
    from armada.distill.inputs import rows_from
    from armada.distill.recipe import train

    run = runs[i]
    settings = cfg.distill_for(run.task.name, run.variant, seed=run.seed)
    say(f"== distill [{i + 1}/{len(runs)}] {run.task.name} {run.name} seed {run.seed} → {run.out}")
    try:
        train(settings, run.task, caches.get((run.task.name, run.teacher)), cfg.data.dir_for(run.task.name), run.out,
              resume=True, variant=run.name, **rows_from(cfg.data, run.task.name))
    except RunBusy:
        say("   another process is training it (another armada run of this pipeline): left to that one")
        return
    evaluate(run, cfg, say)


def threads_each(processes: int) -> int:
    """Torch threads for each of `processes` processes that share this process's cores."""
    return max(1, len(os.sched_getaffinity(0)) // processes)


def train_in_processes(cfg: PipelineConfig, runs: list[PlannedRun], caches: dict[tuple[str, str], str], say) -> None:
    """`[run] processes` processes train the runs at once, each taking the next run from a queue, with its share of
    the cores as torch threads: the runs are independent, and small runs use a core each better than they share
    two (bench/trainer_parity.py). Each process's lines start with its number; progress bars are off (they would
    draw over each other)."""
    import multiprocessing

    count = min(cfg.run.processes, len(runs))
    threads = threads_each(count)
    context = multiprocessing.get_context("spawn")  # a fork would copy torch's thread pools in whatever state they are
    queue = context.Queue()
    for item in [*range(len(runs)), *[None] * count]:
        queue.put(item)
    say(f"== training {len(runs)} runs in {count} processes, {threads} torch thread{'s' * (threads > 1)} each")
    workers = [context.Process(target=_train_from_queue, args=(cfg, caches, queue, threads, k), daemon=True)
               for k in range(1, count + 1)]
    bars = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"        # read by tqdm when a process imports it: set before the workers start
    try:
        for worker in workers:
            worker.start()
    finally:
        if bars is None:
            del os.environ["TQDM_DISABLE"]
        else:
            os.environ["TQDM_DISABLE"] = bars
    for worker in workers:
        worker.join()
    failed = [(k, w.exitcode) for k, w in enumerate(workers, start=1) if w.exitcode != 0]
    if failed:
        named = ", ".join(f"[{k}] (exit code {code})" for k, code in failed)
        raise ArmadaError(f"training process {named} failed: its messages are above, on the lines that start with its "
                          f"number; fix what they say and run the same command again (finished runs are kept, "
                          f"interrupted ones resume)")


def _train_from_queue(cfg: PipelineConfig, caches: dict[tuple[str, str], str], queue, threads: int, number: int) -> None:
    import torch

    torch.set_num_threads(threads)
    sys.stdout = _Marked(sys.stdout, f"[{number}] ")
    sys.stderr = _Marked(sys.stderr, f"[{number}] ")
    runs = plan(cfg)
    try:
        while (i := queue.get()) is not None:
            train_and_score(cfg, runs, i, caches, print)
    except ArmadaError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


class _Marked:
    """A text stream whose every line starts with `mark`: lines of processes that share one terminal."""

    def __init__(self, stream, mark: str):
        self._stream, self._mark, self._at_line_start = stream, mark, True

    def write(self, text: str) -> int:
        lines = text.split("\n")
        marked = []
        for j, line in enumerate(lines):
            if line and self._at_line_start:
                line = self._mark + line
            marked.append(line)
            self._at_line_start = j < len(lines) - 1 or (self._at_line_start and not line)
        self._stream.write("\n".join(marked))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def probe(cfg: PipelineConfig, task: str, teacher: str, cache: str, say):
    """The task's linear probes on `teacher`'s cache, written beside the task's runs (kept where the cache is
    unchanged); None for a generative task, or where the cache has too few rows per label to fold."""
    from armada.eval.probe import ProbeResult, TooFewRows, probe_cache

    if get_task(task, cfg.tasks).kind == "generation":
        return None
    from armada.distill.teacher_features import open_cache

    path = probe_path(cfg, task, teacher)
    if path.exists():
        result = ProbeResult.read(path)
        reader = open_cache(cache)
        if (result.cache, result.config_hash) == (reader.location, reader.manifest.config_hash):
            return result
    student = cfg.distill_for(task)
    try:
        result = probe_cache(cache, task, data_dir=cfg.data.dir_for(task), student=student.student,
                             pooling=student.pooling, max_length=student.max_length, file_tasks=cfg.tasks)
    except TooFewRows as e:
        say(f"   no probe: {e}")
        return None
    result.write(path)
    score = result.score("teacher")
    say(f"   probe: teacher {score.dev if score.dev is not None else score.cv:.1f} (chance {result.chance:.1f}); "
        f"{result.verdict()} → {path}")
    return result


def evaluate(run: PlannedRun, cfg: PipelineConfig, say) -> None:
    """Score each finished run once: the best student (and its aligner alone: the paper's Table 6) on
    the validation split; a generative student by what it writes, on its own validation split and
    on every zero-shot set [run] zero_shot names for its task."""
    from armada.eval.evaluate import evaluate_run

    folder = RunFolder(run.out)
    record = folder.read_record()
    if declaration(record.objective).generative:
        return evaluate_generative(run, cfg, say)
    scorers = [False] if record.undistilled else [False, True]
    for aligner in scorers:
        if folder.scored_since_finished(folder.scores_path("validation", aligner)):
            continue
        result = evaluate_run(run.out, "validation", aligner=aligner, file_tasks=cfg.tasks)
        say(f"   {result.summary()}")


def evaluate_generative(run: PlannedRun, cfg: PipelineConfig, say) -> None:
    from armada.eval import evaluate

    folder = RunFolder(run.out)
    own = [(run.task, None, 0)] if "validation" in run.task.splits else []
    zero_shot = [(get_task(name, cfg.tasks), cfg.data.dir_for(name), cfg.run.eval_limit)
                 for name in cfg.run.zero_shot.get(run.task.name, ())]
    for task, data_dir, limit in own + zero_shot:
        split = evaluate.default_generation_split(task, own=task is run.task)
        if folder.scored_since_finished(folder.generation_path(task.name, split)):
            continue
        record = evaluate.evaluate_generative(run.out, task.name, split, data_dir, limit, file_tasks=cfg.tasks)
        say(f"   {evaluate.generative_summary(record)}")

