"""The web application: server-rendered pages at ``/`` and the JSON API mounted at ``/api`` (its
OpenAPI document at ``/api/openapi.json``), one process, one registry.

Pages are Jinja2 templates with a little JavaScript for progress polling and the interactive plots
(plotly.js served from the installed ``plotly`` package, no CDN). Sessions and CSRF:
``interop.web.sessions``; role guards: ``interop.web.deps``. Typed errors answer with the API's
statuses (``interop.api.app.error_status``) as an HTML page.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from interop.api import create_app
from interop.api.app import error_status, one_line
from interop.api.deps import MAX_UPLOAD_BYTES
from interop.api.limits import BodySizeLimit
from interop.errors import InteropError, MissingExtraError
from interop.settings import Settings, get_settings
from interop.web.deps import SignInRequired, audit_page_denial, check_csrf, page_registry, render
from interop.web.jobs import JobRunner
from interop.web.registry_pages import router as registry_router
from interop.web.sessions import COOKIE, SessionStore
from interop.web.twin_pages import router as twin_router
from interop.web.validation_pages import router as validation_router

__all__ = ["create_web_app"]

log = logging.getLogger(__name__)
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; object-src 'none'"
)


def plotly_js() -> Path:
    """plotly.js as the installed ``plotly`` package bundles it (MIT, licence in its dist-info)."""
    try:
        import plotly
    except ImportError as exc:
        raise MissingExtraError("plotly", extra="web", purpose="interactive plots") from exc
    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def create_web_app(
    settings: Settings | None = None,
    *,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    rate_per_minute: int | None = None,
    job_workers: int = 2,
    validation_scheduler: str = "single",
) -> FastAPI:
    """Pages over ``settings`` (default: the environment's) with the API app mounted at ``/api``."""
    settings = settings or get_settings()
    api_app = create_app(settings, max_upload_bytes=max_upload_bytes, rate_per_minute=rate_per_minute)
    jobs = JobRunner(job_workers)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield  # a mounted app's own lifespan does not run: close its registry here
        jobs.shutdown()
        reg = getattr(api_app.state, "registry", None)
        if reg is not None:
            reg.close()
            api_app.state.registry = None

    app = FastAPI(title="digphat-interop", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.api_app = api_app
    app.state.sessions = SessionStore()
    app.state.jobs = jobs
    app.state.validation_scheduler = validation_scheduler

    @app.middleware("http")
    async def session_cookie(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if path.startswith(("/api/", "/static/", "/vendor/")) or path == "/api":
            return await call_next(request)
        store: SessionStore = app.state.sessions
        sid = request.cookies.get(COOKIE)
        s = store.get(sid)
        fresh = None
        if s is None:
            sid, s = store.new()
            fresh = sid
        request.state.session, request.state.session_id = s, sid
        response = await call_next(request)
        new_sid = getattr(request.state, "new_session_id", None) or fresh
        if new_sid:
            response.set_cookie(
                COOKIE,
                new_sid,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
                path="/",
            )
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?next={quote(target)}", status_code=303)

    def error_page(request: Request, code: int, detail: str) -> Response:
        if request.url.path.startswith("/jobs/") or not hasattr(request.state, "session"):
            return JSONResponse({"detail": detail}, code)  # the polling endpoint and static files
        return render(request, "error.html", code, status=code, detail=detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(InteropError)
    async def _interop(request: Request, exc: InteropError) -> Response:
        code = error_status(exc)
        if code == 403:
            audit_page_denial(request, None, str(exc))
        return error_page(request, code, one_line(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path)
        return error_page(request, 500, "internal error (logged on the server)")

    app.mount("/api", api_app)
    app.mount("/static", StaticFiles(directory=str(files("interop.web").joinpath("static"))), name="static")

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_file() -> FileResponse:
        return FileResponse(
            plotly_js(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
        )

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        return render(request, "home.html")

    @app.get("/signin", response_class=HTMLResponse)
    def signin_page(request: Request, next: Annotated[str, Query(max_length=500)] = "/") -> HTMLResponse:
        return render(request, "signin.html", next=_local(next))

    @app.post("/signin", dependencies=[Depends(check_csrf)], response_model=None)
    def signin(
        request: Request,
        token: Annotated[str, Form(max_length=512)],
        next: Annotated[str, Form(max_length=500)] = "/",
    ) -> Response:
        principal = page_registry(request).authenticate(token.strip())
        if principal is None:
            audit_page_denial(request, None, "web sign-in with an invalid, expired or revoked token")
            return render(request, "signin.html", 401, next=_local(next), error="That token is not valid.")
        store: SessionStore = app.state.sessions
        store.drop(request.state.session_id)  # a new id at sign-in: no session fixation
        sid, s = store.new(token.strip())
        s.flash.append(f"Signed in as {principal.name} ({principal.role}, {principal.institution}).")
        request.state.new_session_id = sid
        return RedirectResponse(_local(next), status_code=303)

    @app.post("/signout", dependencies=[Depends(check_csrf)])
    def signout(request: Request) -> RedirectResponse:
        store: SessionStore = app.state.sessions
        store.drop(request.state.session_id)
        sid, s = store.new()
        s.flash.append("Signed out.")
        request.state.new_session_id = sid
        return RedirectResponse("/", status_code=303)

    app.add_middleware(BodySizeLimit, max_bytes=max_upload_bytes + 64 * 1024)  # before any form is parsed
    app.include_router(registry_router)
    app.include_router(twin_router)
    app.include_router(validation_router)
    return app


def _local(target: str) -> str:
    """Only a path on this site may follow sign-in (no open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"
