"""The FastAPI application factory: ``create_app(settings)``; errors become HTTP statuses.

NotFoundError -> 404, PermissionDenied -> 403, IntegrityError (bytes changed on disk) -> 500,
SchemaError -> 422, UnknownFormatError -> 415, other InteropError -> 400.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from interop.api.deps import MAX_UPLOAD_BYTES, ApiSettings
from interop.api.limits import BodySizeLimit
from interop.api.models import router
from interop.errors import IntegrityError, InteropError, NotFoundError, PermissionDenied, SchemaError
from interop.settings import Settings, get_settings
from registry import UnknownFormatError

__all__ = ["create_app"]


def _status(exc: InteropError) -> int:
    for cls, code in (
        (NotFoundError, 404),
        (PermissionDenied, 403),
        (IntegrityError, 500),
        (SchemaError, 422),
        (UnknownFormatError, 415),
    ):
        if isinstance(exc, cls):
            return code
    return 400


def create_app(settings: Settings | None = None, *, max_upload_bytes: int = MAX_UPLOAD_BYTES) -> FastAPI:
    """The registry API over ``settings`` (default: the environment's)."""
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
        return JSONResponse({"detail": str(exc), "error": type(exc).__name__}, status_code=_status(exc))

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(router)
    app.add_middleware(BodySizeLimit, max_bytes=max_upload_bytes + 64 * 1024)  # multipart overhead
    return app
