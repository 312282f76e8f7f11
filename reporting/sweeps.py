"""`armada report --analysis` across runs that differ in their settings (each run's [distill] settings):

- the OLS ANOVA of the improvement over undistilled on α, β, γ and the manifold loss (paper
  Figures 3, 5 and 6), fitted without and with the seed as a block, with the improvements drawn per
  level as Figure 3 draws them;
- the sensitivity of the student and of the TS Aligner to noise on the teacher's inputs (Figure 11).

Both read each run's best-epoch dev score (the paper's selection); no model is loaded.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from armada.reporting.anova import ols_anova
from armada.reporting.paper_measures import sensitivity
from armada.reporting.runs import Run
from armada.reporting.tables import Table
from armada.run_schema import RunFolder, UnreadableRecord

FACTORS = {"alpha": "α", "beta": "β", "gamma": "γ", "manifold": "manifold loss"}
ANOVA_FITS = {"factors": "Without a block (the factors alone, as the paper describes its ANOVA)",
              "seed block": "With the seed as a block (the seed's own row is not a test of the method)"}
# Settings every run of one variant differs in, or that the runs compared here differ in by design
PER_RUN = ("seed",)


def distill_settings(run: Run) -> dict | None:
    """The run's resolved [distill] settings; None where it has none to read."""
    try:
        settings = RunFolder(run.path).read_settings()
    except (OSError, UnreadableRecord):
        return None
    return None if settings is None else dict(settings.distill)


def is_plain_armada(settings: dict) -> bool:
    """A distilled run with a trained aligner on clean teacher vectors: not one of the other ablations
    (the frozen aligner of Figure 9, the teacher noise of Figure 10), which the ANOVA leaves out."""
    return settings.get("aligner", "trained") == "trained" and not settings.get("teacher_noise", 0.0)


# --- the ANOVA over α, β, γ and the manifold loss -------------------------------------------------

@dataclass(frozen=True)
class Improvement:
    task: str
    variant: str
    seed: int
    levels: dict            # factor → its value in this run
    others: dict            # the run's other settings, to find what else differs
    points: float           # (score − undistilled score) × 100
    paired: bool            # against the undistilled run of the same seed (else the undistilled mean)


def improvements(table: Table) -> tuple[list[Improvement], list[str]]:
    """Every plain ARMADA run's best-epoch improvement over undistilled: "the margin (referred as
    improvement) between the undistilled and [the student] distilled with ARMADA" (Figure 3), taken
    seed by seed where the undistilled run of that seed finished."""
    if table.baseline is None:
        return [], ["no undistilled runs: no improvement to measure"]
    found, notes = [], []
    for task in table.tasks:
        base = table.cells[(table.baseline, task)].scores.get("best", {})
        if not base:
            notes.append(f"{task}: no finished undistilled run with a defined score: its runs are left out")
            continue
        for variant in table.variants:
            if variant == table.baseline:
                continue
            cell = table.cells[(variant, task)]
            for run in cell.runs:
                settings = distill_settings(run)
                score = cell.scores["best"].get(run.seed)
                if settings is None:
                    notes.append(f"{run.path}: no readable settings: they are unknown, so it is left out")
                elif is_plain_armada(settings) and score is not None:
                    paired = run.seed in base
                    reference = base[run.seed] if paired else float(np.mean(list(base.values())))
                    levels = {f: settings.get(f) for f in FACTORS}
                    others = {k: v for k, v in settings.items() if k not in FACTORS and k not in PER_RUN}
                    found.append(Improvement(task, variant, run.seed, levels, others, 100 * (score - reference), paired))
    return found, notes


def varying_factors(observations: list[Improvement]) -> list[str]:
    return [f for f in FACTORS if len({repr(o.levels[f]) for o in observations}) > 1]


def pooled_settings(observations: list[Improvement]) -> list[str]:
    """Settings besides the factors that differ between runs of one task: pooled over, not tested."""
    by_task = defaultdict(list)
    for o in observations:
        by_task[o.task].append(o.others)
    keys = set()
    for others in by_task.values():
        for key in set().union(*others):
            if len({repr(o.get(key)) for o in others}) > 1:
                keys.add(key)
    return sorted(keys)


