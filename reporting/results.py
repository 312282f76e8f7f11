"""`armada report`: run folders → results.md, results.csv and PNG figures (and with `analysis`, the
paper's analyses: armada.reporting.embeddings and armada.reporting.paper_analyses). Everything found is
accounted for: missing seeds, missing runs, unfinished and unreadable runs are said in the report,
never averaged in or silently dropped.
"""

from __future__ import annotations

import csv
import datetime
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from armada.config import FileTask
from armada.files import check_writable_folder, file_slug
from armada.objectives import declaration
from armada.run_schema import find_run_folders

from armada.reporting.runs import SELECTIONS, BrokenRun, Run, load_run
from armada.reporting.stats import PairedTest, summarize
from armada.reporting.tables import GENERATIVE_NOTE, Cell, Plan, Table, build_tables

SELECTION_HEADINGS = {
    "best": "Best epoch on dev (selected the way the paper's code selects)",
    "last": "Last epoch (no selection on dev)",
}


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    csv: Path
    figures: tuple[Path, ...]
    analysis_csv: Path | None       # with analysis only
    analysis_tables: tuple[Path, ...] = ()      # the other analyses' CSVs (armada.reporting.paper_analyses)


def write_report(paths: list[str | Path], out: str | Path, analysis: bool = False, data_dir: str | None = None,
                 file_tasks: Mapping[str, FileTask] | None = None, plan: Plan | None = None) -> ReportFiles:
    """Read every run under `paths` and write the report to the folder `out`.

    `plan` ((variant, task) → seeds, as `armada run` plans them) makes coverage exact: planned
    seeds never started are missing, cells outside the plan are not listed as missing.
    `analysis` adds the paper's analyses (§6 embedding views, Tables 10, 13-15, Figures 3, 5, 6, 11),
    which load each student and read its dev split (`data_dir`, default each run's own; `file_tasks`
    for runs of `file:NAME` tasks)."""
    check_writable_folder(out, "--out")
    loaded = [load_run(folder) for folder in find_run_folders(paths)]
    runs = [r for r in loaded if isinstance(r, Run)]
    broken = [r for r in loaded if isinstance(r, BrokenRun)]
    tables = build_tables(runs, plan)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    from armada.reporting import plots

    figures: dict[str, list[Path]] = {}
    for table in tables:
        slug = file_slug(table.student)
        mine = figures.setdefault(table.student, [])
        if not table.tasks:         # generative runs still training: no scored column to draw yet
            continue
        if table.baseline is not None and len(table.variants) > 1:
            mine.append(plots.plot_deltas(table, out / f"deltas-{slug}.png"))
        mine.append(plots.plot_curves(table, out / f"curves-{slug}.png"))
        balance = plots.plot_balance(table, out / f"balance-{slug}.png")
        if balance is not None:
            mine.append(balance)

    from armada.reporting.teachers import find_probes

    probes = find_probes(paths)
    sections = [_render_table(table, figures[table.student], probes) for table in tables]
    analysis_csv, analysis_figures, analysis_tables = None, [], []
    if analysis:
        from armada.reporting.dev_predictions import DevPredictions
        from armada.reporting.embeddings import analyse_tables
        from armada.reporting.paper_analyses import paper_sections

        predictions = DevPredictions(data_dir, file_tasks)
        section, analysis_figures, analysis_csv = analyse_tables(tables, out, predictions.student, file_tasks)
        more, analysis_tables, more_figures = paper_sections(tables, out, predictions, file_tasks)
        sections += [section, *more]
        analysis_figures += more_figures

    markdown = out / "results.md"
    markdown.write_text(_render_document(tables, runs, broken, sections), encoding="utf-8")
    table_csv = out / "results.csv"
    _write_csv(tables, table_csv)
    return ReportFiles(markdown, table_csv, tuple(p for paths in figures.values() for p in paths) + tuple(analysis_figures),
                       analysis_csv, tuple(analysis_tables))


# --- markdown ---------------------------------------------------------------------------------

def _render_document(tables: list[Table], runs: list[Run], broken: list[BrokenRun], sections: list[str]) -> str:
    finished = [r for r in runs if r.finished]
    lines = [
        "# ARMADA results",
        "",
        f"Written by `armada report` on {datetime.date.today().isoformat()} from {len(finished)} finished run(s)"
        f"{f', {len(runs) + len(broken) - len(finished)} more not counted (listed below)' if len(finished) < len(runs) + len(broken) else ''}.",
        "Cells: dev-split score ×100, mean ± sd over seeds (sample sd); Δ = variant − undistilled, taken seed by seed "
        "where both ran that seed (mean ± sd of those differences), else as a difference of means (\"unpaired\"); "
        "n = seeds in the cell, or \"k of m seeds\" where some of the task's seeds are missing.",
        "t-test: one-sided paired t-test, H1: the variant scores higher than undistilled; one pair per (task, seed) "
        "cell (scipy.stats.ttest_rel, alternative=\"greater\").",
        "",
    ]
    if not tables:
        lines += ["No finished or unfinished runs could be read.", ""]
    lines += sections
    lines += _render_not_counted(runs, broken)
    lines += _render_run_list(runs)
    return "\n".join(lines).rstrip() + "\n"


