"""Content-addressed blob store on disk: a file's name is its SHA-256.

A submission first *stages* its bytes (a temporary file in the store), and only moves them
under their hash name inside the database transaction that records them, just before commit:
a refused or failed submission discards its staged files at once and never touches a blob
another submission may share, and a committed row never names a missing blob. Reads verify
the hash.

The store carries the identity of the database that owns it (``REGISTRY-ID``, written when the
store is new); garbage collection refuses to run when that identity is not the caller's, so a
second registry pointed at the same folder cannot delete the first one's blobs.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from interop.errors import IntegrityError, NotFoundError, RegistryError

__all__ = ["BlobStore", "Staged", "sha256_hex"]

MARKER = "REGISTRY-ID"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Staged:
    """Bytes written to a temporary file, waiting to be published under their hash."""

    digest: str
    size: int
    tmp: Path


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:4] / digest

    # ------------------------------------------------------------ identity
    def owner(self) -> str | None:
        """The registry id written in the store, or None for an unmarked store."""
        try:
            return (self.root / MARKER).read_text(encoding="ascii").strip() or None
        except FileNotFoundError:
            return None

    def is_empty(self) -> bool:
        return not self.root.exists() or not any(p.name != MARKER for p in self.root.iterdir())

    def claim(self, registry_id: str) -> None:
        """Write ``registry_id`` as the store's owner (atomically)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(registry_id + "\n")
        os.replace(tmp, self.root / MARKER)

    # ------------------------------------------------------------- writing
    def stage(self, data: bytes) -> Staged:
        """Write ``data`` to a temporary file in the store (not yet visible under its hash)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Staged(sha256_hex(data), len(data), Path(tmp))

    def publish(self, staged: Staged) -> None:
        """Move a staged file under its hash (an existing blob with that hash is kept and touched,
        so a concurrent garbage collection sees it as fresh)."""
        target = self.path(staged.digest)
        if target.exists():
            os.utime(target)
            staged.tmp.unlink(missing_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.tmp, target)

    @staticmethod
    def discard(staged: Staged) -> None:
        staged.tmp.unlink(missing_ok=True)

    def put(self, data: bytes) -> str:
        """Store ``data`` at once; returns its SHA-256 (storing the same bytes twice is a no-op)."""
        staged = self.stage(data)
        self.publish(staged)
        return staged.digest

    # ---------------------------------------------------------- collection
    def sweep(
        self,
        is_referenced: Callable[[set[str]], set[str]],
        grace_s: float,
        *,
        registry_id: str,
        dry_run: bool = False,
    ) -> tuple[list[str], list[str]]:
        """Delete blobs no row references and stale temporary files, both older than ``grace_s``.

        ``is_referenced(candidates)`` answers, from the database, which candidates are referenced;
        it is asked after the candidates are listed, so a row committed meanwhile protects its
        blob. Refuses to run on a store another registry owns (or no registry claims).
        """
        owner = self.owner()
        if owner != registry_id:
            raise RegistryError(
                "refusing to collect garbage: this blob store belongs to "
                + (f"registry {owner}" if owner else "no registry (unmarked)")
                + f", not to this database's registry {registry_id}",
                source=str(self.root),
            )
        if not self.root.exists():
            return [], []
        now = time.time()
        temps: list[str] = []
        candidates: dict[str, Path] = {}
        for path in self.root.rglob("*"):
            if not path.is_file() or path.name == MARKER or now - path.stat().st_mtime < grace_s:
                continue
            if path.name.startswith(".tmp-"):
                temps.append(str(path))
            elif len(path.name) == 64 and path == self.path(path.name):
                candidates[path.name] = path
        referenced = is_referenced(set(candidates)) if candidates else set()
        removed = sorted(d for d in candidates if d not in referenced)
        if not dry_run:
            for t in temps:
                Path(t).unlink(missing_ok=True)
            for d in removed:
                p = candidates[d]
                if now - p.stat().st_mtime >= grace_s:  # not touched by a submission since
                    p.unlink(missing_ok=True)
        return removed, temps

    # ------------------------------------------------------------- reading
    def get(self, digest: str) -> bytes:
        """The bytes stored under ``digest``, verified against it (errors name no server path)."""
        try:
            data = self.path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError(
                f"blob {digest[:12]}… is missing from the store", source="blob store"
            ) from exc
        if sha256_hex(data) != digest:
            raise IntegrityError(
                f"blob {digest[:12]}… does not match its hash (run `interop registry verify`)",
                source="blob store",
            )
        return data

    def check(self, digest: str) -> str | None:
        """A one-line fault for the blob ``digest`` (missing, unreadable, wrong hash), or None."""
        try:
            h = hashlib.sha256()
            with open(self.path(digest), "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        except FileNotFoundError:
            return f"blob {digest} is missing"
        except OSError as exc:
            return f"blob {digest} is unreadable ({exc.strerror})"
        return None if h.hexdigest() == digest else f"blob {digest} does not match its hash"
