"""How NONMEM compartment numbers map to routes and analytes: a small, card-independent table.

Converters cannot import the twin or a model card, so the caller says what CMT means:
``EventTableMapping(doses=(DoseCompartment(1, "oral"), DoseCompartment(2, "oral", rate_code=-2)),
levels=(LevelCompartment(2, analyte),))``. Dose rows that share a time, amount and repeat
and map to the same route are one dose split over several compartments (NONMEM's idiom for a
dose that goes part to a depot, part zero-order into the central compartment): they become
one ``Dose`` and the model card splits it again by its input fractions. A compartment mapped with
an administration id (``DoseCompartment(2, "iv-bolus", adm=2)``) marks its doses with it, so a model
that takes one route in several places (its card's ``DosingInput.adm``) receives each where it went.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from interop.schema import Coding
from interop.schema.patient import Route

__all__ = ["COVARIATE_SYSTEM", "DoseCompartment", "EventTableMapping", "LevelCompartment"]

COVARIATE_SYSTEM = "urn:digphat:nonmem-covariate"  # code system of covariate columns without a mapping
DEFAULT_ORIGIN = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class DoseCompartment:
    """Dose rows into ``cmt`` (and, when given, only those with RATE == ``rate_code``) are ``route``."""

    cmt: int
    route: Route
    rate_code: int | None = None  # -1 modelled rate, -2 modelled duration; None: RATE >= 0
    adm: int | None = None  # the administration id its doses carry (a model's input of the route)


@dataclass(frozen=True)
class LevelCompartment:
    """Observation rows in ``cmt`` are levels of ``analyte`` in ``unit``; with the mapping's
    ``observation_item``, the rows whose item is ``value`` (in ``cmt`` unless it is None; value
    None: the rows whose item no other level names)."""

    cmt: int | None
    analyte: Coding
    unit: str = "mg/L"
    value: float | None = None


@dataclass(frozen=True)
class EventTableMapping:
    drug: Coding
    doses: tuple[DoseCompartment, ...]
    levels: tuple[LevelCompartment, ...]
    amount_unit: str = "mg"
    covariates: dict[str, tuple[Coding, str]] = field(default_factory=dict)  # column -> (code, unit)
    origin: dt.datetime = DEFAULT_ORIGIN  # clock time of TIME = 0
    id_prefix: str = "nonmem-"
    observation_item: str | None = None  # a column (DVID) whose value routes observation rows

    def dose_compartment(self, cmt: int, rate: float) -> DoseCompartment | None:
        code = int(rate) if rate < 0 else None
        return next((d for d in self.doses if d.cmt == cmt and d.rate_code == code), None)

    def level_compartment(self, cmt: int, value: float | None = None) -> LevelCompartment | None:
        """The level of an observation row in ``cmt`` whose observation item is ``value``."""
        if self.observation_item is None:
            return next((lv for lv in self.levels if lv.cmt == cmt), None)
        here = [lv for lv in self.levels if lv.cmt in (None, cmt)]
        named = next((lv for lv in here if lv.value is not None and lv.value == value), None)
        named_anywhere = any(lv.value == value for lv in self.levels if lv.value is not None)
        if named is not None or named_anywhere:
            return named
        return next((lv for lv in here if lv.value is None), None)  # the ELSE branch: any other value

    def covariate_code(self, column: str) -> tuple[Coding, str]:
        """The code and unit of a covariate column (matched case-insensitively)."""
        by_upper = {k.upper(): v for k, v in self.covariates.items()}
        return by_upper.get(column.upper(), (Coding(system=COVARIATE_SYSTEM, code=column), "1"))