def _render_table(table: Table, figures: list[Path], probes) -> str:
    from armada.reporting.teachers import render_comparisons, render_teachers

    lines = [f"## Student: {table.student}", ""]
    lines += [f"Note: {note}." for note in table.notes]
    if table.notes:
        lines.append("")
    if not table.tasks:
        return "\n".join(lines + ["No run of this student has finished and been scored yet.", ""])
    for selection in SELECTIONS:
        lines += [f"### {SELECTION_HEADINGS[selection]}", ""]
        header = ["variant"] + [_column(task, table.metrics[task]) for task in table.tasks]
        lines.append(_md_row(header))
        lines.append(_md_row(["---"] * len(header)))
        for variant in table.variants:
            cells = [table.cells[(variant, task)] for task in table.tasks]
            lines.append(_md_row([variant] + [_cell_text(cell, selection) for cell in cells]))
        lines.append("")
        tests = [(v, table.tests[(selection, v)]) for v in table.variants if (selection, v) in table.tests]
        if tests:
            pairs = ("trained models: (task, seed), a generative model's scores averaged over the sets it and the "
                     "undistilled model of its seed were scored on" if GENERATIVE_NOTE in table.notes
                     else "(task, seed) cells")
            lines += [f"One-sided paired t-test against {table.baseline} (pairs = {pairs}; mean Δ ×100):", ""]
            lines.append(_md_row(["variant", "pairs", "mean Δ", "t", "p"]))
            lines.append(_md_row(["---"] * 5))
            lines += [_md_row([variant, *_test_cells(test)]) for variant, test in tests]
            lines.append("")
        lines += _render_standardised(table, selection)
    lines += _render_maxima(table)
    lines += _render_aligner(table)
    lines += render_teachers(table, probes)
    lines += render_comparisons(table)
    lines += _render_balance(table)
    lines += _render_warnings(table)
    coverage = _coverage(table)
    lines += ["### Coverage", ""]
    lines += coverage or ["Every cell has every seed of its task."]
    lines.append("")
    lines += [f"![{figure.stem}]({figure.name})" for figure in figures]
    lines.append("")
    return "\n".join(lines)


def _render_maxima(table: Table) -> list[str]:
    """The best seed's best-epoch score per cell: how the paper's Table 2 reports ("the maximum scores
    obtained in three different runs"), for a like-for-like comparison; Δ is between the two maxima."""
    best = {key: cell.summary["best"].max for key, cell in table.cells.items() if cell.summary.get("best")}
    if not best:
        return []
    header = ["variant"] + [_column(task, table.metrics[task]) for task in table.tasks]
    delta = f"; Δ = the variant's maximum − the {table.baseline} maximum" if table.baseline else ""
    lines = ["### Best seed at its best epoch (how the paper's Table 2 reports)", "",
             f"The maximum over seeds{delta}. Beside the mean, not instead of it: a maximum of noisy runs grows with "
             "the number of seeds.", "", _md_row(header), _md_row(["---"] * len(header))]
    for variant in table.variants:
        cells = []
        for task in table.tasks:
            value, base = best.get((variant, task)), best.get((table.baseline, task))
            if value is None:
                cells.append("–")
            elif variant == table.baseline or base is None:
                cells.append(f"{100 * value:.1f}")
            else:
                cells.append(f"{100 * value:.1f}, Δ {100 * (value - base):+.1f}")
        lines.append(_md_row([variant] + cells))
    return lines + [""]


def _render_aligner(table: Table) -> list[str]:
    """The TS Aligner alone on the dev split (the paper's Table 6), at the epoch each run kept it from."""
    rows, scored = [], []
    for variant in table.variants:
        cells = []
        for task in table.tasks:
            kept = [(r, s) for r in table.cells[(variant, task)].runs
                    if (s := r.aligner_score()) is not None and not math.isnan(s)]
            scored += [r for r, _ in kept]
            scores = [s for _, s in kept]
            summary = summarize(scores) if scores else None
            cells.append(f"{_score(summary.mean, summary.sd)} (n={summary.n})" if summary else "–")
        if any(c != "–" for c in cells):
            rows.append(_md_row([variant] + cells))
    if not rows:
        return []
    header = ["variant"] + [_column(task, table.metrics[task]) for task in table.tasks]
    return ["### TS Aligner alone (the paper's Table 6)", "", f"{_aligner_kept(scored)}, scored on the dev split from "
            "the teacher's vectors alone.", "",
            _md_row(header), _md_row(["---"] * len(header)), *rows, ""]


