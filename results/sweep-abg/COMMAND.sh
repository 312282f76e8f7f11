# The α/β/γ grid of the paper's Figure 3 (issue 15), end to end, from /work/main, one thread, while the replication's
# training processes shared the 2-core machine (so 3,721 s here is not a quiet figure):
OMP_NUM_THREADS=1 .venv/bin/armada run configs/sweep-abg.toml --set 'run.runs_dir="/work/rep/sweep/runs"' \
  --set 'run.report_dir="/work/rep/sweep/report"' --set 'extract.cache_dir="/work/rep/sweep/cache"' \
  --set 'extract.num_processes=1'

# Issue 26: the ANOVA refitted with statsmodels (armada.reporting.anova), without and with the seed as a block, from
# the 16 improvements the report recorded (anova-improvements.csv; the run folders are no longer on disk). It
# rewrites anova.csv in the format `armada report --analysis` now writes (a "fit" column); results.md's ANOVA
# section has both tables.
.venv/bin/python - <<'PY'
import csv
from armada.reporting.anova import ols_anova
rows = list(csv.DictReader(open("results/sweep-abg/anova-improvements.csv")))
y = [float(r["improvement"]) for r in rows]
factors = {name: [r[name] for r in rows] for name in ("alpha", "beta", "gamma")}
with open("results/sweep-abg/anova.csv", "w", newline="") as f:
    out = csv.writer(f)
    out.writerow(["student", "fit", "source", "df", "sum_sq", "F", "p"])
    for fit, block in (("factors", None), ("seed block", ("seed", [r["seed"] for r in rows]))):
        for r in ols_anova(y, factors, block):
            out.writerow(["minilm-l6", fit, r.source, r.df, f"{r.sum_sq:.6g}",
                          *("" if v != v else f"{v:.6g}" for v in (r.f, r.p))])
PY
