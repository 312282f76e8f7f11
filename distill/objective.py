"""A training objective: what one kind of run learns and how it is scored, all that differs between runs.

armada.distill.recipe trains every objective the same way (check the inputs, set up the processes
and optimizers, resume, train the epochs, keep the best one, record it, finish). An objective is a
class built from the run's settings and task that answers, in this order:

  name, metric, lower_is_better     what the run's record says: its name, its primary dev score ("" where
                                    there is none: the last epoch is kept)
  selection, aligner_selection      the dev score the student's best epoch is chosen by, and the aligner
                                    score its own best epoch is (with aligner_kept = "own-best")
  prediction_range                  where regression scores are clipped when scored (None: not at all)
  splits()                          the task's splits the run reads (train first)
  check(splits)                     refuse data it cannot train on, before anything is written
  build(teacher_dim)                (student, tokenizer, aligner); teacher_dim None for the baseline,
                                    aligner None where the objective has none
  data(tokenizer, student, splits, teacher) -> TrainingData (armada.distill.training_data)
  aligner_losses(batch, aligner_outputs)          {"loss_t": L_t, parts...}
  student_losses(student, batch, aligner_outputs) {"loss_s": L_s, parts...}; aligner_outputs None
                                    without an aligner (the batch still carries the teacher's vectors)
  dev_scores(accelerator, student, aligner, teacher)
                                    -> (dev scores, aligner dev scores or None, further epoch fields)
  record_details()                  what it adds to the run's record

The loop (armada.distill.loop) optimises loss_s and loss_t and reports every key per epoch; keys
"share:TERM" are a term's share of the gradient (the epoch's loss balance).

Another objective is one more class and its declaration in armada.objectives (its settings, whether
it is generative, its loss terms: what every other stage asks of it), which names the class:
armada.distill.kd (Hinton KD from a text teacher's cached logits) is the task objective with one more term.
"""

from __future__ import annotations

from typing import Any

from armada.config import DistillConfig
from armada.objectives import declaration
from armada.tasks import Task


def objective_for(config: DistillConfig, task: Task) -> Any:
    """The objective `config.objective` names, for `task` (which it may refuse)."""
    return declaration(config.objective).trainer_class()(config, task)
