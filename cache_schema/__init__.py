"""The teacher-feature cache: the only code that knows its on-disk layout.

A cache is a Zarr v3 directory store (zarr 3.x opens it as is):

    <cache>.zarr/
      zarr.json                         root group; its attributes are the manifest (manifest.py)
      <split>/                          one group per split: train/, validation/, test/
        zarr.json
        features/                       [rows, dim] float16 or float32, fill NaN
          zarr.json                     sharded: one shard = shard_rows rows, inner chunks of chunk_rows rows
          c/<shard>/0                   one file per shard: inner chunks (raw little-endian values, each with
                                        zarr's crc32c), then the shard index (with its crc32c)
          done/<shard>.json             the shard's marker, written last (layout.Marker)
        example_id/                     [rows] strings (vlen-utf8 + crc32c), one chunk per shard
          zarr.json, c/<shard>
        text_sha256/                    [rows] sha256 hex of each row's teacher text, same chunking
          zarr.json, c/<shard>

A text teacher's cache (a KD cache) is the same store: its features rows are [pooled state | logits],
and the manifest's teacher.logits names the columns, the task the teacher was trained on and what
each logit means (manifest.TeacherLogits; schema version 2); its text_sha256 hashes what a text
teacher reads, the student's input (armada.tasks.STUDENT_INPUT). `kd.check_kd_cache` refuses
such a cache for a task its logits do not answer.

A SeqKD cache (sequences.py) is another kind: a folder of a teacher LM's responses as text (JSON lines
and a manifest), read by a generative student in place of the references.

A shard is the unit of writing, resuming and verifying. It is done only when its marker exists:
rows, the crc32c of the features shard file, sha256 digests of its ids and text hashes, its
non-finite row count (always 0), and the config hash. Markers sit inside the features array's
folder, where zarr never lists, so opening the hierarchy raises no warnings. Values are stored
uncompressed: float16 teacher latents barely compress, and raw chunks let the reader copy whole
shards and read single rows at memcpy speed (bench/cache_io.py).

Writers (writer.CacheWriter) create the arrays up front, write whole shards from one process
each, and read every shard back before marking it. In object storage (s3://, bucket.py) the
same keys are objects, written by bucket_writer.BucketWriter from any number of nodes, one writer
per shard by claims (claims.py); open_writer picks the writer for a location. Readers
(reader.CacheReader) open a directory, a packed zip (`armada cache pack`), an http(s) URL of a
served directory or an s3:// URL; they check
the manifest, the markers and every id and teacher-text hash against the dataset, and never
return a fill value for data that is not there. `verify`, `pack` and the HDF5 round trip live in
share.py; a cache as a Hugging Face dataset (Parquet and a dataset card, read back by hf:DIR or
hf:org/name) in hf_layout.py, hf_card.py, hf_export.py, hf_reader.py, hf_hub.py and hf_publish.py.
"""

from armada.cache_schema.encoding import strings_digest
from armada.cache_schema.kd import check_kd_cache
from armada.cache_schema.layout import Shard
from armada.cache_schema.manifest import (DatasetInfo, Extraction, Manifest, SplitInfo, TeacherInfo, TeacherLogits,
                                          chunk_rows_for, manifest_diff)
from armada.cache_schema.reader import CacheReader, Features, SplitStatus
from armada.cache_schema.writer import CacheWriter


def open_writer(location, manifest: Manifest, overwrite: bool = False):
    """A CacheWriter for a local path, a BucketWriter (bucket_writer.py) for an s3:// (gs://, az://) URL."""
    from armada.cache_schema.bucket import is_url

    if is_url(location):
        from armada.cache_schema.bucket_writer import BucketWriter

        return BucketWriter.create(str(location), manifest, overwrite)
    return CacheWriter.create(location, manifest, overwrite)

__all__ = [
    "CacheReader", "CacheWriter", "DatasetInfo", "Extraction", "Features", "Manifest", "Shard", "SplitInfo",
    "SplitStatus", "TeacherInfo", "TeacherLogits", "check_kd_cache", "chunk_rows_for", "manifest_diff", "open_writer",
    "strings_digest",
]
