"""The report over run folders made by an earlier version of the code is the same, byte for byte, as the
report that version wrote (issue 14: reading run folders through armada.run_schema changes no result).

tests/fixtures/report-baseline holds the bookkeeping files (run.json, config.toml, metrics.jsonl,
eval/*.json) of real runs made with commit b4f2003 by `armada run`: nlu/ is configs/debug.toml (MiniLM-L6,
piper-whisper, 2 variants × 2 seeds); gen/ a tiny LLaMA trained with --objective lm on a tiny
instruction task and scored on it and zero-shot on MultiArith (3 variants × 2 seeds, one seed
whose best epoch is not its last). expected/ is what `armada report` of that commit wrote over them
(the figures left out). The only line allowed to differ is the date the report was written.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from armada.cli import app

FIXTURE = Path(__file__).parent / "fixtures" / "report-baseline"
CASES = {                       # case → (folder to run in, report arguments)
    "nlu": ("nlu", ["runs/debug", "--config", "pipeline.toml"]),
    "gen": ("gen", ["runs/gen", "--config", "pipeline.toml"]),
    "both": (".", ["nlu/runs", "gen/runs"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_report_over_old_run_folders_is_unchanged(case, tmp_path, monkeypatch):
    folder, arguments = CASES[case]
    monkeypatch.chdir(FIXTURE / folder)
    result = CliRunner().invoke(app, ["report", *arguments, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    expected = FIXTURE / "expected" / case
    today = datetime.date.today().isoformat()
    markdown = re.sub(r"(Written by `armada report` on )\d{4}-\d{2}-\d{2}", rf"\g<1>{today}",
                      (expected / "results.md").read_text(encoding="utf-8"), count=1)
    assert (tmp_path / "results.md").read_text(encoding="utf-8") == markdown
    assert (tmp_path / "results.csv").read_bytes() == (expected / "results.csv").read_bytes()
