# The replication of issue 12 (and the KD rows of issue 15), as it was run on the 2-core CPU machine, from /work/main.
# The pipeline is configs/replicate-glue.toml with the run, report and cache folders moved to /work/rep
# (run.runs_dir, run.report_dir, extract.cache_dir); its resolved form is pipeline.toml here. Every process
# runs one thread (OMP_NUM_THREADS=1): on 2 cores two one-thread processes beat one two-thread process
# (bench/trainer_parity.py). `armada run` resumes, and several share one pipeline's runs.
cd /work/main
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

# 0. Pilots (CoLA, undistilled, seed 0), to choose the student lr (results/README.md):
#    3,000 rows, lr 2e-5, 3 epochs → MCC 0.0 / 9.6 / 13.7 per epoch
#    3,000 rows, lr 1e-4, 5 epochs → 0.0 / 17.7 / 10.2 / 13.4 / 21.2
#    8,551 rows (all), lr 5e-5, 3 epochs → 14.7 / 24.5 / 24.9 (this run became CoLA's KD teacher)
.venv/bin/armada run /work/rep/pipeline-undistilled.toml --set 'run.tasks=["glue/cola"]' --set 'run.seeds=[0]' \
  --set run.name=pilot-full-lr5e-5 --set distill.lr=5e-5 --set data.train_limit=0

# 1. The piper-whisper caches (CoLA, COPA, STS-B: first 3,000 training rows and the whole dev split), one process:
.venv/bin/python - <<'PY'
from armada import config
from armada.extract.job import job_from_config
from armada.extract.runner import run_extract
cfg = config.load("/work/rep/pipeline.toml", flags={"extract.num_processes": 1})
for task in ["glue/cola", "super_glue/copa", "glue/stsb"]:
    run_extract(job_from_config(cfg, task))
PY

# 2. Lane A: COPA then CoLA, every variant; then again for the KD variant once the KD caches exist.
.venv/bin/armada run /work/rep/pipeline.toml --set 'run.tasks=["super_glue/copa","glue/cola"]'

