"""Is the TS Aligner's RTE score (61.0 at its own best of 10 epochs) what a non-linear reader of the teacher vectors
finds, or the pick of the best epoch on 277 dev rows? An MLP of the aligner's shape (two hidden layers of 768, ReLU)
on the cached tiny.en vectors, cross-validated on the training rows and checked on dev, for three weight decays and
three initialisations.

    OMP_NUM_THREADS=1 .venv/bin/python results/replication/rte-authors/mlp_probe.py \
        /work/rep26r/cache/super_glue_rte--piper-whisper.zarr /work/shared/data/superglue
"""

import sys

import numpy as np
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from armada.distill.teacher_features import open_cache, split_settings
from armada.tasks import get_task

cache, data_dir = sys.argv[1], sys.argv[2]
task, reader = get_task("super_glue/rte"), open_cache(cache)
rows = {}
for name in ("train", "validation"):
    limit, template = split_settings(reader, name)
    split = task.load(name, data_dir=data_dir, limit=limit, template=template)
    rows[name] = reader.load(name, split.ids, split.teacher_hashes)[np.arange(len(split))], np.asarray(split.labels)
(x, y), (dev_x, dev_y) = rows["train"], rows["validation"]
for alpha in (1e-4, 1e-2, 1.0):
    for seed in (0, 1, 2):
        mlp = make_pipeline(StandardScaler(), MLPClassifier((768, 768), alpha=alpha, max_iter=200, early_stopping=True,
                                                            random_state=seed))
        cv = cross_val_score(mlp, x, y, cv=StratifiedKFold(5, shuffle=True, random_state=0))
        dev = mlp.fit(x, y).score(dev_x, dev_y)
        print(f"alpha {alpha:g} seed {seed}: cross-validated {100 * cv.mean():.1f} ± {100 * cv.std(ddof=1):.1f}, "
              f"dev {100 * dev:.1f}", flush=True)
