# Sitting 1 (extraction, then the first runs; later split, see below)
# The replication, as it was run: two `armada run` processes of one thread each on disjoint tasks
# (on 2 cores, faster in total than one process of two threads), then one over every task, which
# finds every run finished and writes the report.
cd /work/main
SETS=(--set 'run.runs_dir="/work/replication/runs"' --set 'run.report_dir="/work/replication/report"'
      --set 'extract.cache_dir="/work/replication/cache"'
      --set 'extract.num_processes=2' --set 'extract.shard_rows=128'
      --set 'data.train_limit=500' --set 'data.validation_limit=500'
      --set 'distill.epochs=3' --set 'distill.lr=1e-4' --set 'distill.batch_size=16'
      --set 'run.seeds_per_task={}')
export TQDM_MININTERVAL=60
OMP_NUM_THREADS=1 .venv/bin/armada run configs/replicate-glue.toml "${SETS[@]}" \
  --set 'run.tasks=["glue/cola", "glue/mrpc", "glue/stsb"]' > /work/replication/log-a.txt 2>&1 &
OMP_NUM_THREADS=1 .venv/bin/armada run configs/replicate-glue.toml "${SETS[@]}" \
  --set 'run.tasks=["super_glue/copa", "super_glue/wsc", "glue/rte"]' > /work/replication/log-b.txt 2>&1 &
wait
.venv/bin/armada run configs/replicate-glue.toml "${SETS[@]}" > /work/replication/log-report.txt 2>&1

# Sittings 2-3: schedules of the same runs (processes restarted; armada run resumes)
# The second sitting's schedule (command.sh's process for CoLA, MRPC, STS-B kept running): COPA then
# RTE in one process; WSC in another once the first is done; then the report over every task.
cd /work/main
SETS=(--set 'run.runs_dir="/work/replication/runs"' --set 'run.report_dir="/work/replication/report"'
      --set 'extract.cache_dir="/work/replication/cache"'
      --set 'extract.num_processes=2' --set 'extract.shard_rows=128'
      --set 'data.train_limit=500' --set 'data.validation_limit=500'
      --set 'distill.epochs=3' --set 'distill.lr=1e-4' --set 'distill.batch_size=16'
      --set 'run.seeds_per_task={}')
export TQDM_MININTERVAL=60
OMP_NUM_THREADS=1 .venv/bin/armada run configs/replicate-glue.toml "${SETS[@]}" \
  --set 'run.tasks=["super_glue/copa", "glue/rte"]' > /work/replication/log-b.txt 2>&1 &
while kill -0 6747 2>/dev/null; do sleep 10; done
OMP_NUM_THREADS=1 .venv/bin/armada run configs/replicate-glue.toml "${SETS[@]}" \
  --set 'run.tasks=["super_glue/wsc"]' > /work/replication/log-c.txt 2>&1 &
wait
.venv/bin/armada run configs/replicate-glue.toml "${SETS[@]}" > /work/replication/log-report.txt 2>&1
# The third schedule (the processes for CoLA/MRPC/STS-B and for COPA kept running): RTE, a task the
# paper's Table 2 reports, goes before COPA's ablations; WSC once CoLA/MRPC/STS-B are done; then the
# report over every task. A process is only ever stopped between or inside runs; `armada run` resumes.
cd /work/main
SETS=(--set 'run.runs_dir="/work/replication/runs"' --set 'run.report_dir="/work/replication/report"'
      --set 'extract.cache_dir="/work/replication/cache"'
      --set 'extract.num_processes=2' --set 'extract.shard_rows=128'
      --set 'data.train_limit=500' --set 'data.validation_limit=500'
      --set 'distill.epochs=3' --set 'distill.lr=1e-4' --set 'distill.batch_size=16'
      --set 'run.seeds_per_task={}')
export TQDM_MININTERVAL=60
until grep -q "super_glue/copa frozen-random-aligner seed 0" /work/replication/log-b.txt; do sleep 5; done
kill 7540; while kill -0 7540 2>/dev/null; do sleep 1; done
OMP_NUM_THREADS=1 .venv/bin/armada run configs/replicate-glue.toml "${SETS[@]}" \
  --set 'run.tasks=["glue/rte", "super_glue/copa"]' > /work/replication/log-b2.txt 2>&1 &
B=$!
while kill -0 6747 2>/dev/null; do sleep 10; done
OMP_NUM_THREADS=1 .venv/bin/armada run configs/replicate-glue.toml "${SETS[@]}" \
  --set 'run.tasks=["super_glue/wsc"]' > /work/replication/log-c.txt 2>&1 &
C=$!
wait $B $C
.venv/bin/armada run configs/replicate-glue.toml "${SETS[@]}" > /work/replication/log-report.txt 2>&1

