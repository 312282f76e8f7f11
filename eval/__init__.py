"""The scoring stage, installed as armada.eval: one finished run's student (or its TS Aligner alone)
scored on a split, its scores and predictions written into the run folder through armada.run_schema
(`armada eval`, and `armada run` after each run). Reports over many runs are armada.reporting's.

  evaluate.py      score_run: a task student by its outputs (evaluate_run), a generative one by what it
                   writes (evaluate_generative)
  generation.py    batched greedy or beam generation with fixed decoding settings
  generative.py    a generation task's split scored: RougeL, or answers read from the text
  likelihood.py    multiple choice scored by each choice's log-likelihood
  answers.py       reading an answer (a number, an option, true/false) out of generated text
  rouge.py         RougeL against one or several references
"""
