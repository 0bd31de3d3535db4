"""The one import report: every unit read is converted, rejected or skipped, with a reason.

Used by every importer (FHIR, omics, NONMEM). Counts add up per unit (resource type, VCF
line, gene call, table row ...): ``read == converted + rejected + skipped``. Memory stays
bounded on a feed of any size: reasons are *counted* (at most ``MAX_REASONS`` distinct texts
per unit and outcome, the rest folded into one "other reasons" line) and only the first
``EXAMPLES_PER_REASON`` occurrences of each keep where they happened.

An example's ``source`` is what the importer saw (a file path, which may identify a patient);
the serialisers (:meth:`ImportReport.to_dict`, :meth:`ImportReport.to_text`) take a ``hide``
function that turns it into a keyed token, so written reports never carry a raw path, while
the operator's console (:func:`interop.cli.imports.print_report`) can still name the file.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from interop.schema.record_store import write_text_atomic

__all__ = [
    "EXAMPLES_PER_REASON",
    "MAX_REASONS",
    "Hide",
    "ConversionReport",
    "ImportReport",
    "Issue",
    "Outcome",
    "Tally",
    "write_report",
]

Outcome = Literal["rejected", "skipped"]
EXAMPLES_PER_REASON = 5
MAX_REASONS = 200  # distinct reason texts kept per (unit, outcome); more are counted as one
OTHER_REASONS = "other reasons (too many distinct reasons to list)"
Hide = Callable[[str], str]


def _shown(source: str) -> str:
    return source


@dataclass(frozen=True)
class Issue:
    """Where one rejected or skipped unit was: file, line, (pseudonymous) id, field, free text."""

    outcome: Outcome
    resource_type: str
    reason: str
    source: str | None = None  # file or URL as read: hidden by the serialisers
    line: int | None = None
    resource_id: str | None = None  # pseudonymous (keyed hash), never the raw id
    field: str | None = None
    detail: str | None = None  # free-text location given by an importer (``Tally.reject(where=)``)

    def where(self, hide: Hide = _shown, source: str | None = None) -> str:
        """``file:line, Type/id, field f`` (the file as ``hide`` shows it).

        A free-text ``detail`` is shown as given, except that the name of the report's own
        ``source`` file in it is shown as ``hide`` shows that file.
        """
        if self.detail is not None:
            if source:
                name = Path(source).name
                return self.detail.replace(name, hide(source)) if name else self.detail
            return self.detail
        parts = [
            p
            for p in (
                self.source and hide(self.source) + (f":{self.line}" if self.line else ""),
                self.resource_id and f"{self.resource_type}/{self.resource_id}",
                self.field and f"field {self.field}",
            )
            if p
        ]
        return ", ".join(parts)

    def to_dict(self, hide: Hide = _shown, source: str | None = None) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "resource_type": self.resource_type,
            "reason": self.reason,
            "source": hide(self.source) if self.source else None,
            "line": self.line,
            "resource_id": self.resource_id,
            "field": self.field,
            "where": self.where(hide, source),
        }


Key = tuple[str, str, str]  # (unit, outcome, reason)


@dataclass
class ImportReport:
    """Counts per unit and per reason, a few examples per reason, and facts about the import."""

    source: str = ""
    read: Counter[str] = field(default_factory=Counter)
    converted: Counter[str] = field(default_factory=Counter)
    reason_counts: Counter[Key] = field(default_factory=Counter)
    examples: dict[Key, list[Issue]] = field(default_factory=dict)
    unmapped_codes: Counter[str] = field(default_factory=Counter)
    unit_conversions: Counter[str] = field(default_factory=Counter)
    flags: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)  # facts about converted units
    warnings: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    versions: tuple[str, ...] = ()  # mapping tables used
    max_examples: int = EXAMPLES_PER_REASON
    _distinct: Counter[tuple[str, str]] = field(default_factory=Counter, repr=False)
    _counts: Counter[tuple[str, str]] = field(default_factory=Counter, repr=False)

    # -- recording -------------------------------------------------------------------------------
    def add(self, outcome: Outcome, resource_type: str, reason: str, n: int = 1, **where: Any) -> None:
        """Count ``n`` units of ``resource_type`` as rejected/skipped for ``reason`` (not as read)."""
        key = (resource_type, outcome, reason)
        if key not in self.reason_counts:
            if self._distinct[(resource_type, outcome)] >= MAX_REASONS:
                key = (resource_type, outcome, OTHER_REASONS)
            else:
                self._distinct[(resource_type, outcome)] += 1
        self.reason_counts[key] += n
        self._counts[(outcome, resource_type)] += n
        shown = self.examples.setdefault(key, [])
        if len(shown) < self.max_examples and any(v is not None for v in where.values()):
            shown.append(Issue(outcome, resource_type, reason, **where))

    def merge(self, other: ImportReport, order: Callable[[Issue], Any] | None = None) -> None:
        """Add ``other``'s counts, reasons and examples (a partition's report into the import's).

        With ``order`` (where an issue was read), each reason keeps its first examples in that
        order, as one process reading everything in order would have kept them.
        """
        for mine, theirs in (
            (self.read, other.read),
            (self.converted, other.converted),
            (self.unmapped_codes, other.unmapped_codes),
            (self.unit_conversions, other.unit_conversions),
            (self.flags, other.flags),
            (self.counts, other.counts),
        ):
            for k, v in theirs.items():
                mine[k] += v
        for (unit, outcome, reason), n in other.reason_counts.items():
            key = (unit, outcome, reason)
            if key not in self.reason_counts:
                if self._distinct[(unit, outcome)] >= MAX_REASONS:
                    key = (unit, outcome, OTHER_REASONS)
                else:
                    self._distinct[(unit, outcome)] += 1
            self.reason_counts[key] += n
            self._counts[(outcome, unit)] += n
            shown = self.examples.setdefault(key, [])
            shown.extend(other.examples.get((unit, outcome, reason), []))
            if order is not None:
                shown.sort(key=order)
            del shown[self.max_examples :]
        self.warnings.extend(w for w in other.warnings if w not in self.warnings)
        self.written.extend(other.written)

    def tally(self, unit: str) -> Tally:
        """A view counting one kind of unit (the omics importers' way of recording)."""
        self.read.setdefault(unit, 0)
        return Tally(self, unit)

    # -- reading ---------------------------------------------------------------------------------
    def count(self, outcome: Outcome, resource_type: str) -> int:
        return self._counts[(outcome, resource_type)]

    @property
    def tallies(self) -> dict[str, Tally]:
        return {t: Tally(self, t) for t in self.types()}

    @property
    def issues(self) -> list[Issue]:
        """Every kept example (bounded), in the order reasons were first seen."""
        return [i for shown in self.examples.values() for i in shown]

    def iter_examples(self, outcome: Outcome | None = None) -> Iterator[Issue]:
        for (_, o, _), shown in self.examples.items():
            if outcome is None or o == outcome:
                yield from shown

    def types(self) -> list[str]:
        return sorted(set(self.read) | set(self.converted) | {t for _, t in self._counts})

    def balanced(self) -> bool:
        """The count identity: read = converted + rejected + skipped, for every unit."""
        return all(
            self.read[t] == self.converted[t] + self.count("rejected", t) + self.count("skipped", t)
            for t in self.types()
        )

    def all_rejected(self) -> bool:
        """Something was read and nothing at all was converted: the input is unusable."""
        tot = self.totals()
        return tot["read"] > 0 and tot["converted"] == 0 and tot["rejected"] > 0

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
        """(unit, outcome, reason) -> count, for summaries."""
        return Counter(self.reason_counts)

    # -- writing ---------------------------------------------------------------------------------
    def to_dict(self, hide: Hide = _shown) -> dict[str, Any]:
        return {
            "source": hide(self.source) if self.source else None,
            "counts": [
                dict(zip(("resource_type", "read", "converted", "rejected", "skipped"), r, strict=True))
                for r in self.summary_rows()
            ],
            "totals": self.totals(),
            "balanced": self.balanced(),
            "mapping_tables": list(self.versions),
            "reasons": [
                {
                    "resource_type": t,
                    "outcome": o,
                    "reason": why,
                    "count": n,
                    "examples": [i.to_dict(hide, self.source) for i in self.examples.get((t, o, why), [])],
                }
                for (t, o, why), n in self.reason_counts.most_common()
            ],
            "unmapped_codes": dict(self.unmapped_codes.most_common()),
            "unit_conversions": dict(self.unit_conversions.most_common()),
            "flags": dict(self.flags.most_common()),
            "facts": dict(self.counts),
            "warnings": list(self.warnings),
            "written": len(set(self.written)),
        }

    def as_dict(self, hide: Hide = _shown) -> dict[str, Any]:
        return self.to_dict(hide)

    def to_json(self, hide: Hide = _shown) -> str:
        return json.dumps(self.to_dict(hide), indent=2, default=str)

    def top_rejections(self, n: int = 10) -> tuple[list[Issue], int]:
        """The first ``n`` rejection examples (commonest reasons first) and how many rejections remain."""
        shown: list[Issue] = []
        for key, _ in self.reason_counts.most_common():
            if key[1] == "rejected":
                shown.extend(self.examples.get(key, [])[: max(0, n - len(shown))])
        shown = shown[:n]
        return shown, self.totals()["rejected"] - len(shown)

    def to_text(self, max_reasons: int = 30, hide: Hide = _shown, top: int = 10) -> str:
        """Counts per unit, the first rejections (file and line), the commonest reasons, codes, units."""
        rows = [f"{'resource type':28} {'read':>8} {'converted':>10} {'rejected':>9} {'skipped':>8}"]
        rows += [f"{t:28} {r:8d} {c:10d} {j:9d} {s:8d}" for t, r, c, j, s in self.summary_rows()]
        tot = self.totals()
        rows.append(
            f"{'total':28} {tot['read']:8d} {tot['converted']:10d} {tot['rejected']:9d} {tot['skipped']:8d}"
        )
        rows.append(
            f"counts add up (read = converted + rejected + skipped): {'yes' if self.balanced() else 'NO'}"
        )
        shown, rest = self.top_rejections(top)
        if shown:
            rows.append("\nrejections (first examples of the commonest reasons):")
            rows += [f"  {i.where(hide, self.source)}: {i.resource_type}: {i.reason}" for i in shown]
            if rest > 0:
                rows.append(f"  ... and {rest} more rejection(s) (counted per reason below)")
        if self.reason_counts:
            rows.append("\nreasons (commonest first):")
            for (t, o, why), n in self.reason_counts.most_common(max_reasons):
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
        if self.counts:
            rows.append("\nfacts:")
            rows += [f"  {n:7d}  {f}" for f, n in self.counts.items()]
        if self.warnings:
            rows.append("\nwarnings:")
            rows += [f"  {w}" for w in self.warnings]
        if self.versions:
            rows.append("\nmapping tables: " + ", ".join(self.versions))
        return "\n".join(rows) + "\n"


@dataclass(frozen=True)
class Tally:
    """The counts of one unit inside an :class:`ImportReport` (VCF lines, samples, gene calls ...)."""

    report: ImportReport
    unit: str

    def ok(self, n: int = 1) -> None:
        self.report.read[self.unit] += n
        self.report.converted[self.unit] += n

    def reject(self, reason: str, where: str | None = None) -> None:
        self.report.read[self.unit] += 1
        self.report.add("rejected", self.unit, reason, detail=where)

    def skip(self, reason: str, where: str | None = None, n: int = 1) -> None:
        self.report.read[self.unit] += n
        self.report.add("skipped", self.unit, reason, n, detail=where)

    @property
    def read(self) -> int:
        return self.report.read[self.unit]

    @property
    def converted(self) -> int:
        return self.report.converted[self.unit]

    def _reasons(self, outcome: Outcome) -> Counter[str]:
        return Counter(
            {
                why: n
                for (t, o, why), n in self.report.reason_counts.items()
                if t == self.unit and o == outcome
            }
        )

    @property
    def rejected(self) -> Counter[str]:
        return self._reasons("rejected")

    @property
    def skipped(self) -> Counter[str]:
        return self._reasons("skipped")

    @property
    def examples(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for (t, _, why), shown in self.report.examples.items():
            if t == self.unit and shown:
                out.setdefault(why, []).extend(i.where() for i in shown)
        return out

    @property
    def n_rejected(self) -> int:
        return self.report.count("rejected", self.unit)

    @property
    def n_skipped(self) -> int:
        return self.report.count("skipped", self.unit)

    @property
    def balanced(self) -> bool:
        return self.read == self.converted + self.n_rejected + self.n_skipped


def write_report(report: ImportReport, out: Path, hide: Hide, stem: str = "report") -> tuple[Path, Path]:
    """``out/<stem>.json`` and ``out/<stem>.txt``, each written atomically, sources shown by ``hide``."""
    report_json, report_txt = out / f"{stem}.json", out / f"{stem}.txt"
    write_text_atomic(report_json, report.to_json(hide))
    write_text_atomic(report_txt, report.to_text(hide=hide))
    return report_json, report_txt


ConversionReport = ImportReport  # the FHIR and NONMEM importers' former name: kept for a smooth merge
