"""User and token management for curators: list, create (or re-key), revoke, deactivate."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, Field

from interop.api.deps import RegistryDep, require_curator

__all__ = ["router"]

router = APIRouter(prefix="/users", tags=["users"])
UserName = Annotated[str, Path(min_length=1, max_length=200)]


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    institution: str = Field(min_length=1, max_length=200)
    role: Literal["reader", "contributor", "curator"] = "reader"
    expires_in_days: float = Field(default=90, gt=0, le=3650)


class UserOut(BaseModel):
    name: str
    institution: str
    role: str
    active: bool
    active_tokens: int
    expires_at: dt.datetime | None


@router.get("", response_model=list[UserOut], summary="Every user (curators)")
def list_users(registry: RegistryDep, user: require_curator) -> list[UserOut]:
    return [UserOut(**u.__dict__) for u in registry.list_users(principal=user)]


@router.post(
    "", status_code=status.HTTP_201_CREATED, summary="Create or re-key a user; the token is shown once"
)
def create_user(body: NewUser, registry: RegistryDep, user: require_curator) -> dict[str, Any]:
    token = registry.create_user(
        body.name,
        body.institution,
        body.role,
        principal=user,
        expires_in=dt.timedelta(days=body.expires_in_days),
    )
    return {"name": body.name, "token": token}


@router.post("/{name}/revoke", summary="Revoke every token of a user (401 at once)")
def revoke(name: UserName, registry: RegistryDep, user: require_curator) -> dict[str, int]:
    return {"revoked": registry.revoke_tokens(name, principal=user)}


@router.post("/{name}/deactivate", status_code=status.HTTP_204_NO_CONTENT, summary="Deactivate a user")
def deactivate(name: UserName, registry: RegistryDep, user: require_curator) -> None:
    registry.deactivate_user(name, principal=user)
