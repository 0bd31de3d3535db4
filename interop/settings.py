"""Where the hub keeps its files, and which database it uses: one rule for every command.

``$INTEROP_HOME`` when set, else the platform's user data folder (platformdirs). Built on
demand by :func:`get_settings`, never at import, so tests can point it elsewhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import platformdirs


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str

    @property
    def blob_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def output_dir(self) -> Path:
        return self.home / "output"


def _resolve() -> Settings:
    home_env = os.environ.get("INTEROP_HOME")
    home = Path(home_env).expanduser() if home_env else Path(platformdirs.user_data_dir("interop"))
    url = os.environ.get("INTEROP_DATABASE_URL") or f"sqlite:///{home / 'registry.sqlite'}"
    return Settings(home=home.resolve(), database_url=url)


@lru_cache(maxsize=1)
def _cached(key: tuple[str | None, str | None]) -> Settings:
    return _resolve()


def get_settings() -> Settings:
    """Settings from the environment (cached per environment value)."""
    return _cached((os.environ.get("INTEROP_HOME"), os.environ.get("INTEROP_DATABASE_URL")))
