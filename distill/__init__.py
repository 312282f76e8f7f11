"""Stage 2: ARMADA training of a language-only student against a teacher-feature cache.

  students.py          student aliases, loading any transformers backbone, pooling
  heads.py             F̃_s, O_s, P_s, O_aux_s and the TS Aligner (F̃_ts, O_ts, P_ts, O_aux_ts)
  losses.py            the paper's eq. 1-5, auxiliary losses, L_t and L_s
  data.py              tokenised splits, per-batch padding, teacher vectors by position, epoch orders
  teacher_features.py  the cache's vectors for a run's splits, checked
  build.py             models and optimizers from the settings
  loop.py              an epoch's steps (joint or alternating), validation scoring across processes
  checkpoint.py        epoch checkpoints (safetensors + JSON) and exact resume
  run_dir.py           config.toml, metrics.jsonl, run.json and the best epoch's export
  train.py             train(): the whole run, as `armada distill` and `armada run` call it
  lm_data.py           generative students: prompt → response ids, labels on the response only, the pooled position
  lm.py                train_lm(): the `objective = "lm"` recipe (LM loss + manifold, reconstruction-trained aligner)
  model.py             the public API on a finished run: load_student, predict, load_aligner, predict_aligner,
                       aligner_projection, load_causal_student
"""
