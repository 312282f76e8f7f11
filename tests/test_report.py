"""`armada report` on run folders written in the distill stage's format with made-up dev scores:
the numbers in the tables, the t-test, missing and unfinished runs said clearly, and the figures."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from armada.errors import ArmadaError
from armada.reporting.results import write_report

METRICS = {"glue/cola": "mcc", "glue/rte": "accuracy", "glue/stsb": "pearson"}


def write_run(root: Path, task: str, variant: str, seed: int, curve: list[float], *, status: str = "finished",
              student: str = "minilm-l6", name: str | None = None, with_variant: bool = True, manifold: str = "euclid",
              aligner: list[float] | None = None, aligner_best_epoch: int | None = None,
              frozen_aligner: bool = False) -> Path:
    """A run folder as armada distill writes it; `curve` is the primary dev score per epoch."""
    path = root / (name or f"{task.replace('/', '-')}-{variant}-s{seed}")
    path.mkdir(parents=True)
    metric = METRICS[task]
    undistilled = variant == "undistilled"
    best = max(range(len(curve)), key=lambda i: (curve[i], -i)) + 1
    info = {
        "task": task, "student": student, "undistilled": undistilled, "seed": seed, "metric": metric,
        "best_epoch": best, "best_dev": curve[best - 1], "epochs": len(curve), "status": status,
        "seconds": 12.5 * len(curve), "processes": 1, "cache": None if undistilled else {"path": "cache/x.zarr"},
        "versions": {"torch": "2.13.0"},
    }
    if with_variant:
        info["variant"] = variant
    if aligner_best_epoch is not None:
        info["aligner_best_epoch"] = aligner_best_epoch
    (path / "run.json").write_text(json.dumps(info))
    lines = [json.dumps({"epoch": e, "train": {"task": 0.5}, "dev": {metric: score},
                         "aligner_dev": {metric: aligner[e - 1]} if aligner else None, "seconds": 12.5})
             for e, score in enumerate(curve, 1)]
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (path / "config.toml").write_text(f'[distill]\nundistilled = {str(undistilled).lower()}\nmanifold = "{manifold}"\n'
                                      + ('aligner = "frozen-random"\n' if frozen_aligner else ""))
    return path


def full_grid(root: Path) -> dict:
    """Two tasks × undistilled/armada-euclid × 3 seeds; returns the best and last scores written."""
    rng = np.random.default_rng(0)
    written = {}
    for task in ("glue/cola", "glue/rte"):
        for seed in range(3):
            base = 0.4 + 0.05 * seed + (0.1 if task == "glue/rte" else 0)
            for variant, lift in (("undistilled", 0.0), ("armada-euclid", 0.02 + 0.01 * seed)):
                curve = [base + lift - 0.1, base + lift + float(rng.uniform(0, 0.01)), base + lift - 0.03]
                write_run(root, task, variant, seed, curve)
                written[(task, variant, seed)] = (max(curve), curve[-1])
    return written


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_tables_hold_mean_sd_delta_and_the_t_test_at_best_and_last_epoch(tmp_path):
    written = full_grid(tmp_path / "runs")
    files = write_report([tmp_path / "runs"], tmp_path / "report")
    text = files.markdown.read_text()
    rows = {(r["epoch"], r["variant"]): r for r in read_csv(files.csv)}

    for pick, selection in ((0, "best"), (1, "last")):
        for task in ("glue/cola", "glue/rte"):
            base = [written[(task, "undistilled", s)][pick] for s in range(3)]
            ours = [written[(task, "armada-euclid", s)][pick] for s in range(3)]
            row = rows[(selection, "armada-euclid")]
            assert float(row[f"{task} mean"]) == pytest.approx(100 * np.mean(ours), abs=1e-3)
            assert float(row[f"{task} sd"]) == pytest.approx(100 * np.std(ours, ddof=1), abs=1e-3)
            differences = np.subtract(ours, base)
            assert float(row[f"{task} delta"]) == pytest.approx(100 * differences.mean(), abs=1e-3)
            assert float(row[f"{task} delta sd"]) == pytest.approx(100 * differences.std(ddof=1), abs=1e-3)
            assert row[f"{task} seeds"] == "3" and row[f"{task} paired seeds"] == "3"
            assert float(row[f"{task} max"]) == pytest.approx(100 * max(ours), abs=1e-3)
            if selection == "best":     # the paper's Table 2 form: the best seed, Δ between maxima
                maxima = text.split("### Best seed at its best epoch")[1].split("###")[0]
                assert f"{100 * max(ours):.1f}, Δ {100 * (max(ours) - max(base)):+.1f}" in maxima
            cell = f"{100 * np.mean(ours):.1f} ± {100 * np.std(ours, ddof=1):.1f}, Δ {100 * differences.mean():+.1f} ± {100 * differences.std(ddof=1):.1f} (n=3)"
            assert cell in text
        pairs = [(t, s) for t in ("glue/cola", "glue/rte") for s in range(3)]
        expected = scipy_stats.ttest_rel([written[(t, "armada-euclid", s)][pick] for t, s in pairs],
                                         [written[(t, "undistilled", s)][pick] for t, s in pairs], alternative="greater")
        row = rows[(selection, "armada-euclid")]
        assert row["t-test pairs"] == "6"
        assert float(row["t"]) == pytest.approx(expected.statistic, rel=1e-4)
        assert float(row["p"]) == pytest.approx(expected.pvalue, rel=1e-4)
        assert f"| armada-euclid | 6 |" in text and f"{expected.statistic:.2f}" in text
        assert rows[(selection, "undistilled")]["t"] == ""

    assert text.index("### Best epoch") < text.index("### Last epoch")
    assert "glue/cola (mcc)" in text and "glue/rte (accuracy)" in text
    assert "Every cell has every seed of its task." in text
    # the undistilled row comes first, and best-epoch scores differ from last-epoch ones
    best_table = text.split("### Best epoch")[1].split("###")[0]
    assert best_table.index("| undistilled |") < best_table.index("| armada-euclid |")
    assert rows[("best", "undistilled")]["glue/cola mean"] != rows[("last", "undistilled")]["glue/cola mean"]


def test_missing_seeds_missing_runs_and_unfinished_runs_are_said_not_averaged(tmp_path):
    runs = tmp_path / "runs"
    for seed in range(3):
        write_run(runs, "glue/cola", "undistilled", seed, [0.40 + 0.01 * seed, 0.45 + 0.01 * seed])
        write_run(runs, "glue/rte", "undistilled", seed, [0.55, 0.60])
    write_run(runs, "glue/cola", "armada-euclid", 0, [0.50, 0.52])
    write_run(runs, "glue/cola", "armada-euclid", 1, [0.50, 0.54])
    write_run(runs, "glue/cola", "armada-euclid", 2, [0.10], status="running")   # must not pull the mean down
    write_run(runs, "glue/rte", "armada-cosine", 0, [0.62, 0.63])
    half = runs / "glue-rte-armada-cosine-s1"            # killed before writing run.json
    half.mkdir()
    (half / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "dev": {"accuracy": 0.6}}) + "\n")
    broken = runs / "broken"
    broken.mkdir()
    (broken / "run.json").write_text("{not json")

    files = write_report([runs], tmp_path / "report")
    text = files.markdown.read_text()
    best = text.split("### Best epoch")[1].split("###")[0]
    euclid_row = next(line for line in best.splitlines() if line.startswith("| armada-euclid |"))
    # seeds 0 and 1 only: best 0.52 and 0.54, paired against 0.45 and 0.46
    assert "53.0 ± 1.4, Δ +7.5 ± 0.7 (2 of 3 seeds)" in euclid_row
    assert euclid_row.rstrip(" |").endswith("no runs")           # nothing on glue/rte
    cosine_row = next(line for line in best.splitlines() if line.startswith("| armada-cosine |"))
    assert "no runs" in cosine_row and "63.0, Δ +3.0 (1 of 3 seeds)" in cosine_row
    assert "- armada-euclid × glue/cola: 2 of 3 seeds finished; seed 2 unfinished" in text
    assert "- armada-euclid × glue/rte: no runs (expected seeds 0, 1, 2)" in text
    assert "- armada-cosine × glue/cola: no runs" in text
    assert "- armada-cosine × glue/rte: 1 of 3 seeds finished; no run for seed 1, 2" in text
    not_counted = text.split("## Runs not counted in the tables")[1]
    assert "glue-cola-armada-euclid-s2" in not_counted and "unfinished: status 'running'" in not_counted
    assert "glue-rte-armada-cosine-s1" in not_counted and "no run.json yet" in not_counted
    assert "broken" in not_counted and "not valid JSON" in not_counted
    assert "9 finished run(s), 3 more not counted" in text
    # the t-test of armada-cosine has one pair: said, not computed
    assert "n/a: 1 paired cell(s): the test needs at least 2" in text
    rows = {(r["epoch"], r["variant"]): r for r in read_csv(files.csv)}
    assert rows[("best", "armada-euclid")]["glue/cola seeds"] == "2"
    assert rows[("best", "armada-euclid")]["glue/cola expected seeds"] == "3"
    assert rows[("best", "armada-euclid")]["glue/rte mean"] == ""
    assert rows[("best", "armada-cosine")]["t"] == ""


def test_variant_names_fall_back_to_config_and_rows_follow_the_papers_order(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "glue/rte", "noise-10", 0, [0.5], name="n10")
    write_run(runs, "glue/rte", "noise-2", 0, [0.5], name="n2")
    write_run(runs, "glue/rte", "armada-elementwise", 0, [0.5], name="el")
    write_run(runs, "glue/rte", "undistilled", 0, [0.5], name="base", with_variant=False)
    write_run(runs, "glue/rte", "ignored", 0, [0.6], name="cos", with_variant=False, manifold="cosine")
    write_run(runs, "glue/rte", "armada-euclid", 0, [0.5], name="eu")
    text = write_report([runs], tmp_path / "report").markdown.read_text()
    table = text.split("### Best epoch")[1].split("\n\n")[1]      # the scores table, before the t-tests
    order = [line.split("|")[1].strip() for line in table.splitlines()[2:]]
    assert order == ["undistilled", "armada-cosine", "armada-euclid", "armada-elementwise", "noise-2", "noise-10"]


def test_no_undistilled_runs_gives_scores_without_deltas(tmp_path):
    write_run(tmp_path / "runs", "glue/cola", "armada-euclid", 0, [0.3, 0.4])
    write_run(tmp_path / "runs", "glue/cola", "armada-euclid", 1, [0.3, 0.5])
    files = write_report([tmp_path / "runs"], tmp_path / "report")
    text = files.markdown.read_text()
    assert "Note: no undistilled runs: no deltas and no t-tests." in text
    assert "45.0 ± 7.1 (n=2)" in text and "Δ" not in text.split("## Student")[1].split("### Coverage")[0]
    assert [p.name for p in files.figures] == ["curves-minilm-l6.png"]


def test_students_get_separate_tables(tmp_path):
    for student in ("minilm-l6", "bert-6l"):
        write_run(tmp_path / "runs", "glue/rte", "undistilled", 0, [0.5], student=student, name=f"{student}-u")
        write_run(tmp_path / "runs", "glue/rte", "armada-euclid", 0, [0.6], student=student, name=f"{student}-e")
    files = write_report([tmp_path / "runs" / "minilm-l6-u", tmp_path / "runs"], tmp_path / "report")
    text = files.markdown.read_text()
    assert "## Student: bert-6l" in text and "## Student: minilm-l6" in text
    assert {p.name for p in files.figures} == {f"{kind}-{s}.png" for kind in ("deltas", "curves") for s in ("minilm-l6", "bert-6l")}


def test_undefined_scores_are_reported_as_undefined(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "glue/stsb", "undistilled", 0, [0.80, 0.85])
    write_run(runs, "glue/stsb", "undistilled", 1, [0.81, 0.86])
    write_run(runs, "glue/stsb", "armada-euclid", 0, [0.82, 0.88])
    collapsed = write_run(runs, "glue/stsb", "armada-euclid", 1, [0.5, 0.5])
    (collapsed / "metrics.jsonl").write_text("\n".join(json.dumps({"epoch": e, "dev": {"pearson": None}}) for e in (1, 2)) + "\n")
    text = write_report([runs], tmp_path / "report").markdown.read_text()
    assert "88.0, Δ +3.0 (1 of 2 seeds)" in text
    assert "best-epoch score undefined (NaN) for seed 1" in text


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(ArmadaError, match="no such run folder"):
        write_report([tmp_path / "nowhere"], tmp_path / "report")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArmadaError, match="no run folders"):
        write_report([tmp_path / "empty"], tmp_path / "report")
    write_run(tmp_path / "a", "glue/rte", "undistilled", 0, [0.5])
    write_run(tmp_path / "b", "glue/rte", "undistilled", 0, [0.6])
    with pytest.raises(ArmadaError, match="two finished runs of minilm-l6 undistilled on glue/rte with seed 0"):
        write_report([tmp_path / "a", tmp_path / "b"], tmp_path / "report")


def test_figures_are_png_files_with_content(tmp_path):
    full_grid(tmp_path / "runs")
    write_run(tmp_path / "runs", "glue/cola", "armada-cosine", 0, [0.3, 0.5, 0.45])
    files = write_report([tmp_path / "runs"], tmp_path / "report")
    import matplotlib.image

    assert sorted(p.name for p in files.figures) == ["curves-minilm-l6.png", "deltas-minilm-l6.png"]
    for figure in files.figures:
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = matplotlib.image.imread(figure)
        assert pixels.shape[0] > 300 and pixels.shape[1] > 500
        assert pixels[..., :3].std() > 0.05      # not a blank canvas
        assert f"![{figure.stem}]({figure.name})" in files.markdown.read_text()


def test_report_command_through_the_cli(tmp_path):
    full_grid(tmp_path / "runs")
    armada = Path(sys.executable).parent / "armada"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run([armada, "report", tmp_path / "runs", "--out", tmp_path / "out"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "results.md" in done.stdout and (tmp_path / "out" / "results.csv").is_file()
    failed = subprocess.run([armada, "report", tmp_path / "nowhere"], capture_output=True, text=True, env=env)
    assert failed.returncode == 2
    assert failed.stderr.startswith("error: ") and "Traceback" not in failed.stderr
    helped = subprocess.run([armada, "report", "--help"], capture_output=True, text=True, env=env)
    assert "Example: armada report" in helped.stdout


def test_analysis_says_what_it_could_not_analyse_instead_of_failing(tmp_path, task_files):
    runs = tmp_path / "runs"
    write_run(runs, "glue/stsb", "undistilled", 0, [0.8])
    write_run(runs, "glue/rte", "undistilled", 0, [0.6])        # no student/ saved in it
    files = write_report([runs], tmp_path / "report", analysis=True, data_dir=str(task_files / "glue"))
    text = files.markdown.read_text()
    assert "- minilm-l6 on glue/stsb: not analysed: a regression task has no classes and no correctness" in text
    assert "- minilm-l6 undistilled on glue/rte: not analysed: " in text and "student" in text.split("glue/rte: not analysed: ")[1]
    assert files.analysis_csv.read_text().strip() == "student,task,variant,seed,examples,accuracy,silhouette_gold,silhouette_correct,purity,majority_share"


def test_the_aligner_alone_is_reported_at_each_runs_best_student_epoch(tmp_path):
    """The paper's Table 6: the TS Aligner scored from the teacher's vectors alone."""
    for seed, aligner in enumerate(([0.10, 0.30, 0.20], [0.20, 0.40, 0.90])):
        write_run(tmp_path / "runs", "glue/rte", "undistilled", seed, [0.5, 0.6, 0.55])
        write_run(tmp_path / "runs", "glue/rte", "armada-euclid", seed, [0.5, 0.7, 0.6], aligner=aligner)
    text = write_report([tmp_path / "runs"], tmp_path / "report").markdown.read_text()
    section = text.split("### TS Aligner alone (the paper's Table 6)")[1].split("###")[0]
    assert "| armada-euclid | 35.0 ± 7.1 (n=2) |" in section        # epoch 2 of each: 0.30 and 0.40
    assert "undistilled" not in section
    assert section.split("\n")[2].startswith("The aligner saved with each run's best student,")


def test_an_aligner_kept_at_its_own_best_epoch_is_reported_there_and_the_report_says_so(tmp_path):
    """The authors' recipe (aligner_kept = "own-best"): Table 6 reads the aligner's own best epoch, not the student's."""
    for seed, aligner in enumerate(([0.10, 0.30, 0.20], [0.20, 0.40, 0.90])):
        write_run(tmp_path / "runs", "glue/rte", "undistilled", seed, [0.5, 0.6, 0.55])
        write_run(tmp_path / "runs", "glue/rte", "armada-euclid", seed, [0.5, 0.7, 0.6], aligner=aligner,
                  aligner_best_epoch=1 + int(np.argmax(aligner)))
    text = write_report([tmp_path / "runs"], tmp_path / "report").markdown.read_text()
    section = text.split("### TS Aligner alone (the paper's Table 6)")[1].split("###")[0]
    assert "| armada-euclid | 60.0 ± 42.4 (n=2) |" in section       # 0.30 (epoch 2) and 0.90 (epoch 3)
    assert 'The aligner of its own best dev epoch (aligner_kept = "own-best"' in section
    write_run(tmp_path / "runs", "glue/rte", "armada-cosine", 0, [0.5, 0.7, 0.6], aligner=[0.1, 0.2, 0.3])
    section = write_report([tmp_path / "runs"], tmp_path / "report").markdown.read_text().split("Table 6)")[1]
    assert "own best dev epoch in 2 of the 3 runs" in section and "| armada-cosine | 20.0 (n=1) |" in section


