# Both pipelines ran at once (with the replication's), one thread each, on the 2-core machine.
# Math (LM fine-tuning, zero-shot MultiArith and SingleEq):
cd /work/main
export TQDM_MININTERVAL=60 OMP_NUM_THREADS=1
.venv/bin/armada run configs/generative-math.toml \
  --set 'run.runs_dir="/work/generative/runs"' --set 'run.report_dir="/work/generative/report"' \
  --set 'extract.cache_dir="/work/generative/cache"' > /work/generative/log-math-a.txt 2>&1

# Dolly (instruction tuning, RougeL on Dolly test and SInst):
cd /work/main
export TQDM_MININTERVAL=60 OMP_NUM_THREADS=1
.venv/bin/armada run configs/generative-dolly.toml \
  --set 'run.runs_dir="/work/generative/runs"' --set 'run.report_dir="/work/generative/report"' \
  --set 'extract.cache_dir="/work/generative/cache"' > /work/generative/log-dolly-a.txt 2>&1

# Dolly again on 2026-12-08 (dolly-rerun/), for the per-model paired test that the first runs' kept reports could
# not give: the same file and command, from the worktree frozen at 7a80149, beside MRPC's training (2 processes):
cd /work/runtree
TQDM_MININTERVAL=60 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/armada run configs/generative-dolly.toml \
  --set 'run.runs_dir="/work/generative/runs"' --set 'run.report_dir="/work/generative/report"' \
  --set 'extract.cache_dir="/work/generative/cache"' > /work/generative/log-dolly.txt 2>&1
