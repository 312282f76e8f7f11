# The α/β/γ grid of the paper's Figure 3 (issue 15), end to end, from /work/main, one thread, while the replication's
# training processes shared the 2-core machine (so 3,721 s here is not a quiet figure):
OMP_NUM_THREADS=1 .venv/bin/armada run configs/sweep-abg.toml --set 'run.runs_dir="/work/rep/sweep/runs"' \
  --set 'run.report_dir="/work/rep/sweep/report"' --set 'extract.cache_dir="/work/rep/sweep/cache"' \
  --set 'extract.num_processes=1'
