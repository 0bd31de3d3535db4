"""The conversion report: every input record is converted or reported with a reason.

Counts add up per resource type: ``read == converted + rejected + skipped``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ConversionReport", "Issue"]

Outcome = Literal["rejected", "skipped"]


@dataclass(frozen=True)
class Issue:
    outcome: Outcome
    resource_type: str
    reason: str
    source: str | None = None  # file or URL
    line: int | None = None
    resource_id: str | None = None
    field: str | None = None

    def where(self) -> str:
        parts = [p for p in (self.source and f"{self.source}" + (f":{self.line}" if self.line else ""),
                             self.resource_id and f"{self.resource_type}/{self.resource_id}",
                             self.field and f"field {self.field}") if p]
        return ", ".join(parts)


@dataclass
class ConversionReport:
    read: Counter[str] = field(default_factory=Counter)
    converted: Counter[str] = field(default_factory=Counter)
    issues: list[Issue] = field(default_factory=list)
    unmapped_codes: Counter[str] = field(default_factory=Counter)
    unit_conversions: Counter[str] = field(default_factory=Counter)
    flags: Counter[str] = field(default_factory=Counter)

    def count(self, outcome: Outcome, resource_type: str) -> int:
        return sum(1 for i in self.issues if i.outcome == outcome and i.resource_type == resource_type)

    def add(self, outcome: Outcome, resource_type: str, reason: str, **where: Any) -> None:
        self.issues.append(Issue(outcome, resource_type, reason, **where))

    def balanced(self) -> bool:
        """The count identity: read = converted + rejected + skipped, for every type."""
        return all(
            self.read[t] == self.converted[t] + self.count("rejected", t) + self.count("skipped", t)
            for t in set(self.read) | set(self.converted)
        )

    def summary_rows(self) -> list[tuple[str, int, int, int, int]]:
        types = sorted(set(self.read) | set(self.converted))
        return [(t, self.read[t], self.converted[t], self.count("rejected", t), self.count("skipped", t))
                for t in types]

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": [dict(zip(("resource_type", "read", "converted", "rejected", "skipped"), r,
                                strict=True)) for r in self.summary_rows()],
            "balanced": self.balanced(),
            "issues": [i.__dict__ | {"where": i.where()} for i in self.issues],
            "unmapped_codes": dict(self.unmapped_codes.most_common()),
            "unit_conversions": dict(self.unit_conversions.most_common()),
            "flags": dict(self.flags.most_common()),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)