def test_a_plan_makes_coverage_exact(tmp_path):
    """With the pipeline's plan, a variant kept off a task is not missing, and planned seeds never
    started are, even of a variant none of whose runs has started; tasks the plan does not name keep
    the seeds-that-ran rule."""
    runs = tmp_path / "runs"
    for seed in (0, 1, 2):
        write_run(runs, "glue/rte", "undistilled", seed, [0.5])
        write_run(runs, "glue/rte", "armada-euclid", seed, [0.5])
        write_run(runs, "glue/stsb", "undistilled", seed, [0.8])
    write_run(runs, "glue/cola", "undistilled", 0, [0.3])
    write_run(runs, "glue/cola", "undistilled", 1, [0.3])
    write_run(runs, "glue/cola", "teacher-noise-1", 0, [0.3])
    plan = {("undistilled", "glue/rte"): [0, 1, 2, 3, 4], ("armada-euclid", "glue/rte"): [0, 1, 2, 3, 4],
            ("undistilled", "glue/cola"): [0, 1], ("teacher-noise-1", "glue/cola"): [0], ("kd", "glue/rte"): [0, 1, 2]}
    files = write_report([runs], tmp_path / "report", plan=plan)
    text = files.markdown.read_text()
    coverage = text.split("### Coverage")[1].split("##")[0]
    assert "- kd × glue/rte: no runs (expected seeds 0, 1, 2)" in coverage    # planned, and not one run started
    assert "- undistilled × glue/rte: 3 of 5 seeds finished; no run for seed 3, 4" in coverage
    assert "teacher-noise-1 × glue/rte" not in coverage                # kept off RTE by the plan
    assert "teacher-noise-1 × glue/cola" not in coverage and "undistilled × glue/cola" not in coverage
    assert "- armada-euclid × glue/stsb: no runs (expected seeds 0, 1, 2)" in coverage   # STS-B: not in the plan
    best = text.split("### Best epoch")[1].split("###")[0]
    noise_row = next(line for line in best.splitlines() if line.startswith("| teacher-noise-1 |"))
    assert noise_row.split("|")[3].strip() == "–"                     # glue/rte (columns: cola, rte, stsb)
    rows = {(r["epoch"], r["variant"]): r for r in read_csv(files.csv)}
    assert rows[("best", "undistilled")]["glue/rte expected seeds"] == "5"


