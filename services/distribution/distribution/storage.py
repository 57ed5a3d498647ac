"""Where release and document files live: a directory by default, behind a small interface
so that an object store can be added without touching the domain.

Files are written as they arrive, in chunks, while their SHA-256 is computed: a multi-GB
upload never sits in memory. A file is stored under a random key (never the uploaded name),
so no name a user chose ever becomes a file-system path.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Stored:
    key: str
    size: int
    sha256: str


class Storage(Protocol):
    def put(self, stream: BinaryIO, limit: int | None = None) -> Stored: ...

    def local_path(self, key: str) -> Path | None:
        """A path the web server can sendfile() from, or None for a remote store."""

    def delete(self, key: str) -> None: ...


class TooLarge(Exception):
    pass


class DirectoryStorage:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not key.isalnum():  # keys are ours (hex); anything else is not a key
            raise KeyError(key)
        return self.root / key[:2] / key

    def put(self, stream: BinaryIO, limit: int | None = None) -> Stored:
        key = secrets.token_hex(16)
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        digest, size = hashlib.sha256(), 0
        try:
            with open(partial, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if limit is not None and size > limit:
                        raise TooLarge()
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            partial.rename(path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return Stored(key, size, digest.hexdigest())

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
