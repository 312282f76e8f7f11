"""Runs gathered into the report's tables: one per student, rows = variants, columns = tasks, each
cell the seeds' scores at the best and the last epoch, their summary and their delta against the
undistilled variant, plus one paired t-test per variant. Only what is there is counted: missing and
unfinished seeds are recorded per cell, never filled in.

The t-test pairs one value per trained model: a (task, seed) cell for a task's own column; for a
generative run, scored on several sets by one saved student, the mean of its scores over the sets
both it and the undistilled model of its seed were scored on (3 seeds are 3 pairs, whatever the
number of sets). Over several tasks a second test standardises: each task's differences divided by
the sd of its undistilled seeds' scores, so that a task of wide spread (or of a wider metric) does not
outweigh the others.

A generative run (`objective = "lm"`) gives no column of its own (its dev score is a loss); it gives
one column per task and split its saved student was scored on by `armada eval`, named
"<trained on> → <scored on> <split>" (one more per extra score, e.g. "[loglik_accuracy]"). Its
saved student is one epoch's (the best by validation LM loss, or the last), so its "best" score is
that evaluation, and its "last" score the same where that epoch is the last, else undefined.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from armada.errors import ArmadaError
from armada.objectives import declaration
from armada.reporting.runs import SELECTIONS, EpochScores, Run
from armada.reporting.stats import Delta, PairedTest, Summary, delta, paired_t_test, summarize

# The paper's order of the manifold losses (Table 2); other variants (ablations) follow by name.
MANIFOLD_VARIANTS = ("armada-cosine", "armada-euclid", "armada-elementwise")


@dataclass
class Cell:
    variant: str
    task: str
    expected_seeds: tuple[int, ...]                 # the seeds planned for this cell (or, with no plan, every
                                                    # seed any variant ran on the task); () = not planned
    runs: list[Run] = field(default_factory=list)   # finished runs
    unfinished_seeds: tuple[int, ...] = ()
    scores: dict[str, dict[int, float]] = field(default_factory=dict)       # selection → seed → score
    undefined_seeds: dict[str, tuple[int, ...]] = field(default_factory=dict)  # selection → seeds whose score is NaN
    summary: dict[str, Summary | None] = field(default_factory=dict)
    delta: dict[str, Delta | None] = field(default_factory=dict)

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(sorted(r.seed for r in self.runs))

    @property
    def missing_seeds(self) -> tuple[int, ...]:
        return tuple(s for s in self.expected_seeds if s not in self.seeds and s not in self.unfinished_seeds)

    @property
    def complete(self) -> bool:
        return self.seeds == self.expected_seeds and not any(self.undefined_seeds.values())


@dataclass
class Table:
    student: str
    tasks: tuple[str, ...]
    metrics: dict[str, str]                         # task → primary metric name
    variants: tuple[str, ...]                       # baseline first
    baseline: str | None                            # the undistilled variant deltas are taken against
    cells: dict[tuple[str, str], Cell]              # (variant, task) → cell
    tests: dict[tuple[str, str], PairedTest]        # (selection, variant) → test against the baseline
    notes: list[str]
    # (selection, variant) → the test over standardised differences; only where the pairs span several tasks
    standardised: dict[tuple[str, str], PairedTest] = field(default_factory=dict)
    standardised_notes: list[str] = field(default_factory=list)     # tasks left out of it, and why


GENERATIVE_NOTE = ("columns with → score generative runs' saved students on generated text (armada eval): the best "
                   "epoch by validation LM loss, or the last where the task has no validation split; under \"Last "
                   "epoch\" such a cell is undefined for a seed whose saved epoch is not its last")


Plan = Mapping[tuple[str, str], Sequence[int]]     # (variant, trained task) → the seeds meant to run


def build_tables(runs: list[Run], plan: Plan | None = None) -> list[Table]:
    """One table per student, over every run given (finished or not).

    `plan` (from `armada run`: its variants, tasks and seeds) says what each cell expects, so a seed
    never started counts as missing and a variant kept off a task (its `tasks`) as not planned. Tasks
    the plan does not name expect every seed any variant ran on them."""
    students = sorted({r.student for r in runs})
    tables = []
    for student in students:
        mine = [r for r in runs if r.student == student]
        trained_on = {}                             # column → the task its runs trained on
        views = []
        for run in mine:
            for view in generative_columns(run):
                trained_on[view.task] = run.task
                views.append(view)
        columns_plan = {(variant, column): seeds for (variant, task), seeds in (plan or {}).items()
                        for column, trained in trained_on.items() if trained == task}
        elsewhere = {r.variant for r in runs if r.student != student}     # planned variants another student trains
        table = _build_table(student, views, columns_plan, elsewhere, trained_on)
        if any(declaration(r.objective).generative for r in mine):
            table.notes.append(GENERATIVE_NOTE)
        unscored = [r for r in mine if declaration(r.objective).generative and r.finished and not r.evaluations]
        if unscored:
            table.notes.append(f"{len(unscored)} finished generative run(s) not scored yet, so in no column "
                               f"(armada eval --run RUN): {', '.join(str(r.path) for r in unscored)}")
        tables.append(table)
    return tables


def generative_columns(run: Run) -> list[Run]:
    """A generative run as one Run per score of each evaluation (task = the column); any other run as itself."""
    if not declaration(run.objective).generative:
        return [run]
    views = []
    for evaluation in run.evaluations:
        base = f"{run.task} → {evaluation.task} {evaluation.split}"
        for name, score in evaluation.scores.items():
            column = base if name == evaluation.metric else f"{base} [{name}]"
            saved = EpochScores(run.best_epoch, {name: score})
            last = run.history[-1].epoch if run.history else run.best_epoch
            history = (saved,) if last == run.best_epoch else (saved, EpochScores(last, {name: float("nan")}))
            views.append(dataclasses.replace(run, task=column, metric=name, history=history))
    return views


def _build_table(student: str, runs: list[Run], plan: Plan, elsewhere: set[str] = frozenset(),
                 trained_on: Mapping[str, str] = {}) -> Table:
    """`runs` one per column (generative runs as their views, `trained_on` their column → trained task); `plan`
    keyed by those columns. A planned variant with no run at all is a row of missing cells, unless its runs are
    another student's (`elsewhere`)."""
    notes: list[str] = []
    tasks = tuple(sorted({r.task for r in runs}))
    metrics = _metrics(runs)
    baselines = sorted({r.variant for r in runs if r.undistilled})
    baseline = ("undistilled" if "undistilled" in baselines else baselines[0]) if baselines else None
    if len(baselines) > 1:
        notes.append(f"several undistilled variants ({', '.join(baselines)}): deltas are against {baseline}")
    if baseline is None:
        notes.append("no undistilled runs: no deltas and no t-tests")
    variants = _order_variants({r.variant for r in runs} | ({variant for variant, _ in plan} - elsewhere), baseline)
    _refuse_duplicates(runs)

    planned_tasks = {task for _, task in plan}
    cells = {}
    for task in tasks:
        ran = tuple(sorted({r.seed for r in runs if r.task == task}))
        for variant in variants:
            mine = [r for r in runs if r.task == task and r.variant == variant]
            finished = [r for r in mine if r.finished]
            done = {r.seed for r in finished}
            if task in planned_tasks:
                expected = tuple(sorted(set(plan.get((variant, task), ())) | {r.seed for r in mine}))
            else:
                expected = ran
            cell = Cell(
                variant, task, expected, finished,
                unfinished_seeds=tuple(sorted({r.seed for r in mine if not r.finished} - done)),
            )
            for selection in SELECTIONS:
                by_seed = {r.seed: r.score(selection) for r in finished}
                cell.scores[selection] = {s: v for s, v in by_seed.items() if not math.isnan(v)}
                cell.undefined_seeds[selection] = tuple(sorted(s for s, v in by_seed.items() if math.isnan(v)))
                cell.summary[selection] = summarize(cell.scores[selection].values()) if cell.scores[selection] else None
            cells[(variant, task)] = cell

    tests, standardised, standardised_notes = {}, {}, []
    for selection in SELECTIONS:
        for variant in variants:
            if baseline is None:
                continue
            base_cells = {t: cells[(baseline, t)].scores[selection] for t in tasks}
            for task in tasks:
                cell = cells[(variant, task)]
                base = base_cells[task]
                cell.delta[selection] = delta(cell.scores[selection], base) if variant != baseline and cell.scores[selection] and base else None
            if variant != baseline:
                ours, theirs = _per_model({t: cells[(variant, t)].scores[selection] for t in tasks}, base_cells, trained_on)
                tests[(selection, variant)] = paired_t_test(ours, theirs)
                if len({task for task, _ in ours}) > 1:
                    scales, left_out = _baseline_spreads(base_cells, trained_on)
                    if selection == SELECTIONS[0] and not standardised_notes:
                        standardised_notes.extend(left_out)
                    standardised[(selection, variant)] = paired_t_test(
                        {k: v / scales[k[0]] for k, v in ours.items() if k[0] in scales},
                        {k: v / scales[k[0]] for k, v in theirs.items() if k[0] in scales})
    return Table(student, tasks, metrics, variants, baseline, cells, tests, notes, standardised, standardised_notes)


