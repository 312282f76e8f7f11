"""Read-only access to a cache's keys: a directory, a packed zip file, an http(s) URL or object storage (bucket.py).

Every key is known from the manifest and the layout, so nothing here lists directories. Keys
are built by the layout from checked split names, never taken from the store itself.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections import OrderedDict
from pathlib import Path

from armada.errors import ArmadaError


class Source:
    """Bytes by key; None when the key does not exist."""

    location: str

    def read(self, key: str) -> bytes | None:
        raise NotImplementedError

    def read_range(self, key: str, offset: int, length: int) -> bytes | None:
        """Up to `length` bytes from `offset` (fewer when the object is shorter)."""
        raise NotImplementedError

    def read_scattered(self, key: str, views: list[memoryview]) -> int | None:
        """Fill `views` in order from the start of the object; the bytes read (less at its end).

        The features of a shard land straight in the caller's array this way, without an
        intermediate copy (most of the cost of a full load).
        """
        blob = self.read(key)
        if blob is None:
            return None
        done = 0
        for view in views:
            part = blob[done: done + len(view)]
            view[: len(part)] = part
            done += len(part)
        return done

    def size(self) -> int | None:
        """Bytes on disk, when that can be known."""
        return None

    def close(self) -> None:
        """Release open files; a later read opens them again."""

    def __del__(self) -> None:
        self.close()


class DirectorySource(Source):
    OPEN_FILES = 64                         # shard files kept open for random reads

    def __init__(self, root: Path):
        self.root = root
        self.location = str(root)
        self._fds: OrderedDict[str, int] = OrderedDict()

    def read(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def read_range(self, key: str, offset: int, length: int) -> bytes | None:
        fd = self._fds.get(key)
        if fd is None:
            try:
                fd = os.open(self.root / key, os.O_RDONLY)
            except (FileNotFoundError, NotADirectoryError):
                return None
            # Random batches hit the same shard files again and again: keep the latest open.
            self._fds[key] = fd
            if len(self._fds) > self.OPEN_FILES:
                os.close(self._fds.popitem(last=False)[1])
        else:
            self._fds.move_to_end(key)
        return os.pread(fd, length, offset)

    def read_scattered(self, key: str, views: list[memoryview]) -> int | None:
        try:
            fd = os.open(self.root / key, os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            return _preadv(fd, views, 0, None)
        finally:
            os.close(fd)

    def size(self) -> int:
        return sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


class ZipSource(Source):
    """A packed cache: an uncompressed zip whose entry names are the store's keys.

    The zip is untrusted: names that are absolute, hold '..', backslashes or empty parts, and
    duplicate names, are refused before anything is read. Entries are read by offset inside the
    file; nothing is ever extracted.
    """

    def __init__(self, path: Path):
        self.location = str(path)
        self._fd = -1
        self._entries: dict[str, tuple[int, int]] = {}
        with open(path, "rb") as f, zipfile.ZipFile(f) as zf:
            file_size = os.fstat(f.fileno()).st_size
            for info in zf.infolist():
                name = info.filename
                if not _safe_name(name):
                    raise ArmadaError(f"packed cache {path} has an entry named {name!r} that points outside the cache; "
                                      "refusing to read it (the file is damaged or hostile)")
                if name in self._entries:
                    raise ArmadaError(f"packed cache {path} has two entries named {name!r}; refusing to read it")
                if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
                    raise ArmadaError(f"packed cache {path}: entry {name!r} is compressed or encrypted; "
                                      "packed caches are plain (stored) zips made by `armada cache pack`")
                f.seek(info.header_offset)
                header = f.read(30)
                if len(header) != 30 or header[:4] != b"PK\x03\x04":
                    raise ArmadaError(f"packed cache {path}: entry {name!r} has no valid local header")
                start = info.header_offset + 30 + int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
                if start + info.file_size > file_size:
                    raise ArmadaError(f"packed cache {path}: entry {name!r} runs past the end of the file (truncated)")
                self._entries[name] = (start, info.file_size)
        self._path, self._size = path, file_size

    def _file(self) -> int:
        if self._fd < 0:                    # opened on first use, and again after close()
            self._fd = os.open(self._path, os.O_RDONLY)
        return self._fd

    def read(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        return None if entry is None else os.pread(self._file(), entry[1], entry[0])

    def read_range(self, key: str, offset: int, length: int) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        start, size = entry
        offset = min(offset, size)
        return os.pread(self._file(), min(length, size - offset), start + offset)

    def read_scattered(self, key: str, views: list[memoryview]) -> int | None:
        entry = self._entries.get(key)
        return None if entry is None else _preadv(self._file(), views, entry[0], entry[1])

    def size(self) -> int:
        return self._size

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _preadv(fd: int, views: list[memoryview], offset: int, limit: int | None) -> int:
    """Scattered read of up to `limit` bytes (None: to the end of the file) from `offset`; the bytes read."""
    pending, done = [], 0
    for view in views:
        if limit is not None and done + len(view) > limit:
            view = view[: max(0, limit - done)]
        if len(view):
            pending.append(view)
        done += len(view)
    done = 0
    while pending:
        n = os.preadv(fd, pending[:_IOV_MAX], offset + done)
        if n == 0:
            break
        done += n
        while pending and n >= len(pending[0]):
            n -= len(pending[0])
            pending.pop(0)
        if n:
            pending[0] = pending[0][n:]
    return done


_IOV_MAX = os.sysconf("SC_IOV_MAX")


def _safe_name(name: str) -> bool:
    """A relative name that stays inside the cache: no '/' start, no '..', '.', empty parts, '\\' or ':'."""
    return (bool(name) and not name.startswith("/") and "\\" not in name and ":" not in name
            and all(part not in ("", ".", "..") for part in name.split("/")))


class HttpSource(Source):
    """A directory cache served read-only over http(s): one GET (with a Range header where useful) per key."""

    TIMEOUT = 60

    def __init__(self, url: str):
        self.location = url
        self._base = url.rstrip("/") + "/"

    def _get(self, key: str, headers: dict[str, str]) -> tuple[int, bytes] | None:
        url = self._base + urllib.parse.quote(key)
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=self.TIMEOUT) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise ArmadaError(f"cannot read {url}: HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError) as e:
            raise ArmadaError(f"cannot read {url}: {getattr(e, 'reason', e)}; check the URL and that the server is up") from None

    def read(self, key: str) -> bytes | None:
        got = self._get(key, {})
        return None if got is None else got[1]

    def read_range(self, key: str, offset: int, length: int) -> bytes | None:
        got = self._get(key, {"Range": f"bytes={offset}-{offset + length - 1}"})
        if got is None:
            return None
        status, body = got
        # A server without Range support answers 200 with the whole object.
        return body if status == 206 else body[offset: offset + length]
