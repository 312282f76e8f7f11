"""The extract stage, installed as armada.extract: a teacher turns every text of a task's splits into a
vector, once, written into a cache through armada.cache_schema (the only code that knows its layout).
It owns the teachers and the extraction processes.

  registry.py          teacher names → family and settings; building a teacher
  settings.py          every family's settings, with their defaults
  teacher.py           what every teacher is, and the pieces the families share
  diffusion.py, video.py, speech.py, piper_whisper.py, http.py, text.py    the teacher families
  pooling.py           a latent [B, C, h, w] → one row per example (image, video and http teachers)
  job.py               an extraction job (JSON-able, for worker processes) and what a process reports
  runner.py            run_extract(): here, in spawned workers, or as one of a launcher's processes
  processes.py         several extraction processes: launched, spawned, their progress and results
  worker.py            one process's part: its shards, texts deduplicated, the manifest
"""
