"""The report over run folders made by earlier versions of the code is the same, byte for byte, as the
report those versions wrote (issue 14: reading run folders through armada.run_schema changes no result).

tests/fixtures/report-baseline/<commit>/ holds the bookkeeping files (run.json, config.toml,
metrics.jsonl, eval/*.json) of real runs made by `armada run` at that commit: nlu/ is
configs/debug.toml (MiniLM-L6, piper-whisper, 2 variants × 2 seeds; at be57010 a third variant whose
manifold term swamps the gradient, so the runs record loss balances and training warnings); gen/ a
tiny LLaMA trained with --objective lm on a tiny instruction task and scored on it and zero-shot on
MultiArith (3 variants × 2 seeds, one seed whose best epoch is not its last). expected/ is what
`armada report` of that commit wrote over them (the figures left out; be57010's report over both
sets is unchanged up to 6fe5f4a). The only line allowed to differ is the date the report was written.

One change was made on purpose since (issue 26): the t-test of a generative table pairs one value per
trained model (its scores averaged over the sets it was scored on), not one per (set, seed) cell, which
counted each model once per set. expected/gen and expected/both were regenerated for it: their t-test
rows (pairs, t, p; the mean Δ is the same) and the sentence above them are all that differ from what
those commits wrote; expected/nlu, whose columns are tasks of their own, is as those commits wrote it.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from armada.cli import app

FIXTURES = Path(__file__).parent / "fixtures" / "report-baseline"
MADE_BY = ("b4f2003", "be57010")
CASES = {                       # case → (folder to run in, report arguments)
    "nlu": ("nlu", ["runs/debug", "--config", "pipeline.toml"]),
    "gen": ("gen", ["runs/gen", "--config", "pipeline.toml"]),
    "both": (".", ["nlu/runs", "gen/runs"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("made_by", MADE_BY)
def test_report_over_old_run_folders_is_unchanged(made_by, case, tmp_path, monkeypatch):
    fixture = FIXTURES / made_by
    folder, arguments = CASES[case]
    monkeypatch.chdir(fixture / folder)
    result = CliRunner().invoke(app, ["report", *arguments, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    expected = fixture / "expected" / case
    today = datetime.date.today().isoformat()
    markdown = re.sub(r"(Written by `armada report` on )\d{4}-\d{2}-\d{2}", rf"\g<1>{today}",
                      (expected / "results.md").read_text(encoding="utf-8"), count=1)
    assert (tmp_path / "results.md").read_text(encoding="utf-8") == markdown
    assert (tmp_path / "results.csv").read_bytes() == (expected / "results.csv").read_bytes()
