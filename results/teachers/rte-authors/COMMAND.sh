# Whisper base on RTE at 10 epochs as the authors' code reads it (issue 24's replication regime): the pipeline of
# ../../replication/rte-authors less its random-aligner control (tiny.en's question), with piper-whisper-base as the
# teacher and its own folders, given as --set (the resolved pipeline equals that file with these five settings).
# The undistilled runs are the replication's (the same settings, no teacher): copy its three finished folders in
# first, and the pipeline finds them finished.
cd /work/runtree      # a worktree frozen at one commit (7a80149), so that every training process imports the same code
mkdir -p /work/t24r/runs/rte-authors-base/super_glue_rte
cp -a /work/rep26r/runs/replicate-rte-authors/super_glue_rte/undistilled /work/t24r/runs/rte-authors-base/super_glue_rte/
grep -v random-aligner /work/main/results/replication/rte-authors/pipeline.toml > /work/t24r/pipeline.toml
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/armada run /work/t24r/pipeline.toml \
  --set extract.teacher=piper-whisper-base --set run.name=rte-authors-base --set run.runs_dir=/work/t24r/runs \
  --set run.report_dir=/work/t24r/report --set extract.cache_dir=/work/t24r/cache
# Run on 2026-12-07 (the replication's file itself, which then had no control) in
# the background at the lowest priority beside the replication's last two runs: the cache, 2,767 rows in 5,013 s
# (kept here in cache/, 3.3 MB; armada cache verify: 12 shards, no faults), then its probe, which the run wrote to
# probe--piper-whisper-base.json: teacher 53.4 on dev, at chance (52.7). The process was then stopped, before any
# distilled run had finished an epoch, to give the two cores to the replication's random-aligner control.
# The training is left. To go on in a session whose machine lost /work/t24r, restore the cache first:
mkdir -p /work/t24r/cache && cp -a /work/main/results/teachers/rte-authors/cache/* /work/t24r/cache/
