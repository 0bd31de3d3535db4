"""What every page needs: the signed-in user (from the session's registry token), role guards that
answer exactly as the API's do (``interop.api.deps``: same roles, same audit of refusals), the CSRF
check of every form, and the template renderer."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import HTTPException, Request, status
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from interop.api.deps import audit_denial, registry_for
from interop.web.sessions import SessionStore, WebSession
from registry import Principal, Registry
from registry.auth import Role

__all__ = [
    "SignInRequired",
    "check_csrf",
    "current_principal",
    "page_registry",
    "render",
    "require_role",
    "session_of",
    "templates",
]

templates = Jinja2Templates(directory=str(files("interop.web").joinpath("templates")))


class SignInRequired(Exception):
    """A page that needs a signed-in user was asked for anonymously: redirect to the sign-in page."""


def session_of(request: Request) -> WebSession:
    return request.state.session  # type: ignore[no-any-return]


def sessions(request: Request) -> SessionStore:
    return request.app.state.sessions  # type: ignore[no-any-return]


def page_registry(request: Request) -> Registry:
    """The registry the API app serves (one shared store for pages and API)."""
    return registry_for(request.app.state.api_app)


def audit_page_denial(request: Request, user: Principal | None, reason: str) -> None:
    """A refused page request, in the audit log of the registry the pages share with the API."""
    audit_denial(request, user, reason, app=request.app.state.api_app)


def current_principal(request: Request) -> Principal | None:
    """The user of the session's token, re-checked on every request (revocation applies at once)."""
    if hasattr(request.state, "principal"):
        return request.state.principal  # type: ignore[no-any-return]
    s = session_of(request)
    principal = None
    if s.token is not None:
        principal = page_registry(request).authenticate(s.token)
        if principal is None:
            s.token = None
            s.flash.append(
                "Your token is no longer valid (expired, revoked or user deactivated): sign in again."
            )
    request.state.principal = principal
    return principal


def require_role(request: Request, role: Role) -> Principal:
    """The signed-in user when at least ``role``; anonymous -> sign in; too low a role -> 403 (audited)."""
    user = current_principal(request)
    if user is None:
        if request.method == "GET":
            raise SignInRequired()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in first")
    if not user.at_least(role):
        audit_page_denial(request, user, f"needs the {role} role")
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"needs the {role} role ({user.name} is {user.role})")
    return user


async def check_csrf(request: Request) -> None:
    """403 unless the form carries this session's CSRF token (synchroniser token pattern)."""
    form = await request.form()
    presented = form.get("csrf_token")
    if not isinstance(presented, str) or not session_of(request).csrf_ok(presented):
        audit_page_denial(request, current_principal(request), "missing or wrong CSRF token")
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "the form's CSRF token is missing or wrong: reload the page"
        )


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page: the template with the user, the CSRF token and pending messages."""
    s = session_of(request)
    flash, s.flash = list(s.flash), []
    user = current_principal(request)
    return templates.TemplateResponse(
        request,
        template,
        {"user": user, "csrf": s.csrf, "flash": flash, **context},
        status_code=status_code,
    )
