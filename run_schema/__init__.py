"""The run folder: the only code that knows its layout. `armada distill` writes it (every training
objective through the same calls); `armada eval`, `armada report` and `armada run` read it.

    <run>/
      run.json                  RunRecord: task, student, variant, seed, objective, best epoch and dev score,
                                status ("running", then "finished"; "failed" or "interrupted" where it stopped), the
                                cache's provenance, versions
      config.toml               the [data] and [distill] settings it trained with (settings.py)
      metrics.jsonl             one EpochRecord per line: training losses, dev scores, and whatever else the
                                objective records per epoch
      student/                  the best epoch's student (save_pretrained; armada.distill.model says what is inside)
      aligner.safetensors       the best epoch's TS Aligner (absent for an undistilled run)
      checkpoints/epoch-NNNN/   the newest complete epoch checkpoint (armada.distill.checkpoint)
      eval/<split>[-aligner].json               ScoreRecord: the student (or aligner) scored on a split
      eval/generation-<task>-<split>.json       GenerationRecord: a generative student scored on what it writes
      eval/predictions-<same stem>.jsonl        one line per example

One process trains a run folder at a time (lock.exclusive). Records from older run folders read
with defaults for the fields added since; one that cannot be read raises UnreadableRecord, naming
the file and what is wrong.
"""

from armada.run_schema.folder import (RunFolder, StoredRun, default_run_folder, find_run_folders,
                                      pipeline_run_folder)
from armada.run_schema.lock import RunBusy, exclusive
from armada.run_schema.records import EpochRecord, GenerationRecord, RunRecord, ScoreRecord, UnreadableRecord
from armada.run_schema.settings import RunSettings, settings_text

__all__ = [
    "EpochRecord", "GenerationRecord", "RunBusy", "RunFolder", "RunRecord", "RunSettings", "ScoreRecord", "StoredRun",
    "UnreadableRecord", "default_run_folder", "exclusive", "find_run_folders", "pipeline_run_folder", "settings_text",
]