def _aligner_kept(runs: list[Run]) -> str:
    """Which aligner the scored runs kept: the student's best epoch's, or its own (aligner_kept = "own-best")."""
    own = sum(r.aligner_best_epoch is not None for r in runs)
    if own == 0:
        return "The aligner saved with each run's best student"
    if own == len(runs):
        return "The aligner of its own best dev epoch (aligner_kept = \"own-best\", as the authors' code keeps it)"
    return (f"The aligner of its own best dev epoch in {own} of the {len(runs)} runs (aligner_kept = \"own-best\"), "
            "the one saved with the run's best student in the others")


def _render_balance(table: Table) -> list[str]:
    """Each term's mean share of the gradient reaching the student's backbone, per distilled cell."""
    from armada.reporting.plots import balance_terms, mean_shares

    rows, with_kd = [], False
    for variant in table.variants:
        shares = [mean_shares(table.cells[(variant, task)].runs) for task in table.tasks]
        with_kd = with_kd or any("kd" in s for s in shares)
        if any(shares):
            rows.append(_md_row([variant] + [" · ".join(f"{t} {s[t]:.2f}" for t in balance_terms([s])) or "–"
                                             for s in shares]))
    if not rows:
        return []
    header = ["variant"] + list(table.tasks)
    terms = ("(1 − α)·task, α·soft, γ·aux, β·manifold; with KD each scaled by 1 − kd_alpha, and kd_alpha·KD"
             if with_kd else "(1 − α)·task, α·soft, γ·aux, β·manifold")
    return ["### Loss balance", "",
            f"Each term of the student's loss ({terms}): its share of the gradient reaching the backbone (the norm of "
            f"its gradient at the pooled states over the sum of the {'terms' if with_kd else 'four'}), mean over "
            "epochs and seeds. Above 0.8 one alignment term, not the task, trains the student.", "",
            _md_row(header), _md_row(["---"] * len(header)), *rows, ""]


def _render_warnings(table: Table) -> list[str]:
    warned = [(variant, run) for variant in table.variants for task in table.tasks
              for run in table.cells[(variant, task)].runs if run.warnings]
    if not warned:
        return []
    lines = ["### Training warnings", ""]
    lines += [f"- {run.task}, {variant}, seed {run.seed}: {warning}" for variant, run in warned for warning in run.warnings]
    return lines + [""]


def _column(task: str, metric: str) -> str:
    return task if task.endswith(f"[{metric}]") else f"{task} ({metric})"


def _cell_text(cell: Cell, selection: str) -> str:
    summary = cell.summary[selection]
    if summary is None:
        if not cell.runs and not cell.unfinished_seeds:
            return "no runs" if cell.expected_seeds else "–"
        if not cell.runs:
            return f"no finished runs ({len(cell.unfinished_seeds)} unfinished)"
        return "undefined on every seed"
    text = _score(summary.mean, summary.sd)
    d = cell.delta.get(selection)
    if d is not None:
        text += ", Δ " + _score(d.mean, d.sd, signed=True)
        if d.pairs == 0:
            text += " unpaired"
        elif d.pairs < summary.n:
            text += f" on {d.pairs} paired seed(s)"
    expected = len(cell.expected_seeds)
    seeds = f"n={summary.n}" if summary.n == expected else f"{summary.n} of {expected} seeds"
    return f"{text} ({seeds})"


def _score(mean: float, sd: float, signed: bool = False) -> str:
    text = f"{100 * mean:+.1f}" if signed else f"{100 * mean:.1f}"
    return text if math.isnan(sd) else f"{text} ± {100 * sd:.1f}"


def _render_standardised(table: Table, selection: str) -> list[str]:
    """The test over several tasks with each task's differences in units of its undistilled seeds' sd."""
    tests = [(v, table.standardised[(selection, v)]) for v in table.variants if (selection, v) in table.standardised]
    if not tests:
        return []
    lines = ["The same pairs standardised (each task's scores divided by the sd of its undistilled seeds' scores, so "
             "that tasks of different spread and metric weigh alike; mean Δ in those sds):", ""]
    lines += [f"- left out: {note}" for note in table.standardised_notes]
    lines += ([""] if table.standardised_notes else []) + [_md_row(["variant", "pairs", "mean Δ (sd)", "t", "p"]),
                                                            _md_row(["---"] * 5)]
    lines += [_md_row([variant, *_test_cells(test, scale=1.0)]) for variant, test in tests]
    return lines + [""]


