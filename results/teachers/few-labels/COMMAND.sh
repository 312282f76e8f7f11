# The teacher-strength study in the default pipeline's regime (issue 24), run on 2026-12-07 from /work/main on the
# project's 2-core machine (AMD EPYC, AVX-512), in the background at the lowest priority (autogroup nice 19) beside
# other work. The tiny.en cache's 350 rows were copied from a fresh clone's `make run` (reuse_from); base was extracted.
# The report written by the run is the one in this folder (results.md, results.csv, figures, and pipeline.toml: the
# resolved pipeline). The file run was this folder's pipeline.toml at the time, kept as pipeline-source.toml.
cd /work/main
OMP_NUM_THREADS=1 .venv/bin/armada run results/teachers/few-labels/pipeline-source.toml --set 'extract.reuse_from=["/tmp/fresh/cache"]'
# base - tiny.en, seed by seed (best epoch), and the paired t-test quoted in ../README.md:
python3 -c "
import glob, json, statistics
from scipy import stats
v = {}
for f in glob.glob('/work/t24/runs/teachers-few-labels/bbc-news/*/seed-*/run.json'):
    d = json.load(open(f)); v.setdefault(d['variant'], {})[d['seed']] = 100 * d['best_dev']
base, tiny = v['authors-euclid@piper-whisper-base'], v['authors-euclid@piper-whisper']
seeds = sorted(base)
print([round(base[s] - tiny[s], 1) for s in seeds], stats.ttest_rel([base[s] for s in seeds], [tiny[s] for s in seeds]))
"
