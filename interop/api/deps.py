"""Injected dependencies: settings, the registry (the API's session onto the store), the
current user from the bearer token, and role guards (after full-stack-fastapi-template's
``deps.py``). Nothing is built at import: tests pass their own settings to ``create_app``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from interop.settings import Settings
from registry import Principal, Registry
from registry.auth import Role

__all__ = [
    "ApiSettings",
    "audit_denial",
    "CurrentUser",
    "RegistryDep",
    "SettingsDep",
    "reader_guard",
    "registry_for",
    "require_contributor",
    "require_curator",
    "require_reader",
]

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiSettings:
    settings: Settings
    max_upload_bytes: int = MAX_UPLOAD_BYTES


def get_api_settings(request: Request) -> ApiSettings:
    return request.app.state.api_settings  # type: ignore[no-any-return]


SettingsDep = Annotated[ApiSettings, Depends(get_api_settings)]
_LOCK = threading.Lock()


def registry_for(app: FastAPI) -> Registry:
    """The app's registry, opened (and migrated) on first use and shared by every request."""
    state = app.state
    if getattr(state, "registry", None) is None:
        with _LOCK:
            if getattr(state, "registry", None) is None:
                from interop.workflows.registry_validation import open_validating_registry

                settings: ApiSettings = state.api_settings
                state.registry = open_validating_registry(
                    settings.settings, max_upload_bytes=settings.max_upload_bytes
                )
    return state.registry  # type: ignore[no-any-return]


def get_registry(request: Request) -> Registry:
    return registry_for(request.app)


RegistryDep = Annotated[Registry, Depends(get_registry)]
_bearer = HTTPBearer(auto_error=False, description="Token from `interop registry user add`")


def audit_denial(request: Request, user: Principal | None, reason: str, app: FastAPI | None = None) -> None:
    """Write a refused request (401 for a presented token, 403) to the audit log of ``app``'s registry
    (default: the request's app); never fails the request (the refusal stands even when the log
    cannot be written)."""
    try:
        registry_for(app or request.app).audit_denial(
            user.name if user else "anonymous",
            user.institution if user else "",
            f"{request.method} {request.url.path}"[:200],
            reason,
        )
    except Exception:  # noqa: BLE001 - an audit failure must not turn a 401/403 into a 500
        log.exception("could not audit a denied request")


def current_user(
    request: Request,
    registry: RegistryDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    if creds is None:
        return None
    principal = registry.authenticate(creds.credentials)
    if principal is None:
        audit_denial(request, None, "invalid, expired or revoked token")
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid, expired or revoked token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


CurrentUser = Annotated[Principal | None, Depends(current_user)]


def _guard(role: Role):  # type: ignore[no-untyped-def]
    def check(request: Request, user: CurrentUser) -> Principal:
        if user is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "a bearer token is required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not user.at_least(role):
            audit_denial(request, user, f"needs the {role} role")
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"needs the {role} role ({user.name} is {user.role})"
            )
        return user

    return check


reader_guard = _guard("reader")
require_reader = Annotated[Principal, Depends(reader_guard)]
require_contributor = Annotated[Principal, Depends(_guard("contributor"))]
require_curator = Annotated[Principal, Depends(_guard("curator"))]
