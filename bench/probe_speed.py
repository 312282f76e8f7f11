"""`armada probe`'s seconds by part, on a synthetic cache the size of a replication task.

    .venv/bin/python bench/probe_speed.py [ROWS]        # default 3,000 training + 1,000 validation rows

A real cache (CacheWriter) of a file: task whose 5 labels the 384-d teacher vectors carry weakly, the
student's probe on MiniLM-L6's frozen embedding of the rows (the default student; a headline-length
text each). Prints the seconds of reading, the student's embedding and the three probes' fits.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from distill_tiny import write_rows, write_cache  # noqa: E402
from armada.config import FileTask  # noqa: E402
from armada.eval import probe  # noqa: E402
from armada.tasks import get_task  # noqa: E402

WORDS = "markets rally as the bank holds rates steady while the league title race tightens in the final week".split()


def weak_label_vectors(split, dim: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    out = rng.normal(size=(len(split), dim)).astype(np.float32)
    out[np.arange(len(split)), np.asarray(split.labels) % dim] += 0.8
    return out


def main(train: int) -> None:
    folder = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(1)
    paths = {}
    for split, count in (("train", train), ("validation", train // 3)):
        rows = [{"id": f"{split}-{i}", "text": " ".join(rng.choice(WORDS, 12)), "label": f"t{i % 5}"} for i in range(count)]
        paths[split] = str(write_rows(folder / f"{split}.jsonl", rows))
    tasks = {"bench": FileTask(train=paths["train"], validation=paths["validation"], labels=tuple(f"t{i}" for i in range(5)),
                               id_field="id")}
    task = get_task("file:bench", tasks)
    cache = write_cache(folder / "c.zarr", task, {s: task.load(s) for s in ("train", "validation")}, dim=384,
                        vectors=weak_label_vectors, shard_rows=2048)
    for student in ("", "minilm-l6"):
        started = time.perf_counter()
        result = probe.probe_cache(str(cache), "file:bench", student=student, max_length=64, file_tasks=tasks)
        total = time.perf_counter() - started
        print(f"{train} + {train // 3} rows, student {student or 'none'}: {total:.1f} s in all "
              f"({result.score('teacher').dev:.1f} teacher, {result.score('shuffled').dev:.1f} shuffled, chance "
              f"{result.chance:.1f})", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
