# Issue 24's replication regime for MRPC and STS-B, both ears side by side (pipeline.toml says what runs).
# From the worktree frozen at 7a80149 (the commit ../../replication/rte-authors ran from: on a CPU its training
# computes what main's does), in the background at the lowest priority (/work/bg.sh: autogroup nice 19), one torch
# thread a process, two processes at a time. Run again to resume: extraction resumes by shard, training by epoch.
cd /work/runtree
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/armada run /work/main/results/teachers/glue-authors/pipeline.toml
# Then keep what it made (finished runs, probes; the caches are copied by hand, below):
bash /work/main/results/keep.sh /work/t24g/runs/teachers-glue-authors /work/main/results/teachers/glue-authors/runs/teachers-glue-authors
