"""Code mapping tables: LOINC -> measurement kind and unit, RxNorm <-> ATC, product codes -> RxNorm.

The tables are versioned CSV files shipped with the package (``converters/fhir/data``); a site
adds its own codes in a CSV of the same columns passed as ``extra_tables``, without code changes.
A measurement table may add a ``system`` column: its rows then map codes of any code system
(SNOMED CT, a site's local codes) as LOINC rows do; an empty ``system`` means LOINC.
A table's kind is told by its header: ``code,category,...`` (labs), ``rxnorm,atc,name`` (drugs),
``system,code,rxnorm,...`` (product or local drug codes), ``rxcui,strength,...`` (strength per
unit of an RxNorm clinical drug, for unitless doses).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from interop.errors import ConversionError
from interop.schema import ATC, LOINC, RXNORM, Coding

__all__ = ["CodeTables", "LabCode", "load_code_tables"]


@dataclass(frozen=True)
class LabCode:
    code: str
    display: str
    category: str
    unit: str
    kind: str
    analyte: Coding | None
    matrix: str | None
    molar_mass: float | None
    low: float | None = None  # plausible range in ``unit``
    high: float | None = None
    system: str = LOINC  # code system of ``code``


@dataclass(frozen=True)
class CodeTables:
    labs: dict[str, LabCode]  # LOINC code (or "system|code" for other systems) -> entry
    rxnorm_to_atc: dict[str, str]
    names: dict[str, str]  # RxNorm code -> name
    versions: tuple[str, ...]
    drug_aliases: dict[tuple[str, str], str] = field(default_factory=dict)  # (system, code) -> RxNorm
    # RxNorm clinical drug -> (strength, unit, per, per unit, table@version)
    strengths: dict[str, tuple[float, str, float, str, str]] = field(default_factory=dict)

    def drug_codings_for(self, codings: list[dict[str, Any]]) -> tuple[tuple[Coding, ...], bool]:
        """Schema codes for a medication's codings, and whether they mapped to a known ingredient.

        Unmapped codings are kept as they came (so nothing is lost) and the caller reports them.
        """
        for c in codings:
            system, code = str(c.get("system") or ""), str(c.get("code") or "")
            if system == RXNORM and code in self.names:
                return self.drug_codings(code), True
            alias = self.drug_aliases.get((system, code))
            if alias:
                return self.drug_codings(alias), True
            if system == ATC:
                rx = next((r for r, a in self.rxnorm_to_atc.items() if a == code), None)
                if rx:
                    return self.drug_codings(rx), True
        kept = tuple(
            Coding(
                system=str(c["system"]),
                code=str(c["code"]),
                display=str(c["display"]) if c.get("display") else None,
            )
            for c in codings
            if c.get("system") and c.get("code")
        )
        return kept, False

    def lab(self, coding_system: str | None, code: str | None) -> LabCode | None:
        if not coding_system or not code:
            return None
        return self.labs.get(code if coding_system == LOINC else f"{coding_system}|{code}")

    def drug_codings(self, rxnorm: str) -> tuple[Coding, ...]:
        name = self.names.get(rxnorm)
        out = [Coding(system=RXNORM, code=rxnorm, display=name)]
        atc = self.rxnorm_to_atc.get(rxnorm)
        if atc:
            out.append(Coding(system=ATC, code=atc, display=name))
        return tuple(out)


def _rows(path: Path | str, text: str) -> tuple[list[dict[str, str]], str]:
    lines = text.splitlines()
    version = next(
        (
            ln.split("version:", 1)[1].split(";")[0].strip()
            for ln in lines
            if ln.startswith("#") and "version:" in ln
        ),
        "unversioned",
    )
    body = [ln for ln in lines if ln.strip() and not ln.startswith("#")]
    return list(csv.DictReader(body)), f"{Path(str(path)).name}@{version}"


def _load(tables: list[tuple[str, str]]) -> CodeTables:
    labs: dict[str, LabCode] = {}
    rx: dict[str, str] = {}
    names: dict[str, str] = {}
    aliases: dict[tuple[str, str], str] = {}
    strengths: dict[str, tuple[float, str, float, str, str]] = {}
    versions = []
    for name, text in tables:
        rows, version = _rows(name, text)
        versions.append(version)
        for line, row in enumerate(rows, start=2):
            try:
                if "rxcui" in row and "strength" in row:
                    per = float(row["per"])
                    amount = float(row["strength"])
                    if per <= 0 or amount <= 0:
                        raise ValueError("strength and per must be > 0")
                    strengths[row["rxcui"]] = (amount, row["strength_unit"], per, row["per_unit"], version)
                    continue
                if "system" in row and "rxnorm" in row:
                    aliases[(row["system"], row["code"])] = row["rxnorm"]
                    continue
                if "rxnorm" in row:
                    rx[row["rxnorm"]] = row["atc"]
                    names[row["rxnorm"]] = row["name"]
                    continue
                analyte = None
                if row.get("analyte_code"):
                    analyte = Coding(
                        system=row["analyte_system"],
                        code=row["analyte_code"],
                        display=row.get("analyte_display") or None,
                    )
                system = row.get("system") or LOINC
                labs[row["code"] if system == LOINC else f"{system}|{row['code']}"] = LabCode(
                    code=row["code"],
                    display=row["display"],
                    category=row["category"],
                    unit=row["unit"],
                    kind=row["kind"],
                    analyte=analyte,
                    matrix=row.get("matrix") or None,
                    molar_mass=float(row["molar_mass"]) if row.get("molar_mass") else None,
                    low=float(row["min"]) if row.get("min") else None,
                    high=float(row["max"]) if row.get("max") else None,
                    system=system,
                )
            except (KeyError, ValueError) as exc:
                raise ConversionError(f"bad mapping row: {exc}", source=name, line=line) from exc
    return CodeTables(labs, rx, names, tuple(versions), aliases, strengths)


@lru_cache(maxsize=8)
def load_code_tables(extra_tables: tuple[Path, ...] = ()) -> CodeTables:
    """The shipped tables, overlaid by a site's own tables (later rows win)."""
    data = files("converters.fhir") / "data"
    tables = [
        (n, (data / n).read_text(encoding="utf-8"))
        for n in ("loinc.csv", "drugs.csv", "drug_codes.csv", "rxnorm_strengths.csv")
    ]
    for path in extra_tables:
        try:
            tables.append((str(path), Path(path).read_text(encoding="utf-8")))
        except OSError as exc:
            raise ConversionError(f"cannot read mapping table: {exc}", source=str(path)) from exc
    return _load(tables)
