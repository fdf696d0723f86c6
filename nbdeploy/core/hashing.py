"""Content hashes of model files: one definition used by the registry and bundles.

A model's content hash is ``"sha256:" + hex`` of a SHA-256 over its files in sorted
order of their relative POSIX paths. For each file it feeds the path (UTF-8), a NUL
byte and the file's own 32-byte SHA-256 digest::

    sha256( for path in sorted(files): path.encode() + b"\\0" + sha256(bytes(path)) )

Two levels, so that a file's digest can be computed *while it is written or copied*
(one pass over the bytes, no second read of a 50 MB pickle) and the model hash is then
combined from the per-file digests in microseconds. Renaming, adding or removing a
file changes the hash as surely as changing a byte.

Examples
--------
>>> from pathlib import Path
>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> _ = (root / "a.txt").write_bytes(b"hello")
>>> hash_files(root, ["a.txt"]) == combine_digests({"a.txt": sha256_bytes(b"hello")})
True
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO

__all__ = [
    "CHUNK_SIZE",
    "HashingWriter",
    "combine_digests",
    "copy_and_hash",
    "hash_file",
    "hash_files",
    "sha256_bytes",
]

#: Bytes read per chunk when streaming a file through the hash.
CHUNK_SIZE = 1024 * 1024

_PREFIX = "sha256:"


def sha256_bytes(data: bytes) -> bytes:
    """The raw 32-byte SHA-256 digest of ``data``.

    Examples
    --------
    >>> len(sha256_bytes(b""))
    32
    """
    return hashlib.sha256(data).digest()


def hash_file(path: str | os.PathLike[str]) -> bytes:
    """Stream one file through SHA-256 in chunks and return its raw digest.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "x"
    >>> _ = p.write_bytes(b"abc")
    >>> hash_file(p) == sha256_bytes(b"abc")
    True
    """
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        buffer = bytearray(CHUNK_SIZE)
        view = memoryview(buffer)
        while True:
            n = fh.readinto(view)
            if not n:
                break
            digest.update(view[:n])
    return digest.digest()


def combine_digests(digests: Mapping[str, bytes]) -> str:
    """Combine per-file digests (relative POSIX path → raw digest) into a content hash.

    Examples
    --------
    >>> combine_digests({}).startswith("sha256:")
    True
    """
    total = hashlib.sha256()
    for rel in sorted(digests):
        total.update(rel.encode("utf-8"))
        total.update(b"\0")
        total.update(digests[rel])
    return _PREFIX + total.hexdigest()


def hash_files(root: str | os.PathLike[str], files: Iterable[str]) -> str:
    """The content hash of ``files`` (relative POSIX paths) under ``root``.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "m.pkl").write_bytes(b"x")
    >>> hash_files(root, ["m.pkl"]).startswith("sha256:")
    True
    """
    base = Path(root)
    return combine_digests({rel: hash_file(base / rel) for rel in files})


class HashingWriter:
    """A binary file opened for writing that hashes every byte on its way to disk.

    Used as the ``file`` argument of ``pickle.dump``: pickle protocol 5 hands large
    buffers (numpy arrays) straight to :meth:`write`, so they are hashed and written
    without an extra copy. :meth:`close` flushes and ``fsync``-s the file, so a
    registration that commits never points at bytes still in flight.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "f"
    >>> with HashingWriter(p) as w:
    ...     _ = w.write(b"abc")
    >>> w.digest == sha256_bytes(b"abc")
    True
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self._fh: IO[bytes] = open(self.path, "xb")  # noqa: SIM115 - closed in close()
        self._hash = hashlib.sha256()
        self._fsync = fsync
        self._digest: bytes | None = None
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Hash and write ``data``; returns the number of bytes written."""
        self._hash.update(data)
        n = self._fh.write(data)
        self.size += n
        return n

    def close(self) -> None:
        """Flush, fsync (unless disabled) and close; idempotent."""
        if self._fh.closed:
            return
        try:
            self._fh.flush()
            if self._fsync:
                os.fsync(self._fh.fileno())
        finally:
            self._fh.close()
        self._digest = self._hash.digest()

    @property
    def digest(self) -> bytes:
        """The raw SHA-256 of everything written; only valid after :meth:`close`."""
        if self._digest is None:
            raise RuntimeError(f"HashingWriter({self.path}) is still open; close it first")
        return self._digest

    def __enter__(self) -> HashingWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def copy_and_hash(
    src: str | os.PathLike[str], dest: str | os.PathLike[str], *, fsync: bool = True
) -> bytes:
    """Copy ``src`` to the new file ``dest`` in one pass, returning the raw digest.

    The destination is fsync-ed unless ``fsync=False``. Reading and hashing in the
    same loop means each byte is read from ``src`` exactly once.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "a").write_bytes(b"abc")
    >>> copy_and_hash(d / "a", d / "b") == sha256_bytes(b"abc")
    True
    """
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    with open(src, "rb", buffering=0) as fin, HashingWriter(dest, fsync=fsync) as out:
        while True:
            n = fin.readinto(view)
            if not n:
                break
            out.write(view[:n])
    return out.digest
