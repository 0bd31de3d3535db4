"""A product's strength from its RxNorm clinical drug (SCD/SBD) code, for unitless doses.

Synthea and many order systems send ``doseQuantity`` without a unit (1 = one tablet) and an
RxNorm clinical drug code whose normalised name states the strength ("Acetaminophen 325 MG
Oral Tablet"). The strength per unit of product then comes from, in order: the site's or the
shipped strength table (``rxnorm_strengths.csv``, versioned; a site table overrides rows), or
the normalised name of the coding's display. A name is trusted only when it is unambiguous:
one ingredient, a mass (or amount) strength, and a discrete dose form (tablet, capsule ...)
or a per-actuation strength. Everything else is rejected with the reason.

Written by hand: RxNorm's name grammar is small and fixed, and no maintained Python library
parses it offline (RxNav is a web service, which an import must not depend on).
"""

from __future__ import annotations

import re

from converters.fhir.context import Strength

__all__ = ["UNITLESS", "strength_from_name"]

UNITLESS = {"", "1", "{tbl}", "{tablet}", "{capsule}", "{dose}"}  # a count of units of product
_UNITS = {"MG": "mg", "MCG": "ug", "G": "g", "MEQ": "meq", "UNT": "[iU]"}
_STRENGTH = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?) (MG|MCG|G|MEQ|UNT)(?:/(ML|ACTUAT|HR|MG|G))?\b")
_DISCRETE = re.compile(
    r"\b(Tablet|Capsule|Lozenge|Suppository|Troche|Caplet|Pellet|Chewing Gum|Oral Wafer)\b", re.IGNORECASE
)


def strength_from_name(name: str) -> tuple[Strength | None, str]:
    """The strength per unit of product stated by an RxNorm normalised name, or None and why not."""
    found = _STRENGTH.findall(name)
    if not found:
        return None, "its RxNorm name states no strength"
    if len(found) > 1:
        return None, f"combination product ({len(found)} ingredients): no single strength"
    value, unit, per = found[0]
    if per == "ACTUAT":
        return Strength(float(value), _UNITS[unit], 1.0, "1"), "per actuation"
    if per:
        return None, f"strength per {per.lower()}: a unitless dose is ambiguous"
    if not _DISCRETE.search(name):
        return None, "its RxNorm name names no discrete dose form (tablet, capsule ...)"
    return Strength(float(value), _UNITS[unit], 1.0, "1"), "per unit of product"