def _test_cells(test: PairedTest, scale: float = 100.0) -> list[str]:
    mean = "n/a" if math.isnan(test.mean_difference) else f"{scale * test.mean_difference:+.2f}"
    if test.reason:
        return [str(test.pairs), mean, f"n/a: {test.reason}", "n/a"]
    p = "< 0.001" if test.p < 0.001 else f"{test.p:.3f}"
    return [str(test.pairs), mean, f"{test.t:.2f}", p]


def _coverage(table: Table) -> list[str]:
    lines = []
    for task in table.tasks:
        for variant in table.variants:
            cell = table.cells[(variant, task)]
            if cell.complete:
                continue
            if not cell.runs and not cell.unfinished_seeds:
                lines.append(f"- {variant} × {task}: no runs (expected seeds {_seeds(cell.expected_seeds)})")
                continue
            parts = [f"{len(cell.seeds)} of {len(cell.expected_seeds)} seeds finished"]
            if cell.missing_seeds:
                parts.append(f"no run for seed {_seeds(cell.missing_seeds)}")
            if cell.unfinished_seeds:
                parts.append(f"seed {_seeds(cell.unfinished_seeds)} unfinished")
            for selection in SELECTIONS:
                if cell.undefined_seeds[selection]:
                    parts.append(f"{selection}-epoch score undefined (NaN) for seed {_seeds(cell.undefined_seeds[selection])}")
            lines.append(f"- {variant} × {task}: " + "; ".join(parts))
    return lines


def _seeds(seeds) -> str:
    return ", ".join(str(s) for s in seeds)


def _render_not_counted(runs: list[Run], broken: list[BrokenRun]) -> list[str]:
    unfinished = [r for r in runs if not r.finished]
    if not unfinished and not broken:
        return []
    lines = ["## Runs not counted in the tables", "", _md_row(["run folder", "why"]), _md_row(["---", "---"])]
    for run in unfinished:
        lines.append(_md_row([str(run.path), f"unfinished: status {run.status!r}, {len(run.history)} epoch(s) logged "
                              f"({run.student} {run.variant} on {run.task}, seed {run.seed})"]))
    for run in broken:
        lines.append(_md_row([str(run.path), run.reason]))
    return lines + [""]


def _render_run_list(runs: list[Run]) -> list[str]:
    finished = [r for r in runs if r.finished]
    if not finished:
        return []
    lines = ["## Finished runs", "", _md_row(["run folder", "student", "task", "variant", "seed", "best epoch", "best ×100", "last ×100", "seconds"])]
    lines.append(_md_row(["---"] * 9))
    for run in sorted(finished, key=lambda r: (r.student, r.task, r.variant, r.seed)):
        seconds = "" if run.seconds is None else f"{run.seconds:.0f}"
        lines.append(_md_row([str(run.path), run.student, run.task, run.variant, str(run.seed), str(run.best_epoch),
                              *_run_scores(run), seconds]))
    return lines + [""]


def _run_scores(run: Run) -> list[str]:
    """The best and last dev scores ×100; a generative run's dev loss as it is (or none without a validation split)."""
    if not declaration(run.objective).generative:
        return [f"{100 * run.score('best'):.1f}", f"{100 * run.score('last'):.1f}"]
    if not run.metric:
        return ["no dev split", "no dev split"]
    return [f"{run.metric} {run.score(s):.3f}" for s in SELECTIONS]


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


# --- csv --------------------------------------------------------------------------------------

def _write_csv(tables: list[Table], path: Path) -> None:
    """One row per (student, epoch selection, variant); per task: mean, sd, max over seeds, n, delta,
    delta sd, paired seeds, all ×100 and empty where there is nothing; then the variant's t-test."""
    tasks = sorted({t for table in tables for t in table.tasks})
    columns = ["student", "epoch", "variant"]
    for task in tasks:
        columns += [f"{task} {part}" for part in ("metric", "mean", "sd", "max", "seeds", "expected seeds", "delta", "delta sd", "paired seeds")]
    columns += ["t-test pairs", "t", "p"]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for table in tables:
            for selection in SELECTIONS:
                for variant in table.variants:
                    row = [table.student, selection, variant]
                    for task in tasks:
                        cell = table.cells.get((variant, task))
                        if cell is None:
                            row += [""] * 9
                            continue
                        s, d = cell.summary[selection], cell.delta.get(selection)
                        row += [
                            table.metrics[task], _num(s and 100 * s.mean), _num(s and 100 * s.sd), _num(s and 100 * s.max),
                            s.n if s else 0, len(cell.expected_seeds),
                            _num(d and 100 * d.mean), _num(d and 100 * d.sd), d.pairs if d else "",
                        ]
                    test = table.tests.get((selection, variant))
                    row += [test.pairs, _num(test.t), _num(test.p)] if test else ["", "", ""]
                    writer.writerow(row)


def _num(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}"
