"""A version's lifecycle: typed statuses and ONE transition table (action -> from, to, role).

submitted --validate--> validated --publish--> published
submitted | validated | published --deprecate--> deprecated
any but withdrawn --withdraw--> withdrawn   (bytes kept for audit; gone from search, binding)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from interop.errors import RegistryError
from registry.auth import Role

__all__ = ["STATUSES", "TRANSITIONS", "Action", "Transition", "VersionStatus", "next_status"]

VersionStatus = Literal["submitted", "validated", "published", "deprecated", "withdrawn"]
Action = Literal["validate", "publish", "deprecate", "withdraw"]
STATUSES: tuple[VersionStatus, ...] = ("submitted", "validated", "published", "deprecated", "withdrawn")


@dataclass(frozen=True)
class Transition:
    sources: frozenset[VersionStatus]
    target: VersionStatus
    role: Role


TRANSITIONS: dict[Action, Transition] = {
    "validate": Transition(frozenset({"submitted"}), "validated", "contributor"),
    "publish": Transition(frozenset({"validated"}), "published", "curator"),
    "deprecate": Transition(frozenset({"submitted", "validated", "published"}), "deprecated", "curator"),
    "withdraw": Transition(
        frozenset({"submitted", "validated", "published", "deprecated"}), "withdrawn", "curator"
    ),
}


def next_status(action: Action, current: str, ref: str) -> VersionStatus:
    """The status ``action`` leads to from ``current``, else RegistryError naming what is allowed."""
    t = TRANSITIONS[action]
    if current not in t.sources:
        allowed = " or ".join(sorted(t.sources))
        raise RegistryError(f"{ref} is {current}; {action} applies to a {allowed} version", source=ref)
    return t.target
