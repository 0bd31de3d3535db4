"""Who may do what: principals, roles, bearer tokens, institution ownership.

Roles are ordered reader < contributor < curator. A contributor submits new models (owned
by its institution) and new versions of models its institution owns, validates them and
sends validation records for its own site; a curator publishes and deprecates any model.
Tokens are random (``secrets.token_urlsafe``); only their SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal

from interop.errors import PermissionDenied

__all__ = ["LOCAL", "ROLES", "Principal", "Role", "hash_token", "new_token", "require_owner", "require_role"]

Role = Literal["reader", "contributor", "curator"]
ROLES: tuple[Role, ...] = ("reader", "contributor", "curator")


@dataclass(frozen=True)
class Principal:
    name: str
    institution: str
    role: Role
    local: bool = False  # the owner of the files, working through the library or the local CLI

    def at_least(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


LOCAL = Principal("local", "", "curator", local=True)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def require_role(principal: Principal, role: Role, action: str) -> None:
    if not principal.at_least(role):
        raise PermissionDenied(f"{action} needs the {role} role ({principal.name} is {principal.role})")


def require_owner(principal: Principal, institution: str, model_id: str, action: str) -> None:
    """Contributors may only change models their institution owns (curators and local may)."""
    if principal.local or principal.role == "curator":
        return
    if principal.institution != institution:
        raise PermissionDenied(
            f"{action}: model {model_id} belongs to {institution!r}, not to {principal.institution!r}"
        )
