"""A per-token request rate limit (token bucket per bearer token, per client address when there
is none), as a pure ASGI middleware answering 429 with ``Retry-After``.

In memory and per process: behind several workers each enforces its own bucket (documented in
docs/security.md). Written here because the well-kept limiters (slowapi) key on addresses, not
on the bearer token, and pull in a storage layer this one process does not need.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["RateLimit"]


class RateLimit:
    def __init__(self, app: ASGIApp, per_minute: int, burst: int | None = None) -> None:
        self.app = app
        self.rate = per_minute / 60.0
        self.burst = float(burst or per_minute)
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def _key(self, scope: Scope) -> str:
        for name, value in scope.get("headers") or []:
            if name == b"authorization":
                return "t:" + hashlib.sha256(value).hexdigest()
        client = scope.get("client")
        return "a:" + (client[0] if client else "?")

    def _take(self, key: str) -> float:
        """0 when a request may pass, else seconds until one may."""
        now = time.monotonic()
        with self.lock:
            tokens, last = self.buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self.buckets[key] = (tokens - 1, now)
                return 0.0
            self.buckets[key] = (tokens, now)
            if len(self.buckets) > 100_000:  # forget idle callers
                self.buckets.clear()
            return (1 - tokens) / self.rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") == "/health":
            await self.app(scope, receive, send)
            return
        wait = self._take(self._key(scope))
        if wait == 0:
            await self.app(scope, receive, send)
            return
        body = b'{"detail":"too many requests for this token; slow down"}'
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(math.ceil(wait)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
