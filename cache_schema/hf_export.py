"""A finished cache to a Hugging Face dataset folder (hf_layout.py) and back.

Export streams: the cache is read shard by shard and written one row group at a time, so memory holds one row
group (hf_layout.GROUP_VALUES) whatever the cache's size (bench/hf_export.py measures it). The folder is
built under a temporary name and renamed, so it is never half an export.

Labels: a cache holds ids and teacher-text hashes, not labels; the task's data holds them. A team loading the
export with `datasets` alone needs them, so `export_hf` is given the task's splits (read the way the cache's were)
and adds a `label` column, after checking each split's fingerprint (ids, teacher texts, labels) against the one
the cache was extracted with: the labels are exactly those of the cache's rows. Without the data
(`labelled=None`) it exports what the cache holds, and the card says so.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from armada.cache_schema.bucket import refuse_url
from armada.cache_schema.hf_card import render
from armada.cache_schema.hf_layout import CARD, INFO, ExportInfo, LabelColumn, rows_for
from armada.cache_schema.hf_reader import ExportReader
from armada.cache_schema.reader import CacheReader
from armada.cache_schema.writer import CacheWriter
from armada.errors import ArmadaError
from armada.files import check_writable_folder, replacing


def export_hf(location, out: str | os.PathLike, *, labelled: dict | None = None, license: str | None = None,
              command: str = "", load_as: str | None = None) -> Path:
    """Write the finished cache at `location` as a dataset folder `out`. `labelled`: {split: armada.tasks.Split}
    read with the cache's limits and teacher template, for the label column (None: no label column); `load_as`:
    the name the card loads it by (default `out`; a Hub repository when it is published)."""
    refuse_url(out, "a Hugging Face dataset export (the folder to write)")
    out = Path(out)
    if out.exists():
        raise ArmadaError(f"{out} already exists: remove it or choose another folder")
    check_writable_folder(out, "cache export OUT")
    with CacheReader(location) as reader:
        manifest = reader.manifest
        labels = _labels(manifest, labelled, location) if labelled is not None else None
        task = next(iter(labelled.values())).task if labelled else None
        column = None
        if labels is not None and any(v is not None for values in labels.values() for v in values):
            column = LabelColumn(task.kind, tuple(task.labels))
        info = ExportInfo(manifest, column, *rows_for(manifest.teacher.dim, manifest.extraction.dtype), command)
        for split in reader.splits:             # refuse an unfinished cache before writing anything
            status = reader.status(split)
            if not status.complete:
                raise ArmadaError(f"cannot export {location}: split {split} is unfinished ({len(status.unfinished)} "
                                  f"of {status.shards_total} shards not done); finish the extraction first")
        out.parent.mkdir(parents=True, exist_ok=True)
        with replacing(out) as partial:
            (partial / "data").mkdir(parents=True)
            sizes = {split: _write_split(reader, info, split, partial, labels[split] if column else None)
                     for split in reader.splits}
            (partial / INFO).write_text(info.to_json(), encoding="utf-8")
            (partial / CARD).write_text(render(info, sizes, license, load_as or str(out)), encoding="utf-8")
    return out


def _labels(manifest, labelled: dict, location) -> dict[str, list]:
    """Each split's labels, once its fingerprint proves the task's rows are the cache's."""
    labels = {}
    for split, info in manifest.dataset.splits.items():
        rows = labelled.get(split)
        if rows is None:
            raise ArmadaError(f"cannot label {location}: no task rows were given for its split {split}")
        if rows.task.name != manifest.dataset.task:
            raise ArmadaError(f"cannot label {location} with {rows.task.name}'s rows: it holds {manifest.dataset.task}")
        if rows.fingerprint() != info.fingerprint:
            raise ArmadaError(f"cannot label {location}: the task's {split} rows read from {rows.source} ({len(rows)} "
                              f"rows) are not those the cache was extracted from ({info.rows} rows, limit "
                              f"{info.limit}; ids, teacher texts or labels differ); give the data the cache was "
                              "made from (--data-dir), or export without labels (--no-labels)")
        labels[split] = rows.labels
    return labels


