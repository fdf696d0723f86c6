"""Content hashes of model files: one definition used by the registry and bundles.

A model's content hash is ``"sha256:" + hex`` of a SHA-256 over its files in sorted
order of their relative POSIX paths. For each file it feeds the path (UTF-8), a NUL
byte and the file's own 32-byte SHA-256 digest::

    sha256( for path in sorted(files): path.encode() + b"\\0" + sha256(bytes(path)) )

Two levels, so that each file's digest can be computed where it is cheapest — while
a pickle is written (:class:`HashingWriter`: no second read of a 50 MB pickle), or
from the page cache while a copied file is being fsync-ed (:func:`copy_and_hash`) —
and the model hash is then combined from the per-file digests in microseconds.
Renaming, adding or removing a file changes the hash as surely as changing a byte.

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

import errno
import hashlib
import mmap
import os
import shutil
import threading
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
    """Hash one file with SHA-256 and return its raw digest.

    Large files are hashed through a read-only memory map (no copy into Python
    buffers); small ones are read in chunks.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "x"
    >>> _ = p.write_bytes(b"abc")
    >>> hash_file(p) == sha256_bytes(b"abc")
    True
    """
    with open(path, "rb", buffering=0) as fh:
        return _digest_fd(fh)


_MMAP_MIN = CHUNK_SIZE


def _digest_fd(fh: IO[bytes]) -> bytes:
    size = os.fstat(fh.fileno()).st_size
    if size >= _MMAP_MIN:
        try:
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                return hashlib.sha256(mapped).digest()
        except (OSError, ValueError):  # pragma: no cover - file systems without mmap
            fh.seek(0)
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    while True:
        n = fh.readinto(view)  # type: ignore[attr-defined]
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
    """Copy ``src`` to the new file ``dest`` and return the raw digest of the copy.

    The bytes are copied by the kernel where it can (``shutil.copyfile`` uses
    ``sendfile``/``copy_file_range``), the copy is hashed from the page cache — so the
    digest is of what was stored, even if ``src`` changes meanwhile — and, unless
    ``fsync=False``, flushed to disk in a second thread while it is hashed.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "a").write_bytes(b"abc")
    >>> copy_and_hash(d / "a", d / "b") == sha256_bytes(b"abc")
    True
    """
    if os.path.lexists(dest):
        raise FileExistsError(errno.EEXIST, "destination exists", str(dest))
    shutil.copyfile(src, dest)
    with open(dest, "rb", buffering=0) as fh:
        if not fsync:
            return _digest_fd(fh)
        errors: list[BaseException] = []

        def _flush() -> None:
            try:
                os.fsync(fh.fileno())
            except BaseException as exc:  # re-raised in the caller's thread
                errors.append(exc)

        flusher = threading.Thread(target=_flush, name="nbdeploy-fsync")
        flusher.start()
        try:
            digest = _digest_fd(fh)
        finally:
            flusher.join()
        if errors:
            raise errors[0]
        return digest
