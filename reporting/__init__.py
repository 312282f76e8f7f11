"""The report stage, installed as armada.reporting: many finished run folders (read through
armada.run_schema) → results.md, results.csv and figures; with `analysis`, the paper's analyses.
It owns the tables and their statistics, never a run folder's files; `armada report` and
`armada run` call write_report.

  runs.py            run folders as reports see them: a Run per folder (or why it is not counted)
  tables.py          runs → one table per student: cells of seeds, their summaries, Δ and t-tests
  stats.py           mean ± sd, paired deltas, one-sided paired t-tests
  results.py         write_report: results.md, results.csv and the figures
  plots.py           deltas, dev curves and loss balance as PNGs
  dev_predictions.py each run's dev predictions, made once per report for the analyses
  embeddings.py      §6 embedding views (t-SNE, silhouette, KMeans purity)
  analysis.py        the embedding measures themselves
  paper_analyses.py  Tables 10, 13-15 and the sweeps' sections (--analysis)
  paper_measures.py  the paper's §6 measures as functions on arrays
  anova.py           the OLS ANOVA of Figures 3, 5 and 6
  sweeps.py          across runs that differ in their settings: the ANOVA and teacher-noise sensitivity
"""

from armada.reporting.results import write_report

__all__ = ["write_report"]
