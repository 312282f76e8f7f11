# Issue 24's replication regime for MRPC and STS-B, both ears side by side (pipeline.toml says what runs).
# From the worktree frozen at 7a80149 (the commit ../../replication/rte-authors ran from: on a CPU its training
# computes what main's does), in the background at the lowest priority (/work/bg.sh: autogroup nice 19), one torch
# thread a process, two processes at a time. Run again to resume: extraction resumes by shard, training by epoch.
cd /work/runtree
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/armada run /work/main/results/teachers/glue-authors/pipeline.toml
# Then keep what it made (finished runs, probes; the caches are copied by hand, below):
bash /work/main/results/keep.sh /work/t24g/runs/teachers-glue-authors /work/main/results/teachers/glue-authors/runs/teachers-glue-authors
# Run on 2026-12-07 with MRPC alone first (its results sooner; the same command without --set goes on to STS-B):
#   ... armada run /work/main/results/teachers/glue-authors/pipeline.toml --set 'run.tasks=["glue/mrpc"]'
# tiny.en's MRPC cache: 3,408 rows in 3,415 s (beside the RTE control's last run); kept in cache/ (armada cache
# verify: 14 shards, no faults). To go on in a session whose machine lost /work/t24g, restore the caches first:
mkdir -p /work/t24g/cache && cp -a /work/main/results/teachers/glue-authors/cache/* /work/t24g/cache/
# base's MRPC cache: 3,408 rows in 3,337 s, kept beside tiny.en's (verified); both probes at chance on dev.
# On 2026-12-08 the control (random-aligner) was moved before authors-cosine in pipeline.toml, and the command
# restarted, so that its seeds train before cosine's: euclid − control is the comparison the other tasks read.
# A run's settings do not depend on the order; the two runs in flight resumed from their last epoch checkpoint.
