"""The validation pipeline: stages, each with its own entry in a stored report.

    xml          safe XML parse (no DTD/entities, bounded size and depth)       registry.safexml
    sbml         libsbml reads the document (the format's schema)                libsbml
    consistency  libsbml consistency in every category: errors fail; unit and
                 modelling-practice warnings are listed                          libsbml
    card         every SBML id the card names exists; units are UCUM and the
                 SBML declares units for dosing targets and time                 libsbml, ucumvert
    simulate     loads and simulates in libRoadRunner over the card's span       injected
    reproduce    the card's reference outputs within their stated tolerance      injected

The last two need the twin runtime, which ``registry`` may not import: the composition root
passes a ``simulate_check(sbml, card) -> [StageResult, ...]`` (see
``interop.workflows.registry_validation``). A stage after a failed one is skipped. The
pipeline returns a report object; it does not log and carry on.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import libsbml

from interop.errors import InteropError
from interop.schema import ModelCard
from interop.schema.units import is_ucum
from registry.formats.sbml import read_document
from registry.safexml import XmlLimits, check_xml

__all__ = [
    "STAGES",
    "STAGES_ORDER",
    "Issue",
    "SimulateCheck",
    "StageResult",
    "ValidationReport",
    "validate_model",
]

STAGES_ORDER = STAGES = ("xml", "sbml", "consistency", "card", "simulate", "reproduce")
Status = Literal["passed", "warning", "failed", "skipped"]
Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Issue:
    severity: Severity
    message: str
    category: str = ""
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "message": self.message,
            "category": self.category,
            "line": self.line,
        }


@dataclass(frozen=True)
class StageResult:
    name: str
    status: Status
    issues: tuple[Issue, ...] = ()
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "seconds": round(self.seconds, 4),
            "issues": [i.to_dict() for i in self.issues],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StageResult:
        return cls(
            d["name"],
            d["status"],
            tuple(Issue(**i) for i in d.get("issues", ())),
            float(d.get("seconds", 0.0)),
        )


@dataclass(frozen=True)
class ValidationReport:
    stages: tuple[StageResult, ...] = field(default_factory=tuple)

    @property
    def is_valid(self) -> bool:
        return not any(s.failed for s in self.stages)

    @property
    def failed_stage(self) -> StageResult | None:
        return next((s for s in self.stages if s.failed), None)

    def stage(self, name: str) -> StageResult:
        return next(s for s in self.stages if s.name == name)

    def to_dicts(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.stages]

    @classmethod
    def from_dicts(cls, ds: Iterable[dict[str, Any]]) -> ValidationReport:
        return cls(tuple(StageResult.from_dict(d) for d in ds))


SimulateCheck = Callable[[str, ModelCard | None], list[StageResult]]

_CATEGORIES = {
    libsbml.LIBSBML_CAT_GENERAL_CONSISTENCY: "general",
    libsbml.LIBSBML_CAT_IDENTIFIER_CONSISTENCY: "identifier",
    libsbml.LIBSBML_CAT_UNITS_CONSISTENCY: "units",
    libsbml.LIBSBML_CAT_MATHML_CONSISTENCY: "mathml",
    libsbml.LIBSBML_CAT_SBO_CONSISTENCY: "sbo",
    libsbml.LIBSBML_CAT_OVERDETERMINED_MODEL: "overdetermined",
    libsbml.LIBSBML_CAT_MODELING_PRACTICE: "modelling-practice",
}


def _severity(err: libsbml.SBMLError) -> Severity:
    sev = err.getSeverity()
    if sev in (libsbml.LIBSBML_SEV_ERROR, libsbml.LIBSBML_SEV_FATAL):
        return "error"
    return "warning" if sev == libsbml.LIBSBML_SEV_WARNING else "info"


def _status(issues: list[Issue]) -> Status:
    if any(i.severity == "error" for i in issues):
        return "failed"
    return "warning" if any(i.severity == "warning" for i in issues) else "passed"


def _stage_xml(sbml: str, limits: XmlLimits, source: str | None) -> list[Issue]:
    try:
        check_xml(sbml.encode("utf-8"), source=source, limits=limits)
    except InteropError as exc:
        return [Issue("error", exc.message, "xml", exc.line)]
    return []


def _stage_consistency(doc: libsbml.SBMLDocument) -> list[Issue]:
    for cat in _CATEGORIES:
        doc.setConsistencyChecks(cat, True)
    doc.checkConsistency()
    log = doc.getErrorLog()
    issues = []
    for i in range(log.getNumErrors()):
        e = log.getError(i)
        cat = _CATEGORIES.get(e.getCategory(), e.getCategoryAsString())
        issues.append(Issue(_severity(e), f"[{e.getErrorId()}] {e.getMessage().strip()}", cat, e.getLine()))
    return issues


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MATH_NAMES = {
    "exp",
    "log",
    "ln",
    "pow",
    "sqrt",
    "abs",
    "time",
    "piecewise",
    "lt",
    "gt",
    "leq",
    "geq",
    "and",
    "or",
    "not",
    "min",
    "max",
    "floor",
    "ceil",
    "e",
    "pi",
    "true",
    "false",
}


def _stage_card(doc: libsbml.SBMLDocument, card: ModelCard) -> list[Issue]:
    model = doc.getModel()
    issues = []

    def exists(sid: str) -> bool:
        return model.getElementBySId(sid) is not None

    for sid in sorted(card.sbml_ids()):
        if not exists(sid):
            issues.append(Issue("error", f"the card names {sid!r}, which the SBML does not define", "ids"))
    for obs in card.observables:
        for name in _IDENT.findall(obs.sbml):
            if name not in _MATH_NAMES and not exists(name):
                issues.append(Issue("error", f"observable {obs.id!r}: {name!r} is not an SBML id", "ids"))
    units = [(f"observable {o.id}", o.unit) for o in card.observables]
    units += [(f"dosing {d.route}", d.amount_unit) for d in card.dosing]
    units += [(f"covariate {c.name}", c.source.unit) for c in card.covariates if c.source.unit]
    for what, unit in units:
        if not is_ucum(str(unit)):
            issues.append(Issue("error", f"{what}: unit {unit!r} is not UCUM", "units"))
    if not (
        model.isSetTimeUnits()
        or any(model.getUnitDefinition(i).getId() == "time" for i in range(model.getNumUnitDefinitions()))
    ):
        issues.append(Issue("warning", "the SBML declares no time units (the card assumes hours)", "units"))
    for d in card.dosing:
        sp = model.getSpecies(d.target)
        if sp is not None and not (sp.isSetSubstanceUnits() or model.isSetSubstanceUnits()):
            issues.append(
                Issue(
                    "warning",
                    f"dosing target {d.target!r} has no declared substance units "
                    f"(the card says {d.amount_unit})",
                    "units",
                )
            )
    return issues


def validate_model(
    sbml: str,
    card: ModelCard | None,
    *,
    simulate_check: SimulateCheck | None = None,
    source: str | None = None,
    limits: XmlLimits = XmlLimits(),
) -> ValidationReport:
    """Run every stage over (``sbml``, ``card``); later stages are skipped after a failure."""
    stages: list[StageResult] = []
    failed = False

    def run(name: str, fn: Callable[[], list[Issue]]) -> None:
        nonlocal failed
        if failed:
            stages.append(StageResult(name, "skipped", (Issue("info", "an earlier stage failed"),)))
            return
        t0 = time.perf_counter()
        issues = fn()
        result = StageResult(name, _status(issues), tuple(issues), time.perf_counter() - t0)
        failed = result.failed
        stages.append(result)

    run("xml", lambda: _stage_xml(sbml, limits, source))
    doc: list[libsbml.SBMLDocument] = []

    def read() -> list[Issue]:
        try:
            doc.append(read_document(sbml, source=source))
        except InteropError as exc:
            return [Issue("error", exc.message, "sbml", exc.line)]
        d = doc[0]
        return [Issue("info", f"SBML Level {d.getLevel()} Version {d.getVersion()}", "sbml")]

    run("sbml", read)
    run("consistency", lambda: _stage_consistency(doc[0]))
    if card is None:
        stages.append(
            StageResult(
                "card",
                "skipped",
                (Issue("info", "no model card: the version can be simulated but not bound to patients"),),
            )
        )
    else:
        run("card", lambda: _stage_card(doc[0], card))
    if failed or simulate_check is None:
        why = "an earlier stage failed" if failed else "no simulator supplied to the pipeline"
        stages += [StageResult(n, "skipped", (Issue("info", why),)) for n in ("simulate", "reproduce")]
    else:
        t0 = time.perf_counter()
        extra = simulate_check(sbml, card)
        if len(extra) == 1 or not extra:
            extra = [*extra, StageResult("reproduce", "skipped", (Issue("info", "not run"),))]
        extra = [
            StageResult(s.name, s.status, s.issues, s.seconds or (time.perf_counter() - t0)) for s in extra
        ]
        stages += extra
    return ValidationReport(tuple(stages))
