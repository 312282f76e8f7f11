"""`armada report --analysis` over grids of run folders (made-up dev scores, no saved models): the
α/β/γ ANOVA of Figures 3, 5 and 6 and the teacher-noise sensitivity of Figure 11."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from armada.reporting.results import write_report

DEFAULTS = {"undistilled": False, "manifold": "euclid", "alpha": 0.5, "beta": 1.0, "gamma": 1.0, "aligner": "trained",
            "teacher_noise": 0.0, "epochs": 1}


def write_run(root: Path, variant: str, seed: int, score: float, aligner_score: float | None = None, **settings) -> Path:
    """A finished one-epoch glue/rte run folder with the [distill] settings config.toml holds."""
    path = root / f"{variant}-s{seed}"
    path.mkdir(parents=True)
    distill = {**DEFAULTS, **settings, "seed": seed}
    (path / "run.json").write_text(json.dumps({
        "task": "glue/rte", "student": "minilm-l6", "variant": variant, "undistilled": distill["undistilled"],
        "seed": seed, "metric": "accuracy", "best_epoch": 1, "status": "finished", "seconds": 1.0,
        "cache": None if distill["undistilled"] else {"path": str(root / "cache.zarr"), "config_hash": "x"}}))
    aligner = {"accuracy": aligner_score} if aligner_score is not None else None
    (path / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "dev": {"accuracy": score}, "aligner_dev": aligner}) + "\n")
    lines = ["[distill]"] + [f"{k} = {json.dumps(v)}" for k, v in distill.items()]
    (path / "config.toml").write_text("\n".join(lines) + "\n")
    return path


BASE = {0: 0.60, 1: 0.70}


def grid(root: Path) -> None:
    """α ∈ {0, 0.5} × β ∈ {0, 1} × γ ∈ {0, 1} (the paper's grid), 2 seeds. Improvement (points): +1 at α = 0,
    +2 at β = 1, none from γ, ±0.5 by seed. Balanced, so by hand: SS_α = 16·0.5² = 4, SS_β = 16·1² = 16,
    SS_γ = 0, residual 16·0.5² = 4 on 16 − 4 = 12 df: F_α = 12, F_β = 48, F_γ = 0."""
    for seed, base in BASE.items():
        write_run(root, "undistilled", seed, base, undistilled=True)
        for alpha in (0.0, 0.5):
            for beta in (0.0, 1.0):
                for gamma in (0.0, 1.0):
                    points = (alpha == 0) + 2 * beta + (0.5 if seed == 0 else -0.5)
                    write_run(root, f"a{alpha}-b{beta}-g{gamma}", seed, base + points / 100, aligner_score=0.5,
                              alpha=alpha, beta=beta, gamma=gamma)


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def report(tmp_path_factory, task_files):
    root = tmp_path_factory.mktemp("sweep")
    runs = root / "runs"
    grid(runs)
    for seed, base in BASE.items():                 # ablations the ANOVA leaves out; the noise series
        write_run(runs, "frozen", seed, base - 0.05, aligner="frozen-random")
        for sigma, drop in ((1.0, 0.01), (2.0, 0.04)):
            write_run(runs, f"noise{sigma:g}", seed, base + 0.03 - drop, aligner_score=0.5 - drop / 2, teacher_noise=sigma)
    return write_report([runs], root / "report", analysis=True, data_dir=str(task_files / "glue"))


def test_the_anova_section_tests_alpha_beta_gamma_against_hand_worked_numbers(report):
    text = report.markdown.read_text()
    section = text.split("## Improvement over undistilled by α, β, γ and manifold loss: OLS ANOVA")[1].split("\n## ")[0]
    assert "16 runs on 1 task(s)." in section      # the frozen-aligner and noisy runs are left out
    assert "| β | 1.0 | 8 | +2.50 | +2.50 |" in section      # 2 points, and α = 0's 1 point in half the runs
    fits = read_csv(report.markdown.parent / "anova.csv")
    rows = {r["source"]: r for r in fits if r["fit"] == "factors"}
    assert set(rows) == {"alpha", "beta", "gamma", "residual"}      # manifold takes one value: not a factor
    for source, sum_sq, f in (("alpha", 4, 12), ("beta", 16, 48), ("gamma", 0, 0)):
        assert int(rows[source]["df"]) == 1
        assert float(rows[source]["sum_sq"]) == pytest.approx(sum_sq, abs=1e-6)
        assert float(rows[source]["F"]) == pytest.approx(f, abs=1e-6)
        assert float(rows[source]["p"]) == pytest.approx(scipy_stats.f.sf(f, 1, 12), abs=1e-6)
    assert (int(rows["residual"]["df"]), float(rows["residual"]["sum_sq"])) == (12, pytest.approx(4))
    # With the seed as a block: the ±0.5 by seed was the whole residual (SS_seed = 16·0.5² = 4), so what is left
    # is rounding on 11 df and α and β are certain; γ moved nothing (SS 0), which no fit can test.
    blocked = {r["source"]: r for r in fits if r["fit"] == "seed block"}
    assert set(blocked) == {"alpha", "beta", "gamma", "seed", "residual"}
    assert float(blocked["seed"]["sum_sq"]) == pytest.approx(4, abs=1e-6)
    assert int(blocked["residual"]["df"]) == 11 and float(blocked["residual"]["sum_sq"]) == pytest.approx(0, abs=1e-9)
    assert (blocked["alpha"]["F"], blocked["alpha"]["p"]) == ("inf", "0")
    assert blocked["gamma"]["p"] == ""
    assert "With the seed as a block" in section and "| seed | 1 | 4.000 |" in section
    improvements = read_csv(report.markdown.parent / "anova-improvements.csv")
    assert len(improvements) == 16 and all(r["paired"] == "True" for r in improvements)
    assert any(p.name == "improvement-by-setting-minilm-l6.png" for p in report.figures)


def test_the_sensitivity_section_is_the_variance_ratio_over_sigma(report):
    text = report.markdown.read_text()
    assert "## Sensitivity to teacher-input noise (paper Figure 11)" in text
    rows = read_csv(report.markdown.parent / "sensitivity.csv")
    assert [float(r["sigma"]) for r in rows] == [0.0, 1.0, 2.0]
    assert rows[0]["variants"] == "a0.5-b1.0-g1.0 noise1 noise2"     # σ = 0 is the grid's default point
    # student per σ, mean of the two seeds ×100: σ = 0 is 65 + 2 points (β = 1), then 65 + 3 − 1 and 65 + 3 − 4
    student = np.array([67.0, 67.0, 64.0])
    sigmas = np.array([0.0, 1.0, 2.0])
    assert [float(r["student_score"]) for r in rows] == pytest.approx(student)
    assert float(rows[0]["student_sensitivity"]) == pytest.approx(np.var(student) / np.var(sigmas), rel=1e-5)
    aligner = np.array([50.0, 49.5, 48.0])
    assert float(rows[0]["aligner_sensitivity"]) == pytest.approx(np.var(aligner) / np.var(sigmas), rel=1e-5)


def test_model_analyses_say_why_runs_without_saved_students_are_not_analysed(report):
    text = report.markdown.read_text()
    for heading in ("## Auxiliary heads on dev (paper Table 10)", "## Silhouette by scenario (paper Table 13)",
                    "## Distances to class centroids (paper Table 14)", "## t-tests over per-example dev losses (paper Table 15)"):
        assert heading in text
    assert "Not analysed, a model could not be loaded (the last section says why): " in text
    scenario = text.split("## Silhouette by scenario (paper Table 13)")[1].split("\n## ")[0]
    assert "the comparison is circular" in scenario     # scenario 1 is chosen by the distilled student being right
    failures = text.split("## What the analyses could not load")[1]
    assert f"| student of {report.markdown.parent.parent / 'runs' / 'frozen-s0'} | " in failures
    assert "armada_heads.json is missing" in failures
