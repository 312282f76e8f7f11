"""`objective = "task"`: ARMADA on classification, regression and multiple choice (paper §3; armada.distill.task)."""

from armada.objectives import Objective, Term

# The terms of L_s in the order of eq. 2 and §3.3, as the report's loss-balance plot colours them.
ARMADA_TERMS = (Term("task", "0.55"), Term("soft", "tab:blue"), Term("aux", "tab:green"), Term("manifold", "tab:red"))

OBJECTIVE = Objective(
    name="task",
    summary="classes, choices or scores (the TS Aligner learns the labels)",
    trainer="armada.distill.task:TaskObjective",
    retired={"aligner_objective": "task"},
    terms=ARMADA_TERMS,
)