# Sitting 4
# The fourth schedule, with the new code: two `armada run`s of the whole pipeline, one thread each,
# starting from different tasks; each leaves to the other the run it is training and takes the next.
# Order: MRPC, STS-B and RTE (Table 2 tasks) first, then COPA's ablations, WSC last.
cd /work/main
SETS=(--set 'run.runs_dir="/work/replication/runs"' --set 'run.report_dir="/work/replication/report"'
      --set 'extract.cache_dir="/work/replication/cache"'
      --set 'extract.num_processes=2' --set 'extract.shard_rows=128'
      --set 'data.train_limit=500' --set 'data.validation_limit=500'
      --set 'distill.epochs=3' --set 'distill.lr=1e-4' --set 'distill.batch_size=16'
      --set 'run.seeds_per_task={}')
export TQDM_MININTERVAL=60 OMP_NUM_THREADS=1
.venv/bin/armada run configs/replicate-glue.toml "${SETS[@]}" \
  --set 'run.tasks=["glue/mrpc", "glue/stsb", "glue/rte", "super_glue/copa", "glue/cola", "super_glue/wsc"]' > /work/replication/log-p1.txt 2>&1 &
sleep 20
.venv/bin/armada run configs/replicate-glue.toml "${SETS[@]}" \
  --set 'run.tasks=["glue/rte", "glue/stsb", "glue/mrpc", "super_glue/copa", "glue/cola", "super_glue/wsc"]' > /work/replication/log-p2.txt 2>&1 &
wait

# Sitting 4 stopped at 02:09 UTC (the session's end); its report: armada report /work/replication/runs/replicate-glue --out /work/replication/report/replicate-glue

# Sitting 5 (next session): COPA to 5 seeds and its ablations, then WSC; the last armada run wrote the report, pipeline.toml and provenance.json
# Sitting 5: COPA to 5 seeds with its ablations completed, then WSC (5 seeds): the config's own
# seeds_per_task (no `run.seeds_per_task={}` this time), one thread per process.
cd /work/main
SETS=(--set 'run.runs_dir="/work/replication/runs"' --set 'run.report_dir="/work/replication/report"'
      --set 'extract.cache_dir="/work/replication/cache"'
      --set 'extract.num_processes=2' --set 'extract.shard_rows=128'
      --set 'data.train_limit=500' --set 'data.validation_limit=500'
      --set 'distill.epochs=3' --set 'distill.lr=1e-4' --set 'distill.batch_size=16')
export TQDM_MININTERVAL=60 OMP_NUM_THREADS=1
.venv/bin/armada run configs/replicate-glue.toml "${SETS[@]}" \
  --set 'run.tasks=["super_glue/copa", "super_glue/wsc"]' > /work/replication/log-s5a.txt 2>&1

# Sitting 5, second part: WSC three seeds of every variant first, then seeds 3 and 4 and the report
# over the full plan (the first process, command-5.sh, was stopped as it began WSC).
cd /work/main
SETS=(--set 'run.runs_dir="/work/replication/runs"' --set 'run.report_dir="/work/replication/report"'
      --set 'extract.cache_dir="/work/replication/cache"'
      --set 'extract.num_processes=2' --set 'extract.shard_rows=128'
      --set 'data.train_limit=500' --set 'data.validation_limit=500'
      --set 'distill.epochs=3' --set 'distill.lr=1e-4' --set 'distill.batch_size=16')
export TQDM_MININTERVAL=60 OMP_NUM_THREADS=1
.venv/bin/armada run configs/replicate-glue.toml "${SETS[@]}" --set 'run.tasks=["super_glue/wsc"]' \
  --set 'run.seeds_per_task={"super_glue/wsc" = [0, 1, 2]}' > /work/replication/log-s5b.txt 2>&1
.venv/bin/armada run configs/replicate-glue.toml "${SETS[@]}" > /work/replication/log-s5c.txt 2>&1

# Sitting 5, the last WSC runs: a second `armada run` of the whole plan beside command-6.sh's (the generative pipelines had ended).
cd /work/main
SETS=(--set 'run.runs_dir="/work/replication/runs"' --set 'run.report_dir="/work/replication/report"'
      --set 'extract.cache_dir="/work/replication/cache"'
      --set 'extract.num_processes=2' --set 'extract.shard_rows=128'
      --set 'data.train_limit=500' --set 'data.validation_limit=500'
      --set 'distill.epochs=3' --set 'distill.lr=1e-4' --set 'distill.batch_size=16')
export TQDM_MININTERVAL=60 OMP_NUM_THREADS=1
.venv/bin/armada run configs/replicate-glue.toml "${SETS[@]}" > /work/replication/log-s5d.txt 2>&1
