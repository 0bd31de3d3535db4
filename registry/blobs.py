"""Content-addressed blob store on disk: a file's name is its SHA-256.

Writes go to a temporary file in the same folder and are renamed into place, so a killed
submission never leaves a half-written blob under a valid name. Reads verify the hash.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

from interop.errors import IntegrityError, NotFoundError

__all__ = ["BlobStore", "sha256_hex"]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes) -> str:
        """Store ``data``; returns its SHA-256 (storing the same bytes twice is a no-op)."""
        digest = sha256_hex(data)
        target = self.path(digest)
        if target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def sweep(self, referenced: set[str], grace_s: float) -> tuple[list[str], list[str]]:
        """Delete blobs not in ``referenced`` and temporary files, both older than ``grace_s``
        (younger ones may belong to a submission still in flight). Returns (blobs, temp files)."""
        removed: list[str] = []
        temps: list[str] = []
        if not self.root.exists():
            return removed, temps
        now = time.time()
        for path in self.root.rglob("*"):
            if not path.is_file() or now - path.stat().st_mtime < grace_s:
                continue
            if path.name.startswith(".tmp-"):
                path.unlink(missing_ok=True)
                temps.append(str(path))
            elif path.name not in referenced:
                path.unlink(missing_ok=True)
                removed.append(path.name)
        return removed, temps

    def get(self, digest: str) -> bytes:
        """The bytes stored under ``digest``, verified against it."""
        try:
            data = self.path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError(f"no blob {digest}", source=str(self.root)) from exc
        if sha256_hex(data) != digest:
            raise IntegrityError(f"blob {digest} does not match its hash", source=str(self.path(digest)))
        return data
