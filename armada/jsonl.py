"""The one reader of JSON Lines files (task files, metrics.jsonl, SeqKD responses): each row a JSON object,
and every fault named by file and line (`path:line`), whatever it is: a byte that is not UTF-8, a line that is
not JSON, or a line that is JSON but not an object (a bare number, an array, a string)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterator

from armada.errors import ArmadaError

BOM = b"\xef\xbb\xbf"       # some editors start UTF-8 files with one; it is not part of the first row


def read_jsonl(path: str | Path) -> Iterator[tuple[str, dict]]:
    """("path:line", row) for every non-blank line of `path`; ArmadaError naming the line where one is not a
    JSON object."""
    path = Path(path)
    try:
        handle = open(path, "rb")
    except OSError as e:
        raise ArmadaError(f"{path}: cannot be read: {e.strerror}") from None
    with handle:
        for line_no, raw in enumerate(handle, start=1):
            where = f"{path}:{line_no}"
            if line_no == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ArmadaError(f"{where}: not UTF-8 text (byte {raw[e.start]:#04x} at column {e.start + 1}); "
                                  "save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ArmadaError(f"{where}: not valid JSON: {e}") from None
            if not isinstance(row, dict):
                raise ArmadaError(f"{where}: a JSON {_kind(row)}, where each line must be one JSON object "
                                  '({"field": value, ...})')
            yield where, row


def _kind(value) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def json_text(value, **options) -> str:
    """`value` as strict JSON: a NaN or an infinity (which json.dumps writes as bare NaN/Infinity, which no JSON
    reader accepts) becomes null, "undefined" as the records read it."""
    return json.dumps(_finite(value), allow_nan=False, **options)


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
