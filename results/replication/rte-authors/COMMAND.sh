# RTE at the paper's 10 epochs as the authors' code reads it (issue 26): SuperGLUE's RTE (their processors handle
# SuperGLUE alone; its 2,490 + 277 rows are GLUE's, with 70 + 6 rows' quotation marks as the jsonl has them), every
# correction of their recipe (recipe = "authors": weight decay on all, their selection, the aligner at its own best
# epoch, matrix-exp P_ts, a reshuffle per phase, lowercasing, segment id 1), group_by_length = false, 3 seeds, the
# variants undistilled, authors-cosine and authors-euclid. pipeline.toml is copa-authors' resolved file with the task,
# 10 epochs, batch 32 and aligner lr 3e-3 (the replication's RTE settings) and its folders in /work/rep26r.
# Run on 2026-12-07 from a worktree frozen at the commit that made the matrix-exp gradient exact and faster (7a80149),
# so that every training process, spawned as the runs start, imports the same code; in the background at the lowest
# priority (autogroup nice 19, /work/bg.sh) beside the session's other work, one thread a process:
git worktree add --detach /work/runtree 7a80149 && cd /work/runtree && make setup
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/armada run /work/main/results/replication/rte-authors/pipeline.toml
# The same command resumes: a finished run is kept, an interrupted one resumes from its newest epoch checkpoint.

# A session's machine keeps nothing, so what finished is kept here: cache/ (the piper-whisper cache, 2.6 MB; armada
# cache verify: 12 shards, no faults) and runs/ (each finished and scored run's run.json, config.toml, metrics.jsonl
# and eval/, and the cache's probe; not its student, aligner or checkpoints, ~350 MB a run), copied by
bash results/keep.sh /work/rep26r/runs/replicate-rte-authors results/replication/rte-authors/runs/replicate-rte-authors
# To go on in a new session:
mkdir -p /work/rep26r && cp -a results/replication/rte-authors/cache results/replication/rte-authors/runs /work/rep26r/
find /work/rep26r/runs -path '*/eval/*' -exec touch {} +     # scores newer than run.json: scored, nothing to redo
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/armada run results/replication/rte-authors/pipeline.toml
# (checked on 2026-12-07 with the two undistilled runs: both found finished, the report written in 5 s). An unfinished
# run starts again from its first epoch: its checkpoints were not kept. Where /work/rep26r is still on the machine (it
# was at the start of the third session), the same command alone resumes every run from its newest epoch checkpoint.

# The control (added to pipeline.toml after the 9 runs had finished, as few-labels added its own): random-aligner,
# euclid through an aligner that is never trained (aligner = "frozen-random"), so that a gain that does not need the
# teacher's knowledge shows itself. The same command runs its 3 seeds; the 9 finished runs are kept as they are.
# Started on 2026-12-07 at ~19:37, two at a time.
