#!/bin/bash
# Copy the finished and scored runs of the RTE pipeline into results (their records, settings, metrics and scores;
# not the student, the aligner or the checkpoints, hundreds of MB each), so that a later session resumes without them.
src=/work/rep26r/runs/replicate-rte-authors
dst=/work/main/results/replication/rte-authors/runs/replicate-rte-authors
for run in $src/*/*/seed-*; do
  # scored: the student, and a distilled run's aligner too (without its weights a later session could not score it)
  grep -q '"finished"' $run/run.json 2>/dev/null && [ -f $run/eval/validation.json ] || continue
  grep -q '^undistilled = true' $run/config.toml || [ -f $run/eval/validation-aligner.json ] || continue
  rel=${run#$src/}; mkdir -p $dst/$rel
  (cd $run && cp -a run.json config.toml metrics.jsonl eval $dst/$rel/)
done
find $dst -maxdepth 3 -name 'seed-*'
