"""Reading a cache exported as a Hugging Face dataset (hf_layout.py): a folder, or a dataset repository on the Hub.

`open_hf("hf:DIR")` or `open_hf("hf:org/name@revision")` gives a reader with CacheReader's interface for training
(manifest, load, close): distilling from an export is distilling from the cache it came from, with the same id
and teacher-text checks. Before any row is used, the card's header and every file's columns are checked against
armada.json, and a split's ids against the manifest's digest; with a label column, the labels against the split
fingerprint the cache was extracted with. Vectors are read whole into memory (the export has no chunk index to
read single rows from): a split above the memory budget is refused with the way round it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from armada.cache_schema.encoding import nonfinite_rows, strings_digest
from armada.cache_schema.hf_card import read_header
from armada.cache_schema.hf_layout import CARD, HASH, ID, LABEL, VECTOR, ExportInfo, check_header, check_schema, split_files
from armada.cache_schema.reader import Features, _InMemory, check_texts, rows_of
from armada.errors import ArmadaError
from armada.tasks.model import split_fingerprint

PREFIX = "hf:"


@dataclass(frozen=True)
class Batch:
    """One row group of a split."""

    start: int                              # its first row in the split
    ids: list[str]
    hashes: list[str]
    labels: list | None                     # None without a label column
    vectors: np.ndarray                     # [rows, dim], the stored dtype


class ExportReader:
    """An exported cache, checked when opened: the card and every file's schema against armada.json.

    Example:
        with open_hf("hf:exports/bbc-news--piper-whisper") as reader:
            feats = reader.load("train", split.ids, split.teacher_hashes)
    """

    def __init__(self, folder: str | Path, location: str | None = None, memory_budget: int = 2 * 2**30):
        self.folder = Path(folder)
        self.location = location or f"{PREFIX}{folder}"
        self.memory_budget = memory_budget
        if not self.folder.is_dir():
            raise ArmadaError(f"{self.location}: no folder {self.folder}; give an exported cache's folder "
                              "(armada cache export --format hf) or a Hub dataset as hf:org/name")
        self.info = ExportInfo.read(self.folder)
        self.manifest = self.info.manifest
        card = self.folder / CARD
        if not card.is_file():
            raise ArmadaError(f"{self.location}: the export has no {CARD} (its dataset card); copy the whole export")
        check_header(self.info, read_header(card.read_text(encoding="utf-8"), str(card)), str(card))
        self._files = {split: split_files(self.folder, self.info, split) for split in self.manifest.dataset.splits}
        for files in self._files.values():
            for path in files:
                check_schema(self.info, _parquet(path).schema_arrow, str(path))

    def __enter__(self) -> "ExportReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Nothing stays open between reads."""

    @property
    def splits(self) -> list[str]:
        return list(self.manifest.dataset.splits)

    def batches(self, split: str) -> Iterator[Batch]:
        """The split's rows, one row group at a time, after checking its files' row count against the manifest."""
        parquets = [_parquet(path) for path in self._files[split]]
        found, expected = sum(p.metadata.num_rows for p in parquets), self.info.rows(split)
        if found != expected:
            raise ArmadaError(f"{self.location}: split {split} has {found} rows in its files, its manifest {expected}; "
                              "the export is damaged or incomplete: export or download it again")
        start = 0
        for parquet in parquets:
            for group in range(parquet.num_row_groups):
                table = parquet.read_row_group(group)
                rows = table.num_rows
                vectors = table.column(VECTOR).combine_chunks().flatten().to_numpy(zero_copy_only=False)
                labels = table.column(LABEL).to_pylist() if self.info.label is not None else None
                yield Batch(start, table.column(ID).to_pylist(), table.column(HASH).to_pylist(), labels,
                            vectors.reshape(rows, self.info.dim))
                start += rows

    def read_split(self, split: str, keep_vectors: bool = True) -> tuple[list[str], list[str], np.ndarray | None]:
        """(ids, teacher-text hashes, vectors or None) of a whole split, after checking the ids against the
        manifest, the labels against the split's fingerprint, and every vector finite."""
        if split not in self.manifest.dataset.splits:
            raise ArmadaError(f"{self.location} has no split {split!r}; it has {self.splits}")
        rows, dim, dtype = self.info.rows(split), self.info.dim, self.info.dtype
        if keep_vectors and rows * dim * dtype.itemsize > self.memory_budget:
            raise ArmadaError(f"{self.location}: split {split} holds {rows * dim * dtype.itemsize / 2**30:.1f} GiB of "
                              f"vectors, more than the {self.memory_budget / 2**30:.1f} GiB read into memory; turn it into "
                              "a cache once, which is read on demand: armada cache import --format hf "
                              f"{self.folder} CACHE.zarr, then --cache CACHE.zarr")
        ids, hashes, labels = [], [], []
        vectors = np.empty((rows, dim), dtype=dtype) if keep_vectors else None
        for batch in self.batches(split):
            bad = nonfinite_rows(batch.vectors)
            if bad.size:
                named = ", ".join(batch.ids[i] for i in bad[:5].tolist())
                raise ArmadaError(f"{self.location}: split {split}: {bad.size} vectors hold NaN or infinite values "
                                  f"(example ids {named}); a cache never holds them: the export is damaged")
            ids += batch.ids
            hashes += batch.hashes
            labels += batch.labels or []
            if vectors is not None:
                vectors[batch.start: batch.start + len(batch.ids)] = batch.vectors
        info = self.manifest.dataset.splits[split]
        if strings_digest(ids) != info.ids_sha256:
            raise ArmadaError(f"{self.location}: the example ids of split {split} differ from those its manifest "
                              "records (rows edited, reordered or dropped); export the cache again")
        if self.info.label is not None and \
                split_fingerprint(self.manifest.dataset.task, split, zip(ids, hashes, labels)) != info.fingerprint:
            raise ArmadaError(f"{self.location}: the {LABEL} or {HASH} column of split {split} differs from the "
                              "rows the cache was extracted from (its manifest's fingerprint); export the cache again")
        return ids, hashes, vectors

    def load(self, split: str, example_ids: Sequence[str], text_hashes: Sequence[str]) -> Features:
        """Vectors for `example_ids`, in that order, checked as CacheReader.load checks a cache's."""
        ids, hashes = list(example_ids), list(text_hashes)
        if len(ids) != len(hashes):
            raise ArmadaError(f"load({split!r}): {len(ids)} example ids but {len(hashes)} teacher-text hashes")
        stored_ids, stored_hashes, vectors = self.read_split(split)
        rows = (np.arange(len(ids), dtype=np.int64) if ids == stored_ids
                else rows_of(self.location, self.manifest, split, stored_ids, ids))
        check_texts(self.location, ids, hashes, rows, stored_hashes)
        return Features(rows, self.info.dim, _InMemory(vectors), ids)


def _parquet(path: Path):
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path, page_checksum_verification=True)
    except (OSError, ValueError) as e:
        raise ArmadaError(f"{path} is not a readable Parquet file: {e}") from None


def open_hf(location: str, memory_budget: int = 2 * 2**30) -> ExportReader:
    """`hf:DIR` (an export's folder) or `hf:org/name[@revision]` (a dataset repository on the Hub, downloaded
    through huggingface_hub into its cache; the location recorded names the commit it resolved to)."""
    target = location[len(PREFIX):] if location.startswith(PREFIX) else location
    if Path(target).is_dir():
        return ExportReader(target, location, memory_budget)
    from armada.cache_schema.hf_hub import download

    try:
        folder, pinned = download(target)
    except ArmadaError as e:
        raise ArmadaError(f"{location}: no folder {target} here, and from the Hub: {e}") from None
    return ExportReader(folder, PREFIX + pinned, memory_budget)
