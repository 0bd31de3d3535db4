"""What an import did: per kind of input unit, how many were read, converted, rejected, skipped.

Nothing is dropped silently: every unit read is converted, rejected (bad input) or skipped
(not for us, with a reason), and ``Tally.balanced`` checks that the counts add up. Reasons are
counted; the first few occurrences of each keep where they happened (file, line, sample).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["ImportReport", "Tally"]

EXAMPLES_PER_REASON = 5


@dataclass
class Tally:
    """Counts for one kind of unit (VCF lines, samples, gene calls, observations ...)."""

    unit: str
    read: int = 0
    converted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def ok(self, n: int = 1) -> None:
        self.read += n
        self.converted += n

    def reject(self, reason: str, where: str | None = None) -> None:
        self.read += 1
        self.rejected[reason] += 1
        self._example(reason, where)

    def skip(self, reason: str, where: str | None = None, n: int = 1) -> None:
        self.read += n
        self.skipped[reason] += n
        self._example(reason, where)

    def _example(self, reason: str, where: str | None) -> None:
        if where is not None:
            shown = self.examples.setdefault(reason, [])
            if len(shown) < EXAMPLES_PER_REASON:
                shown.append(where)

    @property
    def n_rejected(self) -> int:
        return sum(self.rejected.values())

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    @property
    def balanced(self) -> bool:
        return self.read == self.converted + self.n_rejected + self.n_skipped

    def as_dict(self) -> dict[str, object]:
        return {
            "unit": self.unit,
            "read": self.read,
            "converted": self.converted,
            "rejected": dict(self.rejected),
            "skipped": dict(self.skipped),
            "examples": self.examples,
        }


@dataclass
class ImportReport:
    """The tallies of one import, plus warnings that concern the whole input."""

    source: str
    tallies: dict[str, Tally] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)  # facts about converted units

    def tally(self, unit: str) -> Tally:
        if unit not in self.tallies:
            self.tallies[unit] = Tally(unit)
        return self.tallies[unit]

    @property
    def balanced(self) -> bool:
        return all(t.balanced for t in self.tallies.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "tallies": [t.as_dict() for t in self.tallies.values()],
            "counts": dict(self.counts),
            "warnings": list(self.warnings),
            "written": list(self.written),
        }
