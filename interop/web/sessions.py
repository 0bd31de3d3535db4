"""Server-side sign-in sessions and their CSRF tokens.

The browser holds only a random session id (cookie: HttpOnly, SameSite=Strict, Secure behind TLS);
the server keys its state by the id's SHA-256, so a leaked memory dump or log line of keys cannot be
replayed as a cookie. A session keeps the registry token it was opened with and re-authenticates it
on every request (``Registry.authenticate``), so a revoked or expired token, or a deactivated user,
is signed out at once. Each session has a synchroniser CSRF token that every form carries.

State lives in the serving process (one uvicorn worker): a restart signs everyone out. That is
deliberate: the registry's database holds no browser state and no extra migration is needed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

__all__ = ["COOKIE", "WebSession", "SessionStore"]

COOKIE = "interop_session"
IDLE_S = 8 * 3600
ABSOLUTE_S = 24 * 3600
MAX_SESSIONS = 10_000


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass
class WebSession:
    csrf: str
    token: str | None = None  # the registry bearer token (None: not signed in)
    created: float = field(default_factory=time.monotonic)
    seen: float = field(default_factory=time.monotonic)
    flash: list[str] = field(default_factory=list)
    owner: str = field(default_factory=lambda: secrets.token_hex(16))  # names its background jobs

    def csrf_ok(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(self.csrf, presented or "")


class SessionStore:
    """Sessions by hashed id; expired ones (idle or absolute lifetime) are dropped on access."""

    def __init__(self, idle_s: float = IDLE_S, absolute_s: float = ABSOLUTE_S) -> None:
        self._by_key: dict[str, WebSession] = {}
        self._lock = threading.Lock()
        self.idle_s, self.absolute_s = idle_s, absolute_s

    def _alive(self, s: WebSession, now: float) -> bool:
        return now - s.seen < self.idle_s and now - s.created < self.absolute_s

    def get(self, session_id: str | None) -> WebSession | None:
        if not session_id or len(session_id) > 128:
            return None
        now = time.monotonic()
        with self._lock:
            s = self._by_key.get(_key(session_id))
            if s is None:
                return None
            if not self._alive(s, now):
                del self._by_key[_key(session_id)]
                return None
            s.seen = now
            return s

    def new(self, token: str | None = None) -> tuple[str, WebSession]:
        """A fresh session (new id, new CSRF token): at sign-in the old one is dropped (no fixation)."""
        session_id = secrets.token_urlsafe(32)
        s = WebSession(csrf=secrets.token_urlsafe(32), token=token)
        now = time.monotonic()
        with self._lock:
            if len(self._by_key) >= MAX_SESSIONS:
                for k in [k for k, v in self._by_key.items() if not self._alive(v, now)]:
                    del self._by_key[k]
                if len(self._by_key) >= MAX_SESSIONS:  # still full: the least recently used goes
                    del self._by_key[min(self._by_key, key=lambda k: self._by_key[k].seen)]
            self._by_key[_key(session_id)] = s
        return session_id, s

    def drop(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._by_key.pop(_key(session_id), None)
