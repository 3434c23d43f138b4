"""`file:///absolute/dir`: blobs as files under a local directory (the default backend).

A write goes to a hidden temporary file beside its target, is fsynced, then renamed over the
target, so readers see either the old blob or the complete new one. Readers keep the file they
opened, so a concurrent overwrite never mixes two versions into one read.

A writer killed in the middle (SIGKILL, a crash) leaves its partial file behind, hidden from reads
and listings. Deleting the key (present or not) also removes such leftovers of it once they
have not been written to for `STALE_PARTIAL_SECONDS` (a live writer touches its file with every
chunk), so that the directory can be pruned.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import secrets
import stat
import time
from collections.abc import AsyncGenerator, AsyncIterable
from pathlib import Path
from typing import BinaryIO

from cmms.storage.base import BlobStore
from cmms.storage.errors import (
    BlobNotFoundError,
    BlobStoreError,
    InvalidBlobKeyError,
    UnsupportedBlobStoreUrlError,
)
from cmms.storage.url import BlobStoreUrl

# Keys may not end a segment with this, so a partial file can never be mistaken for a blob.
PARTIAL_SUFFIX = ".cmms-partial"
_OPEN_TEMP_ATTEMPTS = 16
# A partial file untouched this long belongs to a writer that is gone.
STALE_PARTIAL_SECONDS = 600.0


class FileBlobStore(BlobStore):
    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        root_path = Path(root)
        if not root_path.is_absolute():
            raise InvalidBlobKeyError(f"file store root must be an absolute path, got {root!r}")
        root_path.mkdir(parents=True, exist_ok=True)
        self.root = root_path
        # fsync is what makes a rename durable after a crash; tests of throwaway dirs may skip it.
        self._fsync = fsync

    def path_of(self, key: str) -> Path:
        if any(segment.endswith(PARTIAL_SUFFIX) for segment in key.split("/")):
            raise InvalidBlobKeyError(
                f"blob key {key!r} has a segment ending in {PARTIAL_SUFFIX!r}, "
                "which the file store reserves for writes in progress"
            )
        return self.root.joinpath(*key.split("/"))

    async def _write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        target = self.path_of(key)
        temp_path, file = await asyncio.to_thread(self._open_temp, key, target)
        try:
            written = 0
            async for chunk in chunks:
                if chunk:
                    await asyncio.to_thread(file.write, chunk)
                    written += len(chunk)
            await asyncio.to_thread(self._publish, key, file, temp_path, target)
            return written
        except BaseException:
            # Also on cancellation: the partial file must not outlive the failed write.
            file.close()
            with contextlib.suppress(FileNotFoundError):
                temp_path.unlink()
            raise

    def _open_temp(self, key: str, target: Path) -> tuple[Path, BinaryIO]:
        temp_path = target.with_name(f".{target.name}.{secrets.token_hex(8)}{PARTIAL_SUFFIX}")
        for _ in range(_OPEN_TEMP_ATTEMPTS):
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                return temp_path, open(temp_path, "xb")
            except (FileExistsError, NotADirectoryError) as error:
                if self._file_in_the_way(target.parent):
                    raise BlobStoreError(
                        f"cannot write {key!r}: a blob exists where the file store needs a "
                        "directory"
                    ) from error
                # mkdir saw the directory, then a concurrent delete pruned it: try again.
                continue
            except FileNotFoundError:
                # A concurrent delete pruned the now-empty directory; create it again.
                continue
        raise BlobStoreError(f"cannot create the directory for {key!r} under {self.root}")

    def _file_in_the_way(self, directory: Path) -> bool:
        """Whether `directory` or one of its parents below the root is not a directory."""
        for path in (directory, *directory.parents):
            if path == self.root:
                return False
            if path.exists() and not path.is_dir():
                return True
        return False

    def _publish(self, key: str, file: BinaryIO, temp_path: Path, target: Path) -> None:
        file.flush()
        if self._fsync:
            os.fsync(file.fileno())
        file.close()
        try:
            os.replace(temp_path, target)
        except IsADirectoryError as error:
            raise BlobStoreError(
                f"cannot write {key!r}: other blobs' keys start with {key + '/'!r}"
            ) from error
        if self._fsync:
            _fsync_directory(target.parent)

    async def _read(self, key: str, chunk_size: int) -> AsyncGenerator[bytes, None]:
        path = self.path_of(key)
        try:
            file = await asyncio.to_thread(open, path, "rb", buffering=0)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as error:
            raise BlobNotFoundError(key) from error
        try:
            while True:
                chunk = await asyncio.to_thread(_read_up_to, file, chunk_size)
                if not chunk:
                    return
                yield chunk
        finally:
            file.close()

    async def _exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path_of(key).is_file)

    async def _size(self, key: str) -> int:
        path = self.path_of(key)
        try:
            status = await asyncio.to_thread(path.stat)
        except (FileNotFoundError, NotADirectoryError) as error:
            raise BlobNotFoundError(key) from error
        if not stat.S_ISREG(status.st_mode):
            raise BlobNotFoundError(key)
        return status.st_size

    async def _delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete_and_prune, self.path_of(key))

    def _delete_and_prune(self, path: Path) -> None:
        swept = _remove_stale_partials(path)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            if not swept:
                return
        # Empty directories would pile up (one per computation and stage) without this.
        directory = path.parent
        while directory != self.root:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    async def _list(self, prefix: str) -> AsyncGenerator[str, None]:
        for key in await asyncio.to_thread(self._sorted_keys, prefix):
            yield key

    def _sorted_keys(self, prefix: str) -> list[str]:
        directory_part = prefix.rpartition("/")[0]
        start = self.root.joinpath(*directory_part.split("/")) if directory_part else self.root
        keys: list[str] = []
        for directory, _, files in os.walk(start):
            relative = Path(directory).relative_to(self.root).as_posix()
            for name in files:
                if name.endswith(PARTIAL_SUFFIX):
                    continue
                key = name if relative == "." else f"{relative}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        keys.sort()
        return keys


def _remove_stale_partials(path: Path) -> int:
    """Remove what killed writers of `path` left behind (partial files long untouched)."""
    cutoff = time.time() - STALE_PARTIAL_SECONDS
    removed = 0
    for partial in path.parent.glob(f".{glob.escape(path.name)}.*{PARTIAL_SUFFIX}"):
        with contextlib.suppress(OSError):
            if partial.stat().st_mtime < cutoff:
                partial.unlink()
                removed += 1
    return removed


def _read_up_to(file: BinaryIO, size: int) -> bytes:
    """Up to `size` bytes, short only at end of file (an unbuffered read may return less)."""
    first = file.read(size)
    if not first or len(first) == size:
        return first
    buffer = bytearray(first)
    while len(buffer) < size:
        piece = file.read(size - len(buffer))
        if not piece:
            break
        buffer += piece
    return bytes(buffer)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def open_file_store(url: BlobStoreUrl) -> FileBlobStore:
    url.reject_unknown_options({"fsync"})
    if url.location not in ("", "localhost"):
        raise UnsupportedBlobStoreUrlError(
            f"{url.url!r}: a file store URL is file:///absolute/dir (no host)"
        )
    if not url.path.startswith("/"):
        raise UnsupportedBlobStoreUrlError(f"{url.url!r}: the directory must be absolute")
    fsync = url.flag("fsync") if "fsync" in url.options else True
    return FileBlobStore(url.path, fsync=fsync)