def anova_section(tables: list[Table], out: Path) -> tuple[str, list[Path], list[Path]]:
    """The markdown, the CSVs (anova.csv, anova-improvements.csv) and the improvement figures."""
    from armada.files import file_slug

    lines = ["## Improvement over undistilled by α, β, γ and manifold loss: OLS ANOVA (paper Figures 3, 5, 6)", "",
             "Improvement = best-epoch dev score − the undistilled run's of the same seed (×100; against the undistilled "
             "mean where that seed did not finish: \"unpaired\"), for every distilled run with a trained aligner and clean "
             "teacher vectors (the frozen-aligner and teacher-noise ablations are analysed on their own). Factors: the "
             "settings among α, β, γ and the manifold loss that take more than one value. Additive OLS model "
             "(statsmodels: ols, anova_lm(typ=2)), each factor's sum of squares the rise in the residual when it alone "
             "is dropped (Type II); the paper: \"A two-way ANOVA using ordinary least square (OLS) regression model\" "
             "(Figure 5). Fitted twice: on the factors alone, as the paper describes, and with the seed as a block, "
             "since runs of one seed share their data order and initialisation and so their improvements move "
             "together; the second is the test to read.", ""]
    table_rows, observation_rows, figures = [], [], []
    for table in tables:
        observations, notes = improvements(table)
        factors = varying_factors(observations)
        lines += [f"### {table.student}", ""] + [f"- {note}" for note in notes]
        if not factors:
            lines += [f"{len(observations)} distilled run(s) with an undistilled baseline; none of α, β, γ and the "
                      "manifold loss takes two values among them: nothing to test.", ""]
            continue
        unpaired = sum(not o.paired for o in observations)
        lines.append(f"{len(observations)} runs on {len({o.task for o in observations})} task(s)"
                     f"{f', {unpaired} unpaired' if unpaired else ''}.")
        pooled = pooled_settings(observations)
        if pooled:
            lines.append(f"Pooled over (these differ between runs of a task, and are not factors): {', '.join(pooled)}.")
        lines += ["", "| factor | level | runs | mean improvement | median |", "| --- | --- | --- | --- | --- |"]
        for factor in factors:
            for level, values in _by_level(observations, factor):
                lines.append(f"| {FACTORS[factor]} | {level} | {len(values)} | {np.mean(values):+.2f} | {np.median(values):+.2f} |")
        lines.append("")
        y = [o.points for o in observations]
        levels = {f: [o.levels[f] for o in observations] for f in factors}
        seeds = [o.seed for o in observations]
        for fit, block in (("factors", None), ("seed block", ("seed", seeds))):
            lines += [f"{ANOVA_FITS[fit]}:", ""]
            if block is not None and len(set(seeds)) < 2:
                lines += ["Not fitted: every run has the same seed, so there is no block to take out.", ""]
                continue
            try:
                rows = ols_anova(y, levels, block)
            except ValueError as e:
                lines += [f"ANOVA not computed: {e}.", ""]
                continue
            lines += ["| source | df | sum of squares | F | p |", "| --- | --- | --- | --- | --- |"]
            lines += [f"| {FACTORS.get(r.source, r.source)} | {r.df} | {r.sum_sq:.3f} | {_fmt(r.f, '.2f')} | {_p(r.p)} |"
                      for r in rows]
            lines.append("")
            table_rows += [[table.student, fit, r.source, r.df, f"{r.sum_sq:.6g}", _csv(r.f), _csv(r.p)] for r in rows]
        observation_rows += [[table.student, o.task, o.variant, o.seed, *(o.levels[f] for f in FACTORS), f"{o.points:.6g}",
                              o.paired] for o in observations]
        figure = plot_improvements(observations, factors, out / f"improvement-by-setting-{file_slug(table.student)}.png")
        figures.append(figure)
        lines += [f"![{figure.stem}]({figure.name})", ""]
    csvs = [_write_csv(out / "anova.csv", ["student", "fit", "source", "df", "sum_sq", "F", "p"], table_rows),
            _write_csv(out / "anova-improvements.csv",
                       ["student", "task", "variant", "seed", *FACTORS, "improvement", "paired"], observation_rows)]
    return "\n".join(lines), csvs, figures


def _by_level(observations: list[Improvement], factor: str) -> list[tuple[object, list[float]]]:
    groups = defaultdict(list)
    for o in observations:
        groups[o.levels[factor]].append(o.points)
    return sorted(groups.items(), key=lambda item: repr(item[0]))