# 3. Lane B: the KD teachers (configs/kd-teachers.toml: the same student on each task's whole training set),
#    their KD caches (the teacher's [pooled | logits] for the students' 3,000 training rows), then STS-B's
#    undistilled and KD runs (pipeline-nocache.toml: those two variants of pipeline.toml).
.venv/bin/armada run /work/rep/teachers.toml --set 'run.tasks=["super_glue/copa","glue/stsb"]'
for task in glue/stsb super_glue/copa glue/cola; do
  slug=${task//\//_}
  case $task in super_glue/*) dir=../shared/data/superglue;; *) dir=../shared/data/glue;; esac
  .venv/bin/armada extract --teacher run:/work/rep/runs/kd-teachers/$slug/undistilled/seed-0 --dataset $task \
      --split train --limit 3000 --data-dir $dir --num-processes 1 --batch-size 32 --out /work/rep/cache/$slug--kd-teacher.zarr
done
.venv/bin/armada run /work/rep/pipeline-nocache.toml --set 'run.tasks=["glue/stsb"]'

# 3b. Lane E, last (beside the α/β/γ sweep): MRPC's and RTE's undistilled runs, which need no cache; stopped at
#     the end of the session inside RTE's first run (it resumes).
.venv/bin/armada run /work/rep/pipeline-undistilled.toml --set 'run.tasks=["glue/mrpc","glue/rte"]'

# Session 3 (each process one thread; a SeqKD generative lane shared the 2 cores):
# 3c. The rest of STS-B's piper-whisper cache (it resumed at its 16th of 18 shards), then STS-B's three ARMADA
#     variants, two processes sharing the runs; RTE's undistilled runs resumed by lane E's command above.
.venv/bin/python - <<'PY'
from armada import config
from armada.extract.job import job_from_config
from armada.extract.runner import run_extract
run_extract(job_from_config(config.load("/work/rep/pipeline.toml", flags={"extract.num_processes": 1}), "glue/stsb"))
PY
.venv/bin/armada run /work/rep/pipeline.toml --set 'run.tasks=["glue/stsb"]'     # twice, at once
.venv/bin/armada run /work/rep/pipeline-undistilled.toml --set 'run.tasks=["glue/rte"]'
# 3d. CoLA on its whole training set (whole-training-set/pipeline.toml is pipeline-full.toml resolved: run.name =
#     "replicate-glue-full", no train_limit, extract.cache_dir = "/work/rep/cache-full" so that the whole set's cache
#     sits beside the 3,000-row one, and the undistilled, authors-cosine, authors-euclid and paper-forms variants).
#     The undistilled runs first (session 3, the file then had that variant alone), two processes sharing the runs:
.venv/bin/armada run /work/rep/pipeline-full.toml --set 'run.tasks=["glue/cola"]'     # twice, at once
#     then (session 4) the ARMADA variants: the first process extracts the whole set with two processes (1,337 s),
#     the second starts once the first prints its first "== distill", and they share the 9 runs:
.venv/bin/armada run /work/rep/pipeline-full.toml --set 'run.tasks=["glue/cola"]'     # twice, the second after the extraction
#     whole-training-set/pipeline.toml and provenance.json are the sitting of the process that finished last.
#     STS-B's undistilled student on its whole training set (session 4; its resolved pipeline and sitting are
#     whole-training-set/pipeline-stsb-undistilled.toml and provenance-stsb-undistilled.json), one process:
.venv/bin/armada run /work/rep/pipeline-undistilled.toml --set run.name=replicate-glue-full --set data.train_limit=0 \
  --set 'run.tasks=["glue/stsb"]' --set run.report_dir=/work/rep/report-stsb-full
#     whole-training-set/results.* and the figures: the report over both tasks, the missing cells named:
.venv/bin/armada report /work/rep/runs/replicate-glue-full --out /work/rep/report/replicate-glue-full-all --config /work/rep/pipeline-full.toml
# 3e. MRPC's distilled variants: its cache (session 4 wrote 6 of its 12 training shards and was stopped; session 5
#     resumed it), then the 9 runs. Session 5 started both processes at once: the second waits for the first's
#     extraction (the cache's lock), then they share the runs; the last to finish writes the report.
.venv/bin/armada run /work/rep/pipeline.toml --set 'run.tasks=["glue/mrpc"]'     # twice, at once
# 3f. RTE's undistilled student at the paper's 10 epochs (session 5; rte-10-epochs/pipeline.toml is its resolved
#     pipeline: pipeline-undistilled.toml with run.name = "replicate-rte-10-epochs", tasks = ["glue/rte"],
#     distill.epochs = 10), two processes sharing the 3 runs; the last to finish wrote rte-10-epochs/results.*:
.venv/bin/armada run /work/rep/pipeline-rte10.toml     # twice, at once
#     then the same file with pipeline.toml's three ARMADA variants added: RTE's cache, then the 9 runs (sessions 5
#     and 6, two processes at once; session 6 resumed the two runs session 5 left by epoch):
.venv/bin/armada run /work/rep/pipeline-rte10.toml     # twice, at once
# 3g. The KD rows of MRPC and RTE (session 6): their teachers (teachers.toml, now with MRPC on its 3,668 rows and RTE on
#     its 2,490 at 10 epochs), their KD caches, then the KD variant (pipeline.toml's for MRPC; for RTE the same variant
#     added to pipeline-rte10.toml). Lanes /work/rep/laneK1.sh and laneK2.sh ran these one after another:
.venv/bin/armada run /work/rep/teachers.toml --set 'run.tasks=["glue/mrpc","glue/rte"]'
for task in glue/mrpc glue/rte; do
  slug=${task//\//_}
  .venv/bin/armada extract --teacher run:/work/rep/runs/kd-teachers/$slug/undistilled/seed-0 --dataset $task \
      --split train --limit 3000 --data-dir ../shared/data/glue --num-processes 1 --batch-size 32 --out /work/rep/cache/$slug--kd-teacher.zarr
done
.venv/bin/armada run /work/rep/pipeline.toml --set 'run.tasks=["glue/mrpc"]'     # twice, at once
.venv/bin/armada run /work/rep/pipeline-rte10.toml                              # twice, at once
# 3h. STS-B's ARMADA variants on its whole training set (session 6 on): pipeline-full.toml with
#     reuse_from = ["/work/rep/cache"], so the whole-set cache copies the 4,500 rows (3,000 train, 1,500 dev) the
#     3,000-row cache holds and encodes the other 2,749; then the 9 runs.
.venv/bin/armada run /work/rep/pipeline-full.toml --set 'run.tasks=["glue/stsb"]'     # two or three at once

# 4. The report over every run of the pipeline (it finds them finished):
.venv/bin/armada report /work/rep/runs/replicate-glue --out /work/rep/report/replicate-glue --config /work/rep/pipeline.toml

# 5. KD at τ = 1 and 2 on CoLA's first 3,000 rows (session 6; kd-tau-sweep/pipeline-source.toml is the file), one
#    process, then its report beside replicate-glue's CoLA runs (undistilled, KD at τ = 5, the ARMADA variants):
.venv/bin/armada run /work/rep/pipeline-kd-tau.toml
.venv/bin/armada report /work/rep/runs/replicate-glue/glue_cola /work/rep/runs/kd-tau-sweep --out /work/rep/report/kd-tau
