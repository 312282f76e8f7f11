"""`armada report`: tables, t-tests and figures over many runs."""

from __future__ import annotations

from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    runs: List[str] = typer.Argument(..., help="run folders, or folders searched for them"),
    out: str = typer.Option("report", "--out", "-o", help="the folder to write results.md, results.csv and the PNGs to"),
    analysis: bool = typer.Option(False, "--analysis", help="add the paper's analyses: embedding views (t-SNE, silhouette, KMeans purity), auxiliary heads, silhouette by scenario, centroid distances, loss t-tests, the α/β/γ ANOVA, noise sensitivity"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="for --analysis: where the tasks' files are (default: each run's data.data_dir)"),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="the pipeline file the runs came from: its tasks, "
                                         "variants and seeds are the runs expected (Coverage), its file:NAME tasks are read"),
) -> None:
    """Write results tables (mean ± sd over seeds, Δ against undistilled, paired t-tests) and plots.

    Example: armada report runs/ --out report/ --analysis
    """
    from armada.commands import load_pipeline
    from armada.pipeline import plan, planned_seeds
    from armada.reporting import write_report

    cfg = load_pipeline(config) if config else None
    files = write_report(runs, out, analysis=analysis, data_dir=data_dir, file_tasks=dict(cfg.tasks) if cfg else {},
                         plan=planned_seeds(plan(cfg)) if cfg else None)
    typer.echo(f"wrote {files.markdown}, {files.csv} and {len(files.figures)} figure(s) in {files.markdown.parent}")
