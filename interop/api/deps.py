"""Injected dependencies: settings, the registry (the API's session onto the store), the
current user from the bearer token, and role guards (after full-stack-fastapi-template's
``deps.py``). Nothing is built at import: tests pass their own settings to ``create_app``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from interop.settings import Settings
from registry import Principal, Registry
from registry.auth import Role

__all__ = [
    "ApiSettings",
    "CurrentUser",
    "RegistryDep",
    "SettingsDep",
    "require_contributor",
    "require_curator",
    "require_reader",
]

MAX_UPLOAD_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class ApiSettings:
    settings: Settings
    max_upload_bytes: int = MAX_UPLOAD_BYTES


def get_api_settings(request: Request) -> ApiSettings:
    return request.app.state.api_settings  # type: ignore[no-any-return]


SettingsDep = Annotated[ApiSettings, Depends(get_api_settings)]
_LOCK = threading.Lock()


def get_registry(request: Request, settings: SettingsDep) -> Registry:
    """The app's registry, opened (and migrated) on first use and shared by every request."""
    state = request.app.state
    if getattr(state, "registry", None) is None:
        with _LOCK:
            if getattr(state, "registry", None) is None:
                from interop.workflows.registry_validation import open_validating_registry

                state.registry = open_validating_registry(
                    settings.settings, max_upload_bytes=settings.max_upload_bytes
                )
    return state.registry  # type: ignore[no-any-return]


RegistryDep = Annotated[Registry, Depends(get_registry)]
_bearer = HTTPBearer(auto_error=False, description="Token from `interop registry user add`")


def current_user(
    registry: RegistryDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal | None:
    if creds is None:
        return None
    principal = registry.authenticate(creds.credentials)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"}
        )
    return principal


CurrentUser = Annotated[Principal | None, Depends(current_user)]


def _guard(role: Role):  # type: ignore[no-untyped-def]
    def check(user: CurrentUser) -> Principal:
        if user is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "a bearer token is required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not user.at_least(role):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"needs the {role} role ({user.name} is {user.role})"
            )
        return user

    return check


require_reader = Annotated[Principal, Depends(_guard("reader"))]
require_contributor = Annotated[Principal, Depends(_guard("contributor"))]
require_curator = Annotated[Principal, Depends(_guard("curator"))]
