#!/bin/bash
# usage: bash results/keep.sh RUNS DEST   (RUNS: a pipeline's <runs_dir>/<name>; DEST: its copy in results/)
# Copy a pipeline's finished and scored runs, and its probes, into results: their records, settings, metrics and
# scores, not the student, the aligner or the checkpoints (hundreds of MB each), so that a later session resumes
# without them (touch the copies' eval/ files newer than their run.json, and the pipeline finds them scored).
set -euo pipefail
src=$1 dst=$(realpath -m "$2")
for run in "$src"/*/*/seed-*; do
  # scored: the student, and a distilled run's aligner too (without its weights a later session could not score it)
  grep -q '"finished"' "$run/run.json" 2>/dev/null && [ -f "$run/eval/validation.json" ] || continue
  grep -q '^undistilled = true' "$run/config.toml" || [ -f "$run/eval/validation-aligner.json" ] || continue
  rel=${run#"$src"/}; mkdir -p "$dst/$rel"
  (cd "$run" && cp -a run.json config.toml metrics.jsonl eval "$dst/$rel/")
done
for probe in "$src"/*/probe--*.json; do
  [ -f "$probe" ] || continue
  rel=${probe#"$src"/}; mkdir -p "$dst/$(dirname "$rel")"; cp -a "$probe" "$dst/$rel"
done
find "$dst" -maxdepth 3 -name 'seed-*' | sort
