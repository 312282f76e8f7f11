"""What the report's t-test pairs (issue 26): one value per trained model, also for a generative model scored on
several sets; and over several tasks, a second test of the differences in units of each task's undistilled spread."""

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from armada.reporting.runs import EpochScores, Run
from armada.reporting.tables import build_tables
from armada.run_schema import GenerationRecord

SETS = ("instruct/dolly-test", "instruct/sinst", "instruct/vicuna")


def generative(variant: str, seed: int, scores: list[float]) -> Run:
    evaluations = tuple(GenerationRecord(f"runs/{variant}/{seed}", name, "test", "rougeL", {"rougeL": score}, 10)
                        for name, score in zip(SETS, scores))
    return Run(Path(f"runs/{variant}/{seed}"), "instruct/dolly", "smollm2", variant, variant == "undistilled", seed,
               "lm_loss", "finished", 1, (EpochScores(1, {"lm_loss": 2.0}),), 1.0, objective="lm", evaluations=evaluations)


def classifier(task: str, variant: str, seed: int, score: float) -> Run:
    return Run(Path(f"runs/{task}/{variant}/{seed}"), task, "minilm", variant, variant == "undistilled", seed, "accuracy",
               "finished", 1, (EpochScores(1, {"accuracy": score}),), 1.0)


def test_a_generative_model_scored_on_three_sets_is_one_pair_not_three():
    base = {0: [0.20, 0.30, 0.10], 1: [0.22, 0.26, 0.12], 2: [0.18, 0.35, 0.16]}
    ours = {0: [0.25, 0.28, 0.13], 1: [0.21, 0.30, 0.15], 2: [0.20, 0.33, 0.11]}
    runs = [generative("undistilled", s, v) for s, v in base.items()] + [generative("armada", s, v) for s, v in ours.items()]
    (table,) = build_tables(runs)
    test = table.tests[("best", "armada")]
    # One value per model: the mean over its three sets; differences 0.02, 0.02, −0.05/3 (by hand: means 0.2 → 0.22,
    # 0.2 → 0.22, 0.23 → 0.2133…)
    differences = [np.mean(ours[s]) - np.mean(base[s]) for s in (0, 1, 2)]
    assert differences == pytest.approx([0.02, 0.02, -0.05 / 3])
    assert test.pairs == 3
    assert test.mean_difference == pytest.approx(np.mean(differences))
    expected = scipy_stats.ttest_1samp(differences, 0.0, alternative="greater")
    assert (test.t, test.p) == (pytest.approx(expected.statistic), pytest.approx(expected.pvalue))
    assert ("best", "armada") not in table.standardised      # one trained task: nothing to standardise across


def test_pooling_over_tasks_standardises_each_tasks_differences_by_its_undistilled_spread():
    # CoLA-like: wide undistilled spread (sd 0.1), differences +0.05 each; RTE-like: sd 0.01, differences −0.01 each.
    base = {"glue/cola": [0.20, 0.30, 0.40], "glue/rte": [0.60, 0.61, 0.62]}
    delta = {"glue/cola": [0.05, 0.06, 0.04], "glue/rte": [-0.01, -0.012, -0.008]}
    runs = [classifier(t, "undistilled", s, v) for t, vs in base.items() for s, v in enumerate(vs)]
    runs += [classifier(t, "armada", s, base[t][s] + d) for t, ds in delta.items() for s, d in enumerate(ds)]
    (table,) = build_tables(runs)
    raw, standard = table.tests[("best", "armada")], table.standardised[("best", "armada")]
    assert raw.pairs == standard.pairs == 6
    # In sds: CoLA 0.5, 0.6, 0.4 (sd 0.1); RTE −1.0, −1.2, −0.8 (sd 0.01)
    units = [0.5, 0.6, 0.4, -1.0, -1.2, -0.8]
    assert standard.mean_difference == pytest.approx(np.mean(units))
    expected = scipy_stats.ttest_1samp(units, 0.0, alternative="greater")
    assert (standard.t, standard.p) == (pytest.approx(expected.statistic), pytest.approx(expected.pvalue))
    assert raw.mean_difference == pytest.approx(np.mean([0.05, 0.06, 0.04, -0.01, -0.012, -0.008]))


def test_a_task_whose_undistilled_seeds_do_not_spread_is_left_out_of_the_standardised_test_and_named():
    runs = [classifier("glue/cola", "undistilled", s, 0.3) for s in range(3)]
    runs += [classifier("glue/rte", "undistilled", s, 0.6 + s / 100) for s in range(3)]
    runs += [classifier(t, "armada", s, 0.5 + s / 50) for t in ("glue/cola", "glue/rte") for s in range(3)]
    (table,) = build_tables(runs)
    assert table.standardised[("best", "armada")].pairs == 3
    assert any(note.startswith("glue/cola: its undistilled seeds have no spread") for note in table.standardised_notes)
    assert not math.isnan(table.standardised[("best", "armada")].t)