def _per_model(variant: Mapping[str, Mapping[int, float]], baseline: Mapping[str, Mapping[int, float]],
               trained_on: Mapping[str, str]) -> tuple[dict, dict]:
    """The paired test's values, keyed (task, seed): a column's own score, or for a generative model (its columns
    `trained_on` one task) the mean of its scores over the columns both it and the baseline model of its seed have."""
    ours, theirs, shared = {}, {}, {}
    for column, scores in variant.items():
        task = trained_on.get(column, column)
        for seed, value in scores.items():
            if seed in baseline[column]:
                shared.setdefault((task, seed), []).append((value, baseline[column][seed]))
            elif column not in trained_on:
                ours[(task, seed)] = value      # unpaired: the test leaves it out, as it leaves out any lone value
    for key, pairs in shared.items():
        ours[key], theirs[key] = sum(a for a, _ in pairs) / len(pairs), sum(b for _, b in pairs) / len(pairs)
    for column, scores in baseline.items():
        for seed, value in scores.items():
            theirs.setdefault((trained_on.get(column, column), seed), value)
    return ours, theirs


def _baseline_spreads(baseline: Mapping[str, Mapping[int, float]], trained_on: Mapping[str, str]
                      ) -> tuple[dict[str, float], list[str]]:
    """Per task (a generative task: its models' mean over their columns), the sd of the undistilled seeds' scores;
    and why a task has none (fewer than two seeds, or every seed the same)."""
    by_task: dict[str, dict[int, list[float]]] = {}
    for column, scores in baseline.items():
        for seed, value in scores.items():
            by_task.setdefault(trained_on.get(column, column), {}).setdefault(seed, []).append(value)
    scales, left_out = {}, []
    for task, seeds in sorted(by_task.items()):
        spread = summarize(sum(v) / len(v) for v in seeds.values()).sd
        if math.isnan(spread) or spread == 0:
            left_out.append(f"{task}: its undistilled seeds have no spread to standardise by ({len(seeds)} seed(s))")
        else:
            scales[task] = spread
    return scales, left_out


def _metrics(runs: list[Run]) -> dict[str, str]:
    metrics: dict[str, Run] = {}
    for run in runs:
        first = metrics.setdefault(run.task, run)
        if first.metric != run.metric:
            raise ArmadaError(
                f"{run.task}: runs disagree on the metric ({first.path}: {first.metric}, {run.path}: {run.metric}); "
                "report runs made with one version of the task"
            )
    return {task: run.metric for task, run in metrics.items()}


def _refuse_duplicates(runs: list[Run]) -> None:
    seen: dict[tuple, Run] = {}
    for run in runs:
        if not run.finished:
            continue
        key = (run.variant, run.task, run.seed)
        if key in seen:
            raise ArmadaError(
                f"two finished runs of {run.student} {run.variant} on {run.task} with seed {run.seed}: "
                f"{seen[key].path} and {run.path}; give the report only one of them"
            )
        seen[key] = run


def _order_variants(names: set[str], baseline: str | None) -> tuple[str, ...]:
    def natural(name: str):
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]

    first = [baseline] if baseline else []
    manifold = [v for v in MANIFOLD_VARIANTS if v in names and v != baseline]
    rest = sorted(names - set(first) - set(manifold), key=natural)
    return tuple(first + manifold + rest)
