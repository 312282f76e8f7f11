# The teacher-strength study of issue 24, as run on the 2-core CPU machine from /work/wt-24 (six other engineers'
# jobs beside it). Caches in /work/t24/cache (100 training + 100 validation bbc-news headlines per teacher) and
# /work/t24/cache-100 (the first 50 + 50 of them, for the padding question: the padded teacher is ~5x slower).
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

# 1. Extraction, one teacher after another, one process (the teacher runs one text per core):
nice -n 10 .venv/bin/python - <<'PY'
from armada.commands import load_pipeline
from armada.extract.job import job_from_config
from armada.extract.runner import run_extract
cfg = load_pipeline("results/teachers/pipeline.toml")
for teacher in ("piper-whisper", "piper-whisper-base"):
    summary = run_extract(job_from_config(cfg, "bbc-news", teacher=teacher), show_progress=False)
    print(teacher, summary.rows_written, "rows in", round(summary.seconds), "s", flush=True)
small = load_pipeline("results/teachers/pipeline.toml", ["data.train_limit=50", "data.validation_limit=50",
                      'extract.cache_dir="/work/t24/cache-100"', 'extract.reuse_from=["/work/t24/cache"]'])
for teacher in ("piper-whisper", "piper-whisper-window"):
    summary = run_extract(job_from_config(small, "bbc-news", teacher=teacher), show_progress=False)
    print(teacher, "(50 + 50 rows)", summary.rows_written, "rows in", round(summary.seconds), "s,",
          summary.rows_reused, "copied", flush=True)
PY

# 1b. (beside step 1's padded extraction) tiny.en and base on twice the rows: 200 training + 200 validation
#     (the first 100 + 100 copied from /work/t24/cache):
nice -n 10 .venv/bin/python - <<'PY'
from armada.commands import load_pipeline
from armada.extract.job import job_from_config
from armada.extract.runner import run_extract
more = load_pipeline("results/teachers/pipeline.toml", ["data.train_limit=200", "data.validation_limit=200",
                     'extract.cache_dir="/work/t24/cache-400"', 'extract.reuse_from=["/work/t24/cache"]'])
for teacher in ("piper-whisper", "piper-whisper-base"):
    summary = run_extract(job_from_config(more, "bbc-news", teacher=teacher), show_progress=False)
    print(teacher, "(200 + 200 rows)", summary.rows_written, "rows in", round(summary.seconds), "s,",
          summary.rows_reused, "copied", flush=True)
PY

# 1c. (beside 1b) the padded teacher on 100 + 100 rows, its first 50 + 50 copied from /work/t24/cache-100, into
#     /work/t24/cache beside tiny.en's and base's:
nice -n 10 .venv/bin/python - <<'PY'
from armada.commands import load_pipeline
from armada.extract.job import job_from_config
from armada.extract.runner import run_extract
cfg = load_pipeline("results/teachers/pipeline.toml", ['extract.reuse_from=["/work/t24/cache-100"]'])
summary = run_extract(job_from_config(cfg, "bbc-news", teacher="piper-whisper-window"), show_progress=False)
print("piper-whisper-window (100 + 100 rows)", summary.rows_written, "rows in", round(summary.seconds), "s,",
      summary.rows_reused, "copied", flush=True)
PY