def plot_improvements(observations: list[Improvement], factors: list[str], path: Path) -> Path:
    """One panel per factor, a box of the improvements per level, every run a dot (Figure 3's layout)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(factors), figsize=(3.6 * len(factors), 3.6), squeeze=False)
    for ax, factor in zip(axes[0], factors):
        groups = _by_level(observations, factor)
        ax.boxplot([values for _, values in groups], widths=0.5)
        for i, (_, values) in enumerate(groups, 1):
            ax.scatter(np.full(len(values), i) + np.linspace(-0.08, 0.08, len(values)), values, s=12, alpha=0.7)
        ax.set_xticks(range(1, len(groups) + 1), [str(level) for level, _ in groups])
        ax.axhline(0, color="0.6", linewidth=0.8, linestyle="--")
        ax.set_xlabel(FACTORS[factor])
        ax.set_ylabel("improvement over undistilled (×100)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- sensitivity to teacher-input noise --------------------------------------------------------

@dataclass(frozen=True)
class NoiseSeries:
    task: str
    variants: tuple[str, ...]           # the variants of the series, by σ
    sigmas: tuple[float, ...]
    seeds: tuple[int, ...]              # finished runs per σ
    student: tuple[float, ...]          # mean best-epoch dev score per σ (×100)
    aligner: tuple[float, ...]          # the aligner's at the same epochs (NaN where not recorded)

    @property
    def student_sensitivity(self) -> float:
        return sensitivity(self.sigmas, self.student)

    @property
    def aligner_sensitivity(self) -> float:
        return math.nan if any(math.isnan(a) for a in self.aligner) else sensitivity(self.sigmas, self.aligner)


def noise_series(table: Table) -> list[NoiseSeries]:
    """Distilled runs of one task that differ in teacher_noise alone, grouped; a group with two σ or more is a series."""
    series = []
    for task in table.tasks:
        groups = defaultdict(lambda: defaultdict(list))     # other settings → σ → [(variant, run)]
        for variant in table.variants:
            for run in table.cells[(variant, task)].runs:
                settings = distill_settings(run)
                if not settings or settings.get("undistilled"):
                    continue
                key = repr(sorted((k, v) for k, v in settings.items() if k not in ("teacher_noise", *PER_RUN)))
                groups[key][float(settings.get("teacher_noise", 0.0))].append((variant, run))
        for by_sigma in groups.values():
            if len(by_sigma) < 2:
                continue
            sigmas = tuple(sorted(by_sigma))
            runs = [by_sigma[s] for s in sigmas]
            series.append(NoiseSeries(
                task, tuple(dict.fromkeys(v for s in sigmas for v, _ in by_sigma[s])), sigmas, tuple(len(r) for r in runs),
                tuple(100 * float(np.mean([run.score("best") for _, run in r])) for r in runs),
                tuple(100 * _mean_or_nan([run.aligner_score() for _, run in r]) for r in runs)))
    return series


def _mean_or_nan(values) -> float:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else math.nan


def sensitivity_section(tables: list[Table], out: Path) -> tuple[str, list[Path]]:
    """The markdown and sensitivity.csv; empty where no runs differ in teacher noise alone."""
    rows, csv_rows = [], []
    for table in tables:
        for s in noise_series(table):
            scores = " · ".join(f"σ={sigma:g}: {student:.1f} / {_fmt(aligner, '.1f')}"
                                for sigma, student, aligner in zip(s.sigmas, s.student, s.aligner))
            rows.append(f"| {table.student} | {s.task} | {', '.join(s.variants)} | {scores} | "
                        f"{_fmt(s.student_sensitivity, '.3f')} | {_fmt(s.aligner_sensitivity, '.3f')} |")
            csv_rows += [[table.student, s.task, " ".join(s.variants), sigma, seeds, f"{student:.6g}", _csv(aligner),
                          _csv(s.student_sensitivity), _csv(s.aligner_sensitivity)]
                         for sigma, seeds, student, aligner in zip(s.sigmas, s.seeds, s.student, s.aligner)]
    if not rows:
        return "", []
    lines = ["## Sensitivity to teacher-input noise (paper Figure 11)", "",
             "Runs that differ only in σ, the sd of the Gaussian noise on the aligner's inputs. Per σ: the student's and "
             "the TS Aligner's best-epoch dev score (×100, mean over seeds). The paper: \"a sensitivity score defined "
             "as Var(performance) / Var(σ)\", over the σ of a series (both variances taken alike, so the ratio does "
             "not depend on how they are normalised).", "",
             "| student | task | variants | score student / aligner | sensitivity student | sensitivity aligner |",
             "| --- | --- | --- | --- | --- | --- |", *rows, ""]
    path = _write_csv(out / "sensitivity.csv", ["student", "task", "variants", "sigma", "seeds", "student_score",
                                                "aligner_score", "student_sensitivity", "aligner_sensitivity"], csv_rows)
    return "\n".join(lines), [path]


# --- formatting ----------------------------------------------------------------------------------

def _fmt(value: float, spec: str) -> str:
    return "n/a" if math.isnan(value) else "∞" if math.isinf(value) else format(value, spec)


def _p(p: float) -> str:
    return "n/a" if math.isnan(p) else "< 0.001" if p < 0.001 else f"{p:.3f}"


def _csv(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.6g}"


def _write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path

