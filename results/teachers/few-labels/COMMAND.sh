# The teacher-strength study in the default pipeline's regime (issue 24), run on 2026-12-07 from /work/main on the
# project's 2-core machine (AMD EPYC, AVX-512), in the background at the lowest priority (autogroup nice 19) beside
# other work. The tiny.en cache's 350 rows were copied from a fresh clone's `make run` (reuse_from); base was extracted.
# The report written by the run is the one in this folder (results.md, results.csv, figures, and pipeline.toml: the
# resolved pipeline). The file first run was this folder's pipeline.toml at the time, without the control; it is
# pipeline-source.toml less its last variant.
cd /work/main
.venv/bin/armada run results/teachers/few-labels/pipeline.toml --set 'extract.reuse_from=["/tmp/fresh/cache"]'
# Then the random-aligner control was added to the file (pipeline-source.toml as it is now) and the same command run
# again: the 15 finished runs were found finished, the 5 new ones trained (683 s), and the report rewritten over all 20.
.venv/bin/armada run results/teachers/few-labels/pipeline-source.toml --set 'extract.reuse_from=["/tmp/fresh/cache"]'
# Paired differences seed by seed (best epoch) and their two-sided paired t-tests, quoted in ../README.md:
python3 -c "
import glob, json, statistics
from scipy import stats
v = {}
for f in glob.glob('/work/t24/runs/teachers-few-labels/bbc-news/*/seed-*/run.json'):
    d = json.load(open(f)); v.setdefault(d['variant'], {})[d['seed']] = 100 * d['best_dev']
for a, b in [('authors-euclid@piper-whisper-base', 'authors-euclid@piper-whisper'),
             ('authors-euclid@piper-whisper', 'random-aligner@piper-whisper'),
             ('authors-euclid@piper-whisper-base', 'random-aligner@piper-whisper')]:
    seeds = sorted(v[a])
    print(a, '-', b, [round(v[a][s] - v[b][s], 1) for s in seeds], stats.ttest_rel([v[a][s] for s in seeds], [v[b][s] for s in seeds]))
"
