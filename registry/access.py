"""Users and bearer tokens: create (or re-key), list, revoke, deactivate, authenticate.

Tokens are random (``secrets.token_urlsafe``), shown once, stored only as their SHA-256, and
expire (default 90 days). Re-keying a user revokes that user's earlier tokens. Every check is
made against the database on each request, so a revoked or expired token, or a deactivated
user, gets 401 at once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from interop.errors import NotFoundError, RegistryError
from registry import auditlog
from registry.auth import ROLES, Principal, Role, hash_token, new_token, require_role
from registry.db import InstitutionRow, TokenRow, UserRow

__all__ = ["DEFAULT_TOKEN_LIFETIME", "UserInfo", "AccessService"]

DEFAULT_TOKEN_LIFETIME = dt.timedelta(days=90)


@dataclass(frozen=True)
class UserInfo:
    name: str
    institution: str
    role: str
    active: bool
    active_tokens: int
    expires_at: dt.datetime | None  # of the newest usable token


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    return None if t is None else (t if t.tzinfo else t.replace(tzinfo=dt.UTC))


class AccessService:
    def __init__(self, sessions: sessionmaker[Session], readers: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.readers = readers

    def create_user(
        self,
        name: str,
        institution: str,
        role: Role,
        *,
        principal: Principal,
        expires_in: dt.timedelta = DEFAULT_TOKEN_LIFETIME,
    ) -> str:
        """Create (or re-key: earlier tokens revoked) a user; returns the new token (shown once)."""
        require_role(principal, "curator", "managing users")
        if role not in ROLES:
            raise RegistryError(f"role must be one of {', '.join(ROLES)}", field="role")
        if not name or len(name) > 200 or not name.isprintable() or not institution or len(institution) > 200:
            raise RegistryError("user and institution names must be 1-200 printable characters", field="name")
        if expires_in <= dt.timedelta(0) or expires_in > dt.timedelta(days=3650):
            raise RegistryError(
                "token lifetime must be more than 0 and at most 3650 days", field="expires_in"
            )
        token = new_token()
        now = dt.datetime.now(dt.UTC)
        with self.sessions.begin() as s:
            if institution and s.get(InstitutionRow, institution) is None:
                s.add(InstitutionRow(id=institution, name=institution))
                s.flush()
            user = s.scalars(select(UserRow).where(UserRow.name == name)).first()
            if user is None:
                user = UserRow(name=name, institution_id=institution, role=role)
                s.add(user)
                s.flush()
            else:
                user.role, user.institution_id, user.active = role, institution, True
                s.execute(update(TokenRow).where(TokenRow.user_id == user.id).values(revoked=True))
            s.add(TokenRow(token_sha256=hash_token(token), user_id=user.id, expires_at=now + expires_in))
            auditlog.append(
                s,
                principal.name,
                principal.institution,
                "create-token",
                detail={
                    "user": name,
                    "role": role,
                    "institution": institution,
                    "expires_at": (now + expires_in).isoformat(),
                },
            )
        return token

    def _user(self, s: Session, name: str) -> UserRow:
        user = s.scalars(select(UserRow).where(UserRow.name == name)).first()
        if user is None:
            raise NotFoundError(f"no user {name[:200]!r}", source="users")
        return user

    def revoke(self, name: str, *, principal: Principal) -> int:
        """Revoke every token of ``name``; returns how many were still usable."""
        require_role(principal, "curator", "revoking tokens")
        with self.sessions.begin() as s:
            user = self._user(s, name)
            n = s.execute(  # type: ignore[attr-defined]
                update(TokenRow)
                .where(TokenRow.user_id == user.id, TokenRow.revoked.is_(False))
                .values(revoked=True)
            ).rowcount
            auditlog.append(
                s, principal.name, principal.institution, "revoke-tokens", detail={"user": name, "n": n}
            )
        return int(n or 0)

    def deactivate(self, name: str, *, principal: Principal) -> None:
        """Deactivate ``name`` (every token stops working; ``create_user`` re-activates)."""
        require_role(principal, "curator", "deactivating users")
        with self.sessions.begin() as s:
            user = self._user(s, name)
            user.active = False
            s.execute(update(TokenRow).where(TokenRow.user_id == user.id).values(revoked=True))
            auditlog.append(
                s, principal.name, principal.institution, "deactivate-user", detail={"user": name}
            )

    def list_users(self, *, principal: Principal) -> list[UserInfo]:
        require_role(principal, "curator", "listing users")
        now = dt.datetime.now(dt.UTC)
        with self.readers() as s:
            out = []
            for u in s.scalars(select(UserRow).order_by(UserRow.name)):
                toks = s.scalars(
                    select(TokenRow).where(TokenRow.user_id == u.id, TokenRow.revoked.is_(False))
                ).all()
                usable = [t for t in toks if (_aware(t.expires_at) or now) > now]
                expiries = [e for e in (_aware(t.expires_at) for t in usable) if e is not None]
                newest = max(expiries, default=None)
                out.append(UserInfo(u.name, u.institution_id, u.role, u.active, len(usable), newest))
            return out

    def authenticate(self, token: str) -> Principal | None:
        """The user of a usable token (not revoked, not expired, user active), else None."""
        if not token or len(token) > 512:
            return None
        with self.readers() as s:
            tok = s.scalars(
                select(TokenRow).where(
                    TokenRow.token_sha256 == hash_token(token), TokenRow.revoked.is_(False)
                )
            ).first()
            if tok is None or not tok.user.active:
                return None
            exp = _aware(tok.expires_at)
            if exp is None or exp <= dt.datetime.now(dt.UTC):
                return None
            return Principal(tok.user.name, tok.user.institution_id, tok.user.role)  # type: ignore[arg-type]
