"""`armada eval` (score one run's student or aligner on a split) and `armada report` (tables,
t-tests and figures over many runs)."""

from __future__ import annotations

from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("eval")(evaluate)
    app.command("report")(report)


def evaluate(
    run: str = typer.Option(..., "--run", help="the run folder armada distill wrote (runs/NAME)"),
    split: Optional[str] = typer.Option(None, "--split", help="validation (default) or test (test sets are unlabeled: "
                                        "predictions only); generative runs: any split of the task"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="where the task's files are (default: the run's data.data_dir)"),
    aligner: bool = typer.Option(False, "--aligner", help="score the TS Aligner alone on the cache's teacher features (paper Table 6)"),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="a pipeline file, for runs of file:NAME tasks ([tasks.NAME])"),
    task: Optional[str] = typer.Option(None, "--task", help="generative runs: score zero-shot on this generation task "
                                       "(default: the run's own, on its validation split)"),
    limit: int = typer.Option(0, "--limit", min=0, help="generative runs: the first N rows only (0: all)"),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", min=1, help="generative runs: the generation "
                                                 "budget (default: the task's own, as its source sets it)"),
) -> None:
    """Score a run's student (or its TS Aligner alone) on a split: RUN/eval/SPLIT.json and predictions-SPLIT.jsonl.

    A run trained with --objective lm is scored by generating (RougeL, or answer and log-likelihood accuracy).

    Example: armada eval --run runs/cola-euclid-s0 --split validation --data-dir ../shared/data/glue

    Example: armada eval --run runs/math-smollm2 --task reasoning/multiarith --data-dir ../shared/data/generative/reasoning --limit 100
    """
    from armada.errors import ArmadaError
    from armada.eval.evaluate import evaluate_generative, evaluate_run, generative_summary, is_generative_run

    if is_generative_run(run):
        if aligner:
            raise ArmadaError(f"{run}: a generative run's TS Aligner learnt to reconstruct the teacher's vectors and has no "
                              "task outputs to score; drop --aligner")
        record = evaluate_generative(run, task, split, data_dir, limit, max_new_tokens=max_new_tokens,
                                     file_tasks=_file_tasks(_pipeline(config)))
        typer.echo(generative_summary(record))
        return
    if task or limit or max_new_tokens:
        raise ArmadaError(f"{run} is not a generative run: --task, --limit and --max-new-tokens are for runs trained with "
                          "--objective lm")
    result = evaluate_run(run, split=split or "validation", data_dir=data_dir, aligner=aligner, file_tasks=_file_tasks(_pipeline(config)))
    typer.echo(result.summary())


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
    from armada.eval.report import write_report
    from armada.pipeline import plan, planned_seeds

    cfg = _pipeline(config)
    files = write_report(runs, out, analysis=analysis, data_dir=data_dir, file_tasks=_file_tasks(cfg),
                         plan=planned_seeds(plan(cfg)) if cfg else None)
    typer.echo(f"wrote {files.markdown}, {files.csv} and {len(files.figures)} figure(s) in {files.markdown.parent}")


def _pipeline(config: str | None):
    if config is None:
        return None
    from armada.commands import load_pipeline

    return load_pipeline(config)


def _file_tasks(cfg) -> dict:
    return dict(cfg.tasks) if cfg else {}
