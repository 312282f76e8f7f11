"""Paired comparison of two caches' teacher probes on the same rows: the dev-accuracy difference with a paired
bootstrap interval (the same resampled dev rows for both), and the McNemar-style count of rows each gets alone.

    .venv/bin/python results/teachers/paired.py CACHE_A CACHE_B [TASK [DATA_DIR]]
"""

import sys

import numpy as np

from armada.distill.teacher_features import open_cache, split_settings
from armada.eval.probe import _fit, probe_scores
from armada.tasks import get_task


def arrays(cache, task, data_dir):
    reader = open_cache(cache)
    out = {}
    for name in ("train", "validation"):
        limit, template = split_settings(reader, name)
        split = task.load(name, data_dir=data_dir, limit=limit, template=template)
        out[name] = (reader.load(name, split.ids, split.teacher_hashes)[np.arange(len(split))], np.asarray(split.labels))
    return out


task = get_task(sys.argv[3] if len(sys.argv) > 3 else "bbc-news")
data_dir = sys.argv[4] if len(sys.argv) > 4 else ""
a, b = arrays(sys.argv[1], task, data_dir), arrays(sys.argv[2], task, data_dir)
assert (a["validation"][1] == b["validation"][1]).all() and (a["train"][1] == b["train"][1]).all()
right = []
for data in (a, b):
    (x, y), (dx, dy) = data["train"], data["validation"]
    strength = probe_scores("teacher", x, y, None, None, False, 5, 0).strength
    right.append(_fit(x, y, False, strength, 0).predict(dx) == dy)
draws = np.random.default_rng(0).integers(0, len(dy), size=(1000, len(dy)))
differences = [(right[1][d].mean() - right[0][d].mean()) * 100 for d in draws]
low, high = np.percentile(differences, [2.5, 97.5])
print(f"{sys.argv[2]} − {sys.argv[1]}: {100 * (right[1].mean() - right[0].mean()):+.1f} [{low:+.1f}, {high:+.1f}] "
      f"on {len(dy)} dev rows; right only with A: {(right[0] & ~right[1]).sum()}, only with B: {(right[1] & ~right[0]).sum()}")
