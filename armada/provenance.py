"""What a result was produced with: the command, the machine, the library versions, the wall-clock.

`armada run` writes it beside its report (provenance.json), with the resolved pipeline
(pipeline.toml), so a table can be traced to how it was made.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from pathlib import Path

PACKAGES = ("armada", "torch", "transformers", "diffusers", "accelerate", "peft", "safetensors", "zarr", "numpy",
            "scipy", "scikit-learn", "datasets", "piper-tts", "faster-whisper", "ctranslate2", "gguf", "rouge-score")


def machine() -> dict:
    """The CPU model and count, memory and accelerator of this machine."""
    import torch

    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                    if line.startswith("model name")), cpu)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else None
    return {
        "platform": platform.platform(), "python": platform.python_version(), "cpu": cpu,
        "cpu_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": None if memory is None else round(memory / 2**30, 1), "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of `packages` (those not installed left out)."""
    found = {}
    for name in packages:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def record(command: list[str] | None, started: float, finished: float) -> dict:
    from datetime import datetime, timezone

    def utc(t: float) -> str:
        return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")

    return {"command": command if command is not None else sys.argv, "started": utc(started), "finished": utc(finished),
            "seconds": round(finished - started, 1), "machine": machine(), "versions": versions()}
