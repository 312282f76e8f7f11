"""Rows/s of piper-whisper teachers on bbc-news headlines (the default pipeline's teacher text), one process."""
import sys, time
from armada.extract.registry import load_teacher
from armada.tasks import get_task
n = int(sys.argv[2]); names = sys.argv[1].split(",")
split = get_task("bbc-news").load("train", limit=200, template="{title}")
texts = split.teacher_texts[100:100 + n]
for spec in names:
    name, _, padding = spec.partition(":")
    tables = {name: {"padding": padding}} if padding else {}
    t0 = time.perf_counter(); teacher = load_teacher(name, tables); load = time.perf_counter() - t0
    teacher.encode(texts[:2])                      # warm
    t0 = time.perf_counter(); out = teacher.encode(texts); sec = time.perf_counter() - t0
    print(f"{spec}: dim {teacher.dim}, load {load:.1f} s, {n} rows in {sec:.1f} s = {n/sec:.2f} rows/s", flush=True)