def _write_split(reader: CacheReader, info: ExportInfo, split: str, folder: Path,
                 labels: list | None) -> tuple[int, int]:
    """Write one split's files, a row group at a time; (bytes in Arrow, as `datasets` counts num_bytes; bytes on disk)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema, dim = info.schema(), info.dim
    group = _RowGroup(info.group_rows, dim, info.dtype)
    names, file_rows = info.files(split), info.file_rows
    writer, written, arrow_bytes, file_bytes = None, 0, 0, 0

    def flush() -> None:
        nonlocal writer, written, arrow_bytes, file_bytes
        if writer is None:
            path = folder / names[written // file_rows]
            writer = pq.ParquetWriter(path, schema, compression={"example_id": "zstd", "text_sha256": "zstd",
                                                                 "label": "zstd", "vector": "none"},
                                      use_dictionary=False, write_statistics=["example_id"],
                                      write_page_index=True, write_page_checksum=True)
        ids, hashes, vectors = group.take()
        columns = [pa.array(ids, pa.string()), pa.array(hashes, pa.string())]
        if labels is not None:
            columns.append(pa.array(labels[written: written + len(ids)], info.label.arrow_type()))
        columns.append(pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim))
        table = pa.Table.from_arrays(columns, schema=schema)
        writer.write_table(table, row_group_size=len(ids))
        arrow_bytes += table.nbytes
        written += len(ids)
        if written % file_rows == 0 or written == info.rows(split):
            writer.close()
            file_bytes += (folder / names[(written - 1) // file_rows]).stat().st_size
            writer = None

    for shard, values, ids, hashes in reader.read_shards(split):
        at = 0
        while at < shard.rows:
            at += group.add(values[at:], ids[at:], hashes[at:])
            if group.full:
                flush()
    if group.rows:
        flush()
    return arrow_bytes, file_bytes


class _RowGroup:
    """The rows of the row group being filled: one preallocated block, reused."""

    def __init__(self, capacity: int, dim: int, dtype: np.dtype):
        self.vectors = np.empty((capacity, dim), dtype=dtype)
        self.ids: list[str] = []
        self.hashes: list[str] = []

    @property
    def rows(self) -> int:
        return len(self.ids)

    @property
    def full(self) -> bool:
        return self.rows == len(self.vectors)

    def add(self, values: np.ndarray, ids: list[str], hashes: list[str]) -> int:
        """Take as many of the rows as fit; how many it took."""
        n = min(len(values), len(self.vectors) - self.rows)
        self.vectors[self.rows: self.rows + n] = values[:n]
        self.ids += ids[:n]
        self.hashes += hashes[:n]
        return n

    def take(self) -> tuple[list[str], list[str], np.ndarray]:
        ids, hashes, vectors = self.ids, self.hashes, self.vectors[: self.rows]
        self.ids, self.hashes = [], []
        return ids, hashes, vectors


def import_hf(location: str, out: str | os.PathLike) -> Path:
    """A cache at `out` (markers and all) from an export: the one it was made from, file for file."""
    from armada.cache_schema.hf_reader import open_hf

    refuse_url(out, "the cache a Hugging Face dataset is imported into")
    if Path(out).exists():
        raise ArmadaError(f"{out} already exists: import into a new folder")
    check_writable_folder(out, "cache import OUT")
    with open_hf(location) as export:
        for split in export.splits:             # ids, labels and vectors checked before anything is written
            export.read_split(split, keep_vectors=False)
        writer = CacheWriter.create(out, export.manifest)
        for split in export.splits:
            _import_split(export, writer, split)
    return Path(out)


def _import_split(export: ExportReader, writer: CacheWriter, split: str) -> None:
    """Refill the cache's shards from the row groups, one shard in memory at a time."""
    shards = iter(writer.shards(split))
    shard = next(shards, None)
    dim, dtype = export.info.dim, export.info.dtype
    vectors, ids, hashes = None, [], []
    for batch in export.batches(split):
        at = 0
        while shard is not None and at < len(batch.ids):
            if vectors is None:
                vectors, ids, hashes = np.empty((shard.rows, dim), dtype=dtype), [], []
            n = min(shard.rows - len(ids), len(batch.ids) - at)
            vectors[len(ids): len(ids) + n] = batch.vectors[at: at + n]
            ids += batch.ids[at: at + n]
            hashes += batch.hashes[at: at + n]
            at += n
            if len(ids) == shard.rows:
                writer.write_shard(split, shard.index, vectors, ids, hashes)
                shard, vectors = next(shards, None), None
