"""Several teachers in one pipeline: the plan, the config checks, and the report's teachers section."""

from __future__ import annotations

import pytest

from armada import config
from armada.errors import ArmadaError, ConfigError
from armada.eval.probe import ProbeResult, ProbeScore
from armada.pipeline import plan, planned_seeds
from armada.reporting.results import write_report
from test_report import write_run

PIPELINE = """
[run]
name = "t"
tasks = ["glue/rte"]
seeds = [0, 1]
[extract]
teachers = ["piper-whisper", "piper-whisper-base"]
[[variants]]
name = "undistilled"
undistilled = true
[[variants]]
name = "armada-euclid"
manifold = "euclid"
[[variants]]
name = "cosine-base-only"
manifold = "cosine"
teacher = "piper-whisper-base"
"""


def load(tmp_path, text):
    (tmp_path / "p.toml").write_text(text)
    return config.load(tmp_path / "p.toml")


def test_each_distilled_variant_runs_once_per_teacher_and_the_baseline_once(tmp_path):
    cfg = load(tmp_path, PIPELINE)
    runs = plan(cfg)
    assert sorted({(r.name, r.teacher) for r in runs}) == [
        ("armada-euclid@piper-whisper", "piper-whisper"), ("armada-euclid@piper-whisper-base", "piper-whisper-base"),
        ("cosine-base-only@piper-whisper-base", "piper-whisper-base"), ("undistilled", None)]
    assert runs[2].out.parts[-2:] == ("armada-euclid@piper-whisper", "seed-0")
    assert planned_seeds(runs)[("armada-euclid@piper-whisper-base", "glue/rte")] == [0, 1]
    assert cfg.extract.teacher == "piper-whisper"           # the first: what armada extract takes by default
    assert load(tmp_path, config.to_toml(config.to_dict(cfg))).digest() == cfg.digest()


def test_one_teacher_keeps_the_names_and_folders_it_always_had(tmp_path):
    cfg = load(tmp_path, PIPELINE.replace('teachers = ["piper-whisper", "piper-whisper-base"]', 'teacher = "sd14"')
               .replace('teacher = "piper-whisper-base"\n', ""))
    assert [r.name for r in plan(cfg)] == ["undistilled"] * 2 + ["armada-euclid"] * 2 + ["cosine-base-only"] * 2
    assert {r.teacher for r in plan(cfg)} == {None, "sd14"}


def test_a_teacher_outside_teachers_and_at_in_a_variant_name_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="is not among teachers"):
        load(tmp_path, PIPELINE.replace("[extract]\n", '[extract]\nteacher = "sd14"\n'))
    with pytest.raises(ConfigError, match="@ is kept"):
        load(tmp_path, PIPELINE.replace('name = "armada-euclid"', 'name = "a@b"'))


def probe(task: str, teacher: str, dev: float, interval: tuple[float, float]) -> ProbeResult:
    scores = (ProbeScore("teacher", dev, dev - 5, dev + 5, dev, *interval, 0.1),
              ProbeScore("student", 70.0, 65.0, 75.0, 71.0, 66.0, 76.0, 0.1),
              ProbeScore("shuffled", 50.0, 45.0, 55.0, 49.0, 44.0, 54.0, 0.1))
    return ProbeResult(task, "c.zarr", "h", teacher, 384, "minilm-l6", "accuracy", 52.0, 400, 300, 5, 0, 1.0, scores)


def test_the_report_puts_each_teachers_probe_aligner_and_delta_side_by_side(tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        write_run(runs, "glue/rte", "undistilled", seed, [0.5, 0.6])
        write_run(runs, "glue/rte", "armada-euclid@piper-whisper", seed, [0.5, 0.62 + 0.01 * seed], aligner=[0.5, 0.53])
        write_run(runs, "glue/rte", "armada-euclid@piper-whisper-base", seed, [0.5, 0.58], aligner=[0.5, 0.6])
    probe("glue/rte", "piper-whisper", 53.0, (47.0, 58.0)).write(runs / "glue_rte" / "probe--piper-whisper.json")
    probe("glue/rte", "piper-whisper-base", 61.0, (56.0, 66.0)).write(runs / "glue_rte" / "probe--piper-whisper-base.json")
    text = write_report([runs], tmp_path / "report").markdown.read_text()
    section = text.split("### Teachers: linear probes, TS Aligner alone, Δ")[1].split("\n### ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| glue/rte")]
    assert rows == [
        "| glue/rte | piper-whisper | 53.0 [47.0, 58.0], at chance (52.0) | 71.0 [66.0, 76.0] | 49.0 [44.0, 54.0], "
        "at chance (52.0) | armada-euclid | 53.0 ± 0.0 | +2.5 ± 0.7 | 0.063 |",
        "| glue/rte | piper-whisper-base | 61.0 [56.0, 66.0] | 71.0 [66.0, 76.0] | 49.0 [44.0, 54.0], at chance (52.0) "
        "| armada-euclid | 60.0 ± 0.0 | -2.0 ± 0.0 | – |"]


