"""The conversion report: every input record is converted or reported with a reason.

Counts add up per resource type: ``read == converted + rejected + skipped``. Each rejected or
skipped record is an :class:`Issue` naming its file, line, resource id and field.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
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
        parts = [
            p
            for p in (
                self.source and f"{self.source}" + (f":{self.line}" if self.line else ""),
                self.resource_id and f"{self.resource_type}/{self.resource_id}",
                self.field and f"field {self.field}",
            )
            if p
        ]
        return ", ".join(parts)


@dataclass
class ConversionReport:
    read: Counter[str] = field(default_factory=Counter)
    converted: Counter[str] = field(default_factory=Counter)
    issues: list[Issue] = field(default_factory=list)
    unmapped_codes: Counter[str] = field(default_factory=Counter)
    unit_conversions: Counter[str] = field(default_factory=Counter)
    flags: Counter[str] = field(default_factory=Counter)
    versions: tuple[str, ...] = ()  # mapping tables used
    _counts: Counter[tuple[str, str]] = field(default_factory=Counter, repr=False)

    def count(self, outcome: Outcome, resource_type: str) -> int:
        return self._counts[(outcome, resource_type)]

    def add(self, outcome: Outcome, resource_type: str, reason: str, **where: Any) -> None:
        self.issues.append(Issue(outcome, resource_type, reason, **where))
        self._counts[(outcome, resource_type)] += 1

    def types(self) -> list[str]:
        return sorted(set(self.read) | set(self.converted) | {t for _, t in self._counts})

    def balanced(self) -> bool:
        """The count identity: read = converted + rejected + skipped, for every type."""
        return all(
            self.read[t] == self.converted[t] + self.count("rejected", t) + self.count("skipped", t)
            for t in self.types()
        )

    def summary_rows(self) -> list[tuple[str, int, int, int, int]]:
        return [
            (t, self.read[t], self.converted[t], self.count("rejected", t), self.count("skipped", t))
            for t in self.types()
        ]

    def totals(self) -> dict[str, int]:
        return {
            "read": sum(self.read.values()),
            "converted": sum(self.converted.values()),
            "rejected": sum(n for (o, _), n in self._counts.items() if o == "rejected"),
            "skipped": sum(n for (o, _), n in self._counts.items() if o == "skipped"),
        }

    def reasons(self) -> Counter[tuple[str, str, str]]:
        """(resource type, outcome, reason) -> count, for summaries."""
        return Counter((i.resource_type, i.outcome, i.reason) for i in self.issues)

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": [
                dict(zip(("resource_type", "read", "converted", "rejected", "skipped"), r, strict=True))
                for r in self.summary_rows()
            ],
            "totals": self.totals(),
            "balanced": self.balanced(),
            "mapping_tables": list(self.versions),
            "issues": [asdict(i) | {"where": i.where()} for i in self.issues],
            "unmapped_codes": dict(self.unmapped_codes.most_common()),
            "unit_conversions": dict(self.unit_conversions.most_common()),
            "flags": dict(self.flags.most_common()),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    def to_text(self, max_reasons: int = 30) -> str:
        """A human-readable summary: counts per type, the commonest reasons, codes and units."""
        rows = [f"{'resource type':28} {'read':>8} {'converted':>10} {'rejected':>9} {'skipped':>8}"]
        rows += [f"{t:28} {r:8d} {c:10d} {j:9d} {s:8d}" for t, r, c, j, s in self.summary_rows()]
        tot = self.totals()
        rows.append(
            f"{'total':28} {tot['read']:8d} {tot['converted']:10d} {tot['rejected']:9d} {tot['skipped']:8d}"
        )
        rows.append(
            f"counts add up (read = converted + rejected + skipped): {'yes' if self.balanced() else 'NO'}"
        )
        if self.issues:
            rows.append("\nreasons (commonest first):")
            for (t, o, why), n in self.reasons().most_common(max_reasons):
                rows.append(f"  {n:7d}  {t} {o}: {why}")
        if self.unmapped_codes:
            rows.append("\nunmapped codes:")
            rows += [f"  {n:7d}  {code}" for code, n in self.unmapped_codes.most_common(max_reasons)]
        if self.unit_conversions:
            rows.append("\nunit conversions:")
            rows += [f"  {n:7d}  {u}" for u, n in self.unit_conversions.most_common()]
        if self.flags:
            rows.append("\nflags:")
            rows += [f"  {n:7d}  {f}" for f, n in self.flags.most_common()]
        if self.versions:
            rows.append("\nmapping tables: " + ", ".join(self.versions))
        return "\n".join(rows) + "\n"
