"""The FastAPI application factory: ``create_app(settings)``; errors become HTTP statuses.

WithdrawnError -> 410, NotFoundError -> 404, PermissionDenied -> 403 (audited),
IntegrityError (bytes changed on disk) -> 500 without any server path, SchemaError -> 422,
UnknownFormatError -> 415, other InteropError -> 400; anything unexpected -> 500 "internal
error" (logged, never echoed). Every body is ``{"detail": one line, "error": type}``.

Options: ``rate_per_minute`` per bearer token (default 600, ``$INTEROP_API_RATE``; 0 turns it
off), ``cors_origins`` (default none: CORS off; ``$INTEROP_CORS_ORIGINS``, comma-separated).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from interop.api.deps import MAX_UPLOAD_BYTES, ApiSettings, audit_denial, reader_guard, registry_for
from interop.api.limits import BodySizeLimit
from interop.api.models import router
from interop.api.ratelimit import RateLimit
from interop.api.twin import make_router as make_twin_router
from interop.api.users import router as users_router
from interop.errors import IntegrityError, InteropError, NotFoundError, PermissionDenied, SchemaError
from interop.schema import ModelCard
from interop.settings import Settings, get_settings
from registry import UnknownFormatError
from registry.repository import WithdrawnError

__all__ = ["create_app", "error_status", "one_line"]

log = logging.getLogger(__name__)
DEFAULT_RATE_PER_MINUTE = 600


def error_status(exc: InteropError) -> int:
    """The HTTP status of a typed error (the table above); pages answer with the same."""
    for cls, code in (
        (WithdrawnError, 410),
        (NotFoundError, 404),
        (PermissionDenied, 403),
        (IntegrityError, 500),
        (SchemaError, 422),
        (UnknownFormatError, 415),
    ):
        if isinstance(exc, cls):
            return code
    return 400


def one_line(exc: InteropError) -> str:
    """The error as one line, without server paths for integrity faults."""
    if isinstance(exc, IntegrityError):
        return "stored bytes of this model fail their hash check; the operator has been notified"
    return " ".join(str(exc).split())[:500]


def create_app(
    settings: Settings | None = None,
    *,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    rate_per_minute: int | None = None,
    cors_origins: Sequence[str] | None = None,
) -> FastAPI:
    """The hub's API over ``settings`` (default: the environment's): registry and twin routes."""
    if rate_per_minute is None:
        rate_per_minute = int(os.environ.get("INTEROP_API_RATE", DEFAULT_RATE_PER_MINUTE))
    if cors_origins is None:
        cors_origins = [o.strip() for o in os.environ.get("INTEROP_CORS_ORIGINS", "").split(",") if o.strip()]
    api_settings = ApiSettings(settings or get_settings(), max_upload_bytes)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        reg = getattr(app.state, "registry", None)
        if reg is not None:
            reg.close()
            app.state.registry = None

    app = FastAPI(
        title="digphat-interop model registry",
        version="1",
        lifespan=lifespan,
        description="Versioned, validated, searchable store of pharmacological models.",
    )
    app.state.api_settings = api_settings
    app.state.registry = None

    @app.exception_handler(InteropError)
    async def _interop_error(request: Request, exc: InteropError) -> JSONResponse:
        code = error_status(exc)
        if code == 403:
            audit_denial(request, None, str(exc))
        if code >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": one_line(exc), "error": type(exc).__name__}, status_code=code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse(
            {"detail": "internal error (logged on the server)", "error": "InternalError"}, 500
        )

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(router)
    app.include_router(users_router)

    def load_model_version(model_id: str, version: int | None) -> tuple[str, ModelCard]:
        from interop.workflows.ml import resolve_ml_links

        registry = registry_for(app)
        stored = registry.get(model_id, version)
        return stored.sbml, resolve_ml_links(stored.card, registry)  # card-less: ModelError

    app.include_router(make_twin_router(load_model_version, reader_guard))
    app.add_middleware(BodySizeLimit, max_bytes=max_upload_bytes + 64 * 1024)  # multipart overhead
    if rate_per_minute > 0:
        app.add_middleware(RateLimit, per_minute=rate_per_minute)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app
