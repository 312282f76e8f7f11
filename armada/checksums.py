"""Checksums of the files a later command trusts (epoch checkpoints, a run's kept student, its aligner): written
with them, checked before they are used. A file that no longer matches is named with what to do; it is never
loaded and never passed over in silence.

A folder's checksums are a JSON map {file name: {"bytes": size, "sha256": hex}} kept beside (or inside) it; a
single safetensors file carries the SHA-256 of its tensor data in its own metadata (the header, which holds the
checksum, is left out of it)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Mapping

from armada.errors import ArmadaError

CHUNK = 1 << 22
TENSOR_DATA_KEY = "armada_sha256"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def folder_checksums(folder: Path, leave_out: tuple[str, ...] = ()) -> dict[str, dict]:
    """{name: {"bytes", "sha256"}} for every file directly in `folder` but those left out."""
    return {p.name: {"bytes": p.stat().st_size, "sha256": sha256_of(p)}
            for p in sorted(folder.iterdir()) if p.is_file() and p.name not in leave_out}


def folder_fault(folder: Path, recorded: Mapping[str, Mapping | int]) -> str | None:
    """What is wrong with `folder` against its recorded checksums, naming the first damaged file; None where every
    file is whole. An entry that is a bare size (markers written before checksums) is checked by size only."""
    for name, expected in recorded.items():
        path = folder / name
        if not path.is_file():
            return f"{path} is missing"
        size = expected if isinstance(expected, int) else expected.get("bytes")
        if size is not None and path.stat().st_size != size:
            return f"{path} has {path.stat().st_size} bytes where {size} were written (truncated or replaced)"
        if isinstance(expected, Mapping) and expected.get("sha256") and sha256_of(path) != expected["sha256"]:
            return f"{path} does not match the SHA-256 written with it (its bytes changed since)"
    return None


def safetensors_bytes(tensors: dict, metadata: Mapping[str, str]) -> bytes:
    """A safetensors file of `tensors` whose metadata also holds the SHA-256 of its tensor data. The header is written
    here with its keys sorted: safetensors keeps metadata in a hash map whose order changes from process to process,
    so the same tensors would otherwise give other bytes in another process."""
    from safetensors.torch import save

    plain = save(tensors)
    length = int.from_bytes(plain[:8], "little")
    header, data = json.loads(plain[8:8 + length]), plain[8 + length:]
    header["__metadata__"] = {**metadata, TENSOR_DATA_KEY: hashlib.sha256(data).hexdigest()}
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)             # the format pads its header to 8 bytes with spaces
    return len(text).to_bytes(8, "little") + text + data


def safetensors_fault(path: Path) -> str | None:
    """What is wrong with a safetensors file written by safetensors_bytes; None where it is whole. One written
    before files carried a checksum is checked by its length against what its header describes."""
    data = path.read_bytes()
    try:
        length = int.from_bytes(data[:8], "little")
        if len(data) < 8 or 8 + length > len(data):
            raise ValueError("shorter than its header says")
        header = json.loads(data[8:8 + length])
        metadata = header.get("__metadata__") or {}
        described = 8 + length + max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"),
                                     default=0)
    except (ValueError, UnicodeDecodeError, AttributeError, KeyError, TypeError, IndexError) as e:
        return f"{path} is not a whole safetensors file ({e})"
    expected = metadata.get(TENSOR_DATA_KEY)
    if expected is None:
        return None if described == len(data) else f"{path} has {len(data)} bytes where its header describes {described}"
    if described != len(data) or hashlib.sha256(data[8 + length:]).hexdigest() != expected:
        return f"{path} does not match the SHA-256 written with it (truncated, or its bytes changed since)"
    return None


def refuse_damaged(fault: str | None, what_to_do: str) -> None:
    if fault:
        raise ArmadaError(f"{fault}; it was not used. {what_to_do}")
