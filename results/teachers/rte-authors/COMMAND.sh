# Whisper base on RTE at 10 epochs as the authors' code reads it (issue 24's replication regime): the pipeline of
# ../../replication/rte-authors with piper-whisper-base as the teacher and its own folders, given as --set (the
# resolved pipeline equals that file with these five settings). NOT RUN YET: planned for the session after the tiny.en
# runs (costs in ../README.md). The undistilled runs are the replication's (the same settings, no teacher): copy its
# three finished folders in first, and the pipeline finds them finished.
cd /work/runtree      # a worktree frozen at one commit, so that every training process imports the same code
mkdir -p /work/t24r/runs/rte-authors-base/super_glue_rte
cp -a /work/rep26r/runs/replicate-rte-authors/super_glue_rte/undistilled /work/t24r/runs/rte-authors-base/super_glue_rte/
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/armada run /work/main/results/replication/rte-authors/pipeline.toml \
  --set extract.teacher=piper-whisper-base --set run.name=rte-authors-base --set run.runs_dir=/work/t24r/runs \
  --set run.report_dir=/work/t24r/report --set extract.cache_dir=/work/t24r/cache
