"""One way to use the registry for a while and let it go: ``with registry_session(settings) as reg``.

Opening migrates the schema and claims an empty blob folder; it never deletes anything (garbage
collection is ``interop registry gc`` only).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from interop.settings import Settings
from registry.service import Registry, open_registry

__all__ = ["registry_session"]


@contextmanager
def registry_session(settings: Settings, **options: Any) -> Iterator[Registry]:
    """The registry of ``settings`` (database URL, blob folder), closed on exit."""
    settings.home.mkdir(parents=True, exist_ok=True)
    reg = open_registry(settings.database_url, settings.blob_dir, **options)
    try:
        yield reg
    finally:
        reg.close()