def test_the_report_sets_teachers_and_the_control_against_each_other_seed_by_seed(tmp_path):
    """Best and last epoch ×100 per seed: tiny 62 63 64 / 60 61 62, base 63 65 64 / 62 64 63, the control (the same
    settings, aligner never trained) 61 63 62. base − tiny: +1 +2 0 at the best epoch, t = 1/(1/√3) = √3 on 2 df, two-
    sided p = 1 − √3/√5 = 0.225 (df 2: P(T > t) = (1 − t/√(t² + 2))/2); at the last +2 +3 +1, t = 2√3, p = 1 − √12/√14
    = 0.074. tiny − control: +1 0 +2 at both epochs, p 0.225. base − control: +2 at each seed (+3 at the last), no
    variance, p undefined. Cosine has one teacher and another manifold: nothing to pair it with."""
    runs = tmp_path / "runs"
    for seed, (tiny, base, control) in enumerate([(0.62, 0.63, 0.61), (0.63, 0.65, 0.63), (0.64, 0.64, 0.62)]):
        write_run(runs, "glue/rte", "undistilled", seed, [0.5, 0.6])
        write_run(runs, "glue/rte", "euclid@piper-whisper", seed, [0.5, tiny, tiny - 0.02])
        write_run(runs, "glue/rte", "euclid@piper-whisper-base", seed, [0.5, base, base - 0.01])
        write_run(runs, "glue/rte", "cosine@piper-whisper", seed, [0.5, tiny], manifold="cosine")
        write_run(runs, "glue/rte", "random-aligner@piper-whisper", seed, [0.5, control, control - 0.02],
                  frozen_aligner=True)
    text = write_report([runs], tmp_path / "report").markdown.read_text()
    section = text.split("### Teachers and controls against each other, seed by seed")[1].split("\n### ")[0]
    rows = {line.split(" | ")[1]: line.split(" | ")[2:]
            for line in section.splitlines() if line.startswith("| glue/rte")}
    assert rows == {
        "euclid@piper-whisper-base − euclid@piper-whisper": ["3", "+1.0 ± 1.0", "0.225", "+2.0 ± 1.0", "0.074 |"],
        "euclid@piper-whisper − random-aligner@piper-whisper": ["3", "+1.0 ± 1.0", "0.225", "+1.0 ± 1.0", "0.225 |"],
        "euclid@piper-whisper-base − random-aligner@piper-whisper": ["3", "+2.0 ± 0.0", "–", "+3.0 ± 0.0", "– |"]}


def test_a_report_with_one_teacher_and_no_control_sets_nothing_against_each_other(tmp_path):
    write_run(tmp_path / "runs", "glue/rte", "undistilled", 0, [0.5, 0.6])
    write_run(tmp_path / "runs", "glue/rte", "armada-euclid", 0, [0.5, 0.7])
    assert "against each other" not in write_report([tmp_path / "runs"], tmp_path / "report").markdown.read_text()


def test_a_report_without_probes_or_teachers_has_no_teachers_section(tmp_path):
    write_run(tmp_path / "runs", "glue/rte", "undistilled", 0, [0.5, 0.6])
    write_run(tmp_path / "runs", "glue/rte", "armada-euclid", 0, [0.5, 0.7])
    assert "### Teachers" not in write_report([tmp_path / "runs"], tmp_path / "report").markdown.read_text()


def test_a_damaged_probe_file_is_a_clear_error(tmp_path):
    (tmp_path / "probe--x.json").write_text("{")
    with pytest.raises(ArmadaError, match="not a probe result"):
        ProbeResult.read(tmp_path / "probe--x.json")


def test_armada_run_probes_each_teachers_cache_once_and_says_when_there_are_too_few_rows(tmp_path):
    from distill_tiny import file_task, make_encoder, write_cache
    from armada.pipeline import probe as pipeline_probe
    from armada.tasks import get_task

    name, tasks = file_task(tmp_path / "data", train=30, validation=10)
    spec = tasks[name]
    (tmp_path / "p.toml").write_text(config.to_toml({
        "run": {"name": "t", "tasks": [f"file:{name}"], "runs_dir": str(tmp_path / "runs")},
        "distill": {"student": str(make_encoder(tmp_path / "student")), "max_length": 16},
        "tasks": {name: config.to_dict(spec)}}))
    cfg = config.load(tmp_path / "p.toml")
    task = get_task(f"file:{name}", cfg.tasks)
    cache = str(write_cache(tmp_path / "c.zarr", task, {s: task.load(s) for s in ("train", "validation")}))
    said = []
    result = pipeline_probe(cfg, f"file:{name}", "fake", cache, said.append)
    written = tmp_path / "runs" / "t" / f"file_{name}" / "probe--fake.json"
    assert written.is_file() and ProbeResult.read(written) == result and result.score("student") is not None
    assert said[-1].startswith("   probe: teacher 100.0 (chance 50.0)")
    stamp = written.stat().st_mtime_ns
    assert pipeline_probe(cfg, f"file:{name}", "fake", cache, said.append) == result and written.stat().st_mtime_ns == stamp

    small = task.load("train", limit=6)
    few = str(write_cache(tmp_path / "few.zarr", task, {"train": small}))
    assert pipeline_probe(cfg, f"file:{name}", "few", few, said.append) is None
    assert said[-1].startswith("   no probe:") and "fewer than the 5 folds" in said[-1]