def test_the_loss_balance_shows_every_recorded_term_the_kd_term_too(tmp_path):
    """A KD run's epochs record {task, kd} shares, an ARMADA + KD run's five: the table and the figure show each."""
    shares = {"kd-alone": {"task": 0.3, "kd": 0.7},
              "armada-kd": {"task": 0.2, "soft": 0.05, "aux": 0.15, "manifold": 0.1, "kd": 0.5}}
    write_run(tmp_path / "runs", "glue/cola", "undistilled", 0, [0.2, 0.3])
    for variant, balance in shares.items():
        path = write_run(tmp_path / "runs", "glue/cola", variant, 0, [0.2, 0.3])
        lines = [{**json.loads(line), "balance": balance} for line in (path / "metrics.jsonl").read_text().splitlines()]
        (path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    files = write_report([tmp_path / "runs"], tmp_path / "out")
    text = files.markdown.read_text()
    assert "| kd-alone | task 0.30 · kd 0.70 |" in text
    assert "| armada-kd | task 0.20 · soft 0.05 · aux 0.15 · manifold 0.10 · kd 0.50 |" in text
    assert (tmp_path / "out" / "balance-minilm-l6.png").stat().st_size > 0


def test_a_report_while_every_generative_run_is_still_training_says_so(tmp_path):
    """`armada run` reports when its own share of the runs is done: where other processes are still training
    every generative run, nothing is scored yet, so there is no column to tabulate or draw."""
    run = write_run(tmp_path / "runs", "glue/rte", "undistilled", 0, [0.5], status="running")
    record = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**record, "objective": "lm", "metric": "lm_loss"}))
    files = write_report([tmp_path / "runs"], tmp_path / "report")
    text = files.markdown.read_text()
    assert "No run of this student has finished and been scored yet." in text
    assert not list((tmp_path / "report").glob("*.png"))
