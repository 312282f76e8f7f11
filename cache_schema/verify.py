"""`armada cache verify`: re-hash every shard and report every fault, not just the first."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from armada.cache_schema.kd import nonfinite_parts
from armada.cache_schema.layout import Shard
from armada.cache_schema.reader import CacheReader
from armada.cache_schema.shards import ShardFault, name_rows, read_features, read_strings


@dataclass(frozen=True)
class Fault:
    split: str
    shard: Shard | None                     # None: the split as a whole
    kind: str                               # unfinished, missing, corrupted or nonfinite
    detail: str
    example_ids: tuple[str, ...] = ()       # the rows at fault, where known

    def __str__(self) -> str:
        where = f"{self.split} {self.shard}" if self.shard else f"{self.split}"
        ids = ""
        if self.example_ids:
            ids = ": example ids " + ", ".join(self.example_ids[:10]) + (", …" if len(self.example_ids) > 10 else "")
        return f"{where}: {self.kind}: {self.detail}{ids}"


@dataclass(frozen=True)
class Report:
    location: str
    shards: int                             # shards checked, over all splits
    faults: tuple[Fault, ...]

    @property
    def clean(self) -> bool:
        return not self.faults


def verify(location) -> Report:
    """Check every shard of every split: marker, features (every chunk), ids, hashes, finiteness.

    A KD cache's logits are columns of its features, checked as they are; their width against the
    teacher's labels is checked when the manifest is read (manifest.TeacherLogits.parse)."""
    faults: list[Fault] = []
    shards = 0
    with CacheReader(location, memory_budget=0) as reader:
        for split in reader.splits:
            layout = reader.layout(split)
            done, unfinished = reader.markers(layout)
            faults += [Fault(split, f.shard, f.kind, f.detail) for f in unfinished]
            id_parts = {}
            for shard in layout.shards:
                shards += 1
                marker = done.get(shard.index)
                if marker is None:
                    continue
                try:
                    id_parts[shard.index] = read_strings(reader.source, layout, "example_id", shard, marker.example_ids_sha256)
                except ShardFault as fault:
                    faults.append(Fault(split, shard, fault.kind, fault.detail))
                try:
                    read_strings(reader.source, layout, "text_sha256", shard, marker.text_sha256_sha256)
                except ShardFault as fault:
                    faults.append(Fault(split, shard, fault.kind, fault.detail))
                try:
                    values = np.empty((shard.rows, layout.dim), dtype=layout.dtype)
                    read_features(reader.source, layout, shard, marker, values, check_chunks=True)
                except ShardFault as fault:
                    detail = fault.detail
                    logits = reader.manifest.teacher.logits
                    if fault.kind == "nonfinite" and logits is not None:
                        detail += f" in {nonfinite_parts(logits, values[np.asarray(fault.rows) - shard.start])}"
                    faults.append(Fault(split, shard, fault.kind, detail, name_rows(id_parts.get(shard.index), shard, fault.rows)))
            if len(id_parts) == len(layout.shards):
                digest = hashlib.sha256(b"".join(id_parts[s.index] for s in layout.shards)).hexdigest()
                if digest != reader.manifest.dataset.splits[split].ids_sha256:
                    faults.append(Fault(split, None, "corrupted", "the example ids differ from those in the manifest"))
    return Report(str(location), shards, tuple(faults))
