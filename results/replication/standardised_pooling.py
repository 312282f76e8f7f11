"""The replication's pooled t-tests again, raw and standardised (issue 26), from the run list of results.md.

The run folders are no longer on disk; results.md lists every finished run with its best-epoch and last-epoch dev
score (×100, to 0.1). This rebuilds those runs for armada.reporting.tables.build_tables, the code `armada report`
uses, and prints each variant's test over the (task, seed) pairs of the four tasks: raw (as results.md has it, up to
the rounding of the scores) and with each task's differences divided by the sd of its undistilled seeds' scores.

    .venv/bin/python results/replication/standardised_pooling.py results/replication/results.md
"""

import sys
from pathlib import Path

from armada.reporting.runs import EpochScores, Run
from armada.reporting.tables import build_tables


def runs_of(report: Path) -> list[Run]:
    runs = []
    for line in report.read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != 9 or not cells[0].startswith("/"):
            continue
        path, student, task, variant, seed, best_epoch, best, last, seconds = cells
        if task == "glue/rte":                  # RTE's 3-epoch undistilled runs alone: no pair
            continue
        history = (EpochScores(int(best_epoch), {"score": float(best) / 100}), EpochScores(99, {"score": float(last) / 100}))
        runs.append(Run(Path(path), task, student, variant, variant == "undistilled", int(seed), "score", "finished",
                        int(best_epoch), history, float(seconds)))
    return runs


def main(report: str) -> None:
    (table,) = build_tables(runs_of(Path(report)))
    print("| epoch | variant | pairs | raw mean Δ ×100 | raw p | standardised mean Δ (sd) | standardised p |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for selection in ("best", "last"):
        for variant in table.variants[1:]:
            raw, standard = table.tests[(selection, variant)], table.standardised[(selection, variant)]
            print(f"| {selection} | {variant} | {raw.pairs} | {100 * raw.mean_difference:+.2f} | {raw.p:.3f} | "
                  f"{standard.mean_difference:+.2f} | {standard.p:.3f} |")
    for note in table.standardised_notes:
        print(f"\nLeft out of the standardised test: {note}")


if __name__ == "__main__":
    main(sys.argv[1])
