"""The distill stage, installed as armada.distill: students trained against a teacher-feature cache (read
through armada.cache_schema), each into a run folder (written through armada.run_schema). It owns the
models, the losses and the one training recipe; what one kind of run learns is an objective.

  request.py           a run as `armada distill` asks for it: the cache's task, the settings, folder and rows
  inputs.py            what every run does first: a finished run returned, the cache opened and checked, the rows
  recipe.py            train(): the one recipe (set up, resume, epochs, keep the best, record, finish)
  objective.py         what an objective answers (build, data, losses, dev scores, record); the one a run names
                       (its declaration in armada.objectives says which class)
  training_data.py     what an objective hands the loop: its batches and notes
  task.py              TaskObjective: classification, regression, multiple choice (the paper's §3)
  kd.py                KDObjective: the task objective plus Hinton KD from a text teacher's logits
  lm.py                LMObjective: a causal LM on prompt → response, reconstruction-trained aligner (§4)
  loop.py              an epoch's steps (joint or alternating), the loss balance, scoring across processes
  health.py            what a finished run warns about (a swamping loss term, one predicted class)
  students.py          student aliases, loading any transformers backbone, pooling
  heads.py             F̃_s, O_s, P_s, O_aux_s and the TS Aligner (F̃_ts, O_ts, P_ts, O_aux_ts)
  losses.py            the paper's eq. 1-5, auxiliary losses, L_t and L_s
  data.py              tokenised splits, per-batch padding, teacher vectors by position, epoch orders
  lm_data.py           generative students: prompt → response ids, labels on the response only, the pooled position
  teacher_features.py  the cache's vectors for a run's splits, checked
  build.py             models and optimizers from the settings
  checkpoint.py        epoch checkpoints (safetensors + JSON) and exact resume
  model.py             the saved student and aligner, and the public API on a finished run: load_student,
                       predict, load_aligner, predict_aligner, aligner_projection, load_causal_student
"""
