"""What a finished run warns about, read from its epochs' records: an alignment term that took over the
student's gradient (the loss balance), or a kept student that predicts one class for every dev example.
Any objective whose epochs record these is checked."""

from __future__ import annotations

from armada.run_schema import EpochRecord

ALIGNMENT_TERMS = ("soft", "aux", "manifold")
SWAMPED = 0.8                   # an alignment term with more of the gradient than this has taken over


def training_warnings(epochs: tuple[EpochRecord, ...], best_epoch: int) -> list[str]:
    warnings = []
    for term in ALIGNMENT_TERMS:
        swamped = [line.epoch for line in epochs if (line.balance or {}).get(term, 0.0) > SWAMPED]
        if swamped:
            worst = max(line.balance[term] for line in epochs if line.epoch in swamped)
            warnings.append(f"the {term} term took more than {SWAMPED:.0%} of the gradient reaching the backbone in "
                            f"epoch(s) {swamped} (up to {worst:.0%}): it, not the task, trained the student; lower its "
                            "weight (beta for manifold, alpha for soft, gamma for aux) or use manifold_form = \"mse\"")
    best = next((line for line in epochs if line.epoch == best_epoch), None)
    if best is not None and best.diagnostics.get("dev_predicted_classes") == 1:
        warnings.append(f"the kept student (epoch {best_epoch}) predicts one class for every dev example: it has "
                        "learned the majority class, not the task")
    return warnings
