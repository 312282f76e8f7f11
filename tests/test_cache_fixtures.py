"""Builders the cache tests share: small manifests, rows and finished caches (no tests here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from armada.cache_schema import (CacheWriter, DatasetInfo, Extraction, Manifest, SplitInfo, TeacherInfo,
                                 strings_digest)
from armada.tasks import sha256_text

CREATED = "2026-01-01T00:00:00+00:00"       # fixed, so two caches of the same settings are byte-identical


@dataclass(frozen=True)
class Rows:
    features: np.ndarray                    # float32 [n, dim]
    ids: list[str]
    hashes: list[str]


def rows_for(n: int, dim: int, seed: int = 0, prefix: str = "ex") -> Rows:
    rng = np.random.default_rng(seed)
    ids = [f"{prefix}-{i}-é" for i in range(n)]
    return Rows(rng.standard_normal((n, dim)).astype(np.float32), ids, [sha256_text(f"text of {i}") for i in ids])


def manifest_for(splits: dict[str, Rows], dim: int, shard_rows: int = 4, chunk_rows: int = 2, dtype: str = "float16",
                 provenance: dict | None = None) -> Manifest:
    return Manifest(
        TeacherInfo("toy", "test", dim, provenance if provenance is not None else {"model": "toy/model", "steps": 20}),
        Extraction(dtype, shard_rows, chunk_rows, "{text}"),
        DatasetInfo("toy-task", "tests", {name: SplitInfo(len(r.ids), f"fp-{name}", strings_digest(r.ids))
                                          for name, r in splits.items()}),
        created=CREATED,
    )


def write_all(writer: CacheWriter, splits: dict[str, Rows]) -> None:
    for name, r in splits.items():
        for s in writer.pending(name):
            writer.write_shard(name, s.index, r.features[s.start:s.stop], r.ids[s.start:s.stop], r.hashes[s.start:s.stop])


def build_cache(path: Path, rows: int = 10, dim: int = 8, **settings) -> tuple[Manifest, dict[str, Rows]]:
    """A finished cache with a train and a validation split."""
    splits = {"train": rows_for(rows, dim), "validation": rows_for(max(1, rows // 2), dim, seed=1, prefix="val")}
    manifest = manifest_for(splits, dim, **settings)
    write_all(CacheWriter.create(path, manifest), splits)
    return manifest, splits


def store_bytes(path: Path) -> dict[str, bytes]:
    """Every file of a cache by relative path: two caches are identical when these are."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
