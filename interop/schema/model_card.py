"""Contract 2: the model card, version 1 — what SBML cannot say, and how a patient binds.

SBML carries the deterministic equations. Individual parameters are SBML assignment rules
over typical values, covariates and random effects (``CL := TVCL*(WT/70)^0.75*exp(ETA_CL)``);
each ``ETA_*`` is an SBML parameter, 0 by default. The card names those ids; the registry's
cross-check verifies that each one exists in the SBML.

A hybrid card (version 1.2) names registered ML models (``ml_models``) whose prediction is
written to an SBML parameter: a typical value (replacing or multiplying the covariate model) or
a correction of the individual prediction (docs/ml-models.md).

Covariates (version 1.1) come from measurements, age or sex, pharmacogene calls, conditions,
co-medication or formulas over other covariates, each with a timing rule; the twin binds them
in :mod:`interop.twin.covariates` (docs/covariates.md).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any, Literal, Self

import numpy as np
from pydantic import Field, field_validator, model_validator

from interop.schema.base import Coding, Frozen
from interop.schema.model_id import MODEL_ID, MODEL_ID_RULE
from interop.schema.patient import Route
from interop.schema.residual_error import ResidualError

SBML_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# 1.1: covariates from genotypes, conditions, co-medication and formulas; timing rules; the
# parameter table. 1.2: ML models (``ml_models``) supplying a typical value or a correction.
# 1.3: administration ids (``DosingInput.adm``, ``CompartmentDose.adm``) telling apart inputs of
# one route (a reference dose names one with ``ReferenceDose.adm``); the power and sbml residual
# error forms. Cards of versions 1.0 to 1.2 parse unchanged.
CARD_SCHEMA_VERSION: Literal["1.3"] = "1.3"


def _sbml_id(v: str) -> str:
    if not SBML_ID.match(v):
        raise ValueError(f"{v!r} is not an SBML identifier")
    return v


class Person(Frozen):
    name: str = Field(min_length=1)
    orcid: str | None = Field(default=None, pattern=r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$")
    email: str | None = None


class Publication(Frozen):
    doi: str | None = None
    pubmed: str | None = Field(default=None, pattern=r"^\d+$")
    citation: str | None = None


class DosingInput(Frozen):
    """For one route: where the dose (or a fraction of it) goes and how.

    A route may have several inputs whose fractions add up to at most 1: a dose split between
    a depot (first order) and a zero-order input into the central compartment, say.

    A model dosed by one route in several places (an IV bolus into either of two compartments)
    tells them apart by an administration id, ``adm`` (PharmML's ``adm``, the dataset's ADM or
    CMT value): a dose that names one goes to the inputs of its route with that ``adm``; a dose
    that names none goes to the route's primary inputs, those without ``adm`` or, when every
    input of the route has one, those with the first ``adm`` listed for it.
    """

    route: Route
    fraction: float = Field(default=1.0, gt=0, le=1, description="Share of each dose sent here")
    target: str = Field(description="SBML species that receives the dose (as amount)")
    amount_unit: str = Field(default="mg", description="UCUM unit of the dose amount")
    bioavailability: float | str = Field(
        default=1.0, description="Fraction absorbed: a number or an SBML parameter id"
    )
    lag_time_h: float | str | None = Field(
        default=None, description="Absorption lag: hours or an SBML parameter id"
    )
    duration_parameter: str | None = Field(
        default=None,
        description="SBML id of a modelled zero-order input duration (NONMEM RATE=-2)",
    )
    adm: int | None = Field(
        default=None,
        ge=0,
        description="Administration id telling this input from others of its route (PharmML adm, "
        "the dataset's ADM/CMT value); None: the route's primary input",
    )

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        return _sbml_id(v)

    @field_validator("bioavailability")
    @classmethod
    def _f(cls, v: float | str) -> float | str:
        if isinstance(v, str):
            return _sbml_id(v)
        if not 0 < v <= 1:
            raise ValueError(f"bioavailability must be in (0, 1] (got {v})")
        return v


class Observable(Frozen):
    """A predicted quantity that matches a kind of measurement."""

    id: str = Field(description="Name used in results and residual error entries")
    sbml: str = Field(description="SBML id (or infix expression over SBML ids) of the prediction")
    unit: str = Field(description="UCUM unit of the prediction, e.g. mg/L")
    analyte: Coding = Field(description="Drug or metabolite predicted; matches DrugLevel.analyte")
    measurement_codes: tuple[Coding, ...] = Field(
        default=(), description="Measurement codes (LOINC) this observable predicts"
    )

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return _sbml_id(v)


GenotypeRead = Literal["phenotype", "diplotype", "activity_score"]
TimingRule = Literal["auto", "locf", "nonmem", "baseline"]


class GenotypeSource(Frozen):
    """A pharmacogene call read from the record's genotypes and mapped to a model value.

    Only a definite call binds: an uncertain, indeterminate or unmapped call counts as missing
    (the covariate's ``missing`` rule applies and the twin reports it), never as the reference.
    """

    gene: str = Field(pattern=r"^[A-Z0-9-]+$", description="HGNC symbol, e.g. CYP3A5")
    read: GenotypeRead = Field(default="phenotype", description="What to read from the call")
    values: dict[str, float] = Field(
        default_factory=dict,
        description="Call -> model value, e.g. {'Poor Metabolizer': 1}; for activity_score, "
        "empty means the score itself",
    )

    @model_validator(mode="after")
    def _mapping(self) -> Self:
        if self.read != "activity_score" and not self.values:
            raise ValueError(f"a {self.read} covariate needs values (call -> model value)")
        return self


class ConditionSource(Frozen):
    """1 while any of the codes is active (onset <= t < abatement), else 0."""

    codes: tuple[Coding, ...] = Field(
        min_length=1, description="SNOMED CT / ICD-10 codes, descendants listed explicitly"
    )
    present: float = 1.0
    absent: float = 0.0


class CoMedicationSource(Frozen):
    """Another drug given (or reported active) within ``window_h`` before the time: 0/1 or the dose."""

    codes: tuple[Coding, ...] = Field(default=(), description="RxNorm / ATC codes")
    atc_prefixes: tuple[str, ...] = Field(default=(), description="ATC classes, e.g. J04AB (rifamycins)")
    window_h: float = Field(default=168.0, gt=0, description="Look-back window before the time, hours")
    statuses: tuple[Literal["administered", "ordered", "reported"], ...] = ("administered", "reported")
    mode: Literal["indicator", "dose"] = Field(
        default="indicator", description="indicator: 0/1; dose: total amount in the window"
    )
    dose_unit: str | None = Field(default=None, description="UCUM unit of the summed dose (mode dose)")

    @model_validator(mode="after")
    def _some_code(self) -> Self:
        if not self.codes and not self.atc_prefixes:
            raise ValueError("a co-medication covariate needs codes or atc_prefixes")
        if self.mode == "dose" and not self.dose_unit:
            raise ValueError("a dose-dependent co-medication covariate needs dose_unit")
        return self


class DerivedSource(Frozen):
    """A formula over other covariates: a library formula by name, or an expression.

    Expressions use the safe language of :mod:`interop.twin.formulas` (numbers, covariate
    names, + - * / **, min/max/exp/log/sqrt/abs, ``if_else(cond, a, b)`` and comparisons).
    """

    formula: str | None = Field(default=None, description="Library formula, e.g. cockcroft_gault")
    expression: str | None = Field(default=None, description="Own expression over covariate names")
    inputs: dict[str, str] = Field(
        default_factory=dict, description="Formula variable -> covariate name (library formulas)"
    )

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.formula is None) == (self.expression is None):
            raise ValueError("give exactly one of formula or expression")
        return self


class CovariateSource(Frozen):
    """Where a covariate comes from in the patient schema: exactly one source."""

    measurement: Coding | None = Field(default=None, description="Measurement code: LOINC or any system")
    unit: str | None = Field(default=None, description="UCUM unit the model expects")
    patient_field: Literal["age_years", "sex"] | None = None
    categories: dict[str, float] = Field(
        default_factory=dict, description="Category -> model value, e.g. {female: 1, male: 0}"
    )
    genotype: GenotypeSource | None = None
    condition: ConditionSource | None = None
    comedication: CoMedicationSource | None = None
    derived: DerivedSource | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [
            n
            for n in ("measurement", "patient_field", "genotype", "condition", "comedication", "derived")
            if getattr(self, n) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of measurement, patient_field, genotype, condition, comedication, "
                f"derived (got {', '.join(given) or 'none'})"
            )
        if self.measurement is not None and not self.unit:
            raise ValueError("a measurement covariate needs the unit the model expects")
        if self.patient_field == "sex" and not self.categories:
            raise ValueError("sex needs categories, e.g. {'female': 1, 'male': 0}")
        return self

    @property
    def kind(self) -> str:
        """measurement, age_years, sex, genotype, condition, comedication or derived."""
        if self.patient_field is not None:
            return self.patient_field
        for n in ("measurement", "genotype", "condition", "comedication", "derived"):
            if getattr(self, n) is not None:
                return n
        raise AssertionError("unreachable: validated to have one source")


class Covariate(Frozen):
    name: str = Field(description="SBML parameter the covariate value is written to")
    source: CovariateSource
    reference: float | None = Field(default=None, description="Reference (typical) value")
    missing: Literal["error", "reference"] = "error"
    time_varying: bool = True
    unit: str | None = Field(default=None, description="UCUM unit of the model value ('1' if none)")
    timing: TimingRule = Field(
        default="auto",
        description="How values hold between records: locf (from the record on; FHIR data), nonmem "
        "(backwards to the previous record), baseline (first value throughout); auto picks by the "
        "records' provenance (NONMEM event tables: nonmem, else locf)",
    )
    before_first: Literal["first", "missing"] = Field(
        default="first",
        description="locf before the first record: its value (first), or the missing rule (missing)",
    )
    to_model: bool = Field(
        default=True, description="False: only an input of derived covariates, not an SBML parameter"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _sbml_id(v)

    @model_validator(mode="after")
    def _reference_when_needed(self) -> Self:
        if self.missing == "reference" and self.reference is None:
            raise ValueError("missing='reference' needs a reference value")
        return self


class ModelParameter(Frozen):
    """One row of the model's parameter table: value, unit and where the value came from."""

    id: str = Field(description="SBML parameter id")
    value: float
    unit: str = Field(min_length=1, description="UCUM unit ('1' for dimensionless)")
    description: str = ""
    source: str = Field(default="", description="Where the value comes from, e.g. 'Table 2'")

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return _sbml_id(v)


class Occasion(Frozen):
    """Inter-occasion variability: one ETA per occasion for a parameter."""

    parameter: str
    etas: tuple[str, ...] = Field(min_length=1, description="SBML ids, one per occasion")
    variance: float = Field(gt=0)


class RandomEffects(Frozen):
    """Between-subject random effects: the ETA parameters and their Omega (variances)."""

    etas: tuple[str, ...] = ()
    omega: tuple[tuple[float, ...], ...] = Field(
        default=(), description="Variance-covariance matrix, rows in the order of etas"
    )
    occasions: tuple[Occasion, ...] = ()
    occasion_covariate: str | None = Field(
        default=None,
        description="Card covariate whose value k (1, 2, ...) is the occasion, as NONMEM's OCC column; "
        "default: occasions follow the doses",
    )
    doses_per_occasion: int = Field(
        default=1, ge=1, description="Without occasion_covariate: distinct dose times per occasion (a cycle)"
    )

    @model_validator(mode="after")
    def _omega_valid(self) -> Self:
        n = len(self.etas)
        for e in self.etas:
            _sbml_id(e)
        if len(set(self.etas)) != n:
            raise ValueError("etas must be unique")
        if len(self.omega) != n or any(len(row) != n for row in self.omega):
            raise ValueError(f"omega must be {n}x{n} to match etas")
        if n:
            m = np.asarray(self.omega, dtype=float)
            if not np.all(np.isfinite(m)) or not np.allclose(m, m.T, rtol=0, atol=1e-12):
                raise ValueError("omega must be finite and symmetric")
            if np.linalg.eigvalsh(m).min() <= 0:
                raise ValueError("omega must be positive definite")
        return self

    def omega_matrix(self) -> np.ndarray:
        return np.asarray(self.omega, dtype=float).reshape(len(self.etas), len(self.etas))


class ValidityDomain(Frozen):
    population: str = Field(default="", description="e.g. adults with normal renal function")
    taxon: str = Field(default="9606", description="NCBI taxon id")
    covariate_ranges: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="Covariate -> [low, high] the model is valid for (warned outside)"
    )


class ReferenceDose(Frozen):
    """A dose of a regimen given in hours from 0 (reference outputs, virtual subjects); with ``adm``,
    into the inputs of its route with that administration id, else into the route's primary ones."""

    route: Route
    amount: float = Field(gt=0)
    time_h: float = Field(ge=0)
    duration_h: float | None = Field(default=None, gt=0)
    adm: int | None = Field(default=None, ge=0, description="Administration id of the inputs it feeds")


class SedmlOutputRef(Frozen):
    """Where a reference output's expected values come from: one data set of a SED-ML report in the
    model's COMBINE archive, as the registry's SED-ML stage (Tellurium) computes it."""

    document: str | None = Field(
        default=None, description="SED-ML file name in the archive (None: the report id is unique)"
    )
    report: str = Field(min_length=1, description="id of the SED-ML report")
    data_set: str = Field(min_length=1, description="id or label of the report's data set (values)")
    time_data_set: str = Field(default="time", description="id or label of its time data set (hours)")


class ReferenceOutput(Frozen):
    """A simulation whose result any correct runtime must reproduce.

    The expected values are given inline (``times_h`` and ``values``) or, with ``sedml``, taken from
    a SED-ML task's report in the archive when the registry validates the version (then ``values``
    stays empty; ``times_h``, if given, selects the report's rows at those times).
    """

    description: str = ""
    observable: str
    doses: tuple[ReferenceDose, ...] = Field(min_length=1)
    covariates: dict[str, float] = Field(default_factory=dict)
    times_h: tuple[float, ...] = ()
    values: tuple[float, ...] = ()
    rtol: float = Field(default=1e-6, gt=0)
    sedml: SedmlOutputRef | None = Field(
        default=None, description="a SED-ML report data set holding the expected values"
    )

    @model_validator(mode="after")
    def _lengths(self) -> Self:
        if self.sedml is not None:
            if self.values:
                raise ValueError("a reference output from a SED-ML report takes no inline values")
            return self
        if not self.times_h or not self.values:
            raise ValueError("a reference output needs times_h and values (or a sedml report)")
        if len(self.times_h) != len(self.values):
            raise ValueError("times_h and values must have the same length")
        if any(not math.isfinite(v) for v in self.values):
            raise ValueError("reference values must be finite")
        return self

    @property
    def resolved(self) -> bool:
        """True when the expected values are known (inline, or filled from the SED-ML run)."""
        return bool(self.values)


# --- NONMEM compartment numbers (issue 14: model import) ---------------------------------------
class CompartmentDose(Frozen):
    """Dose rows of a NONMEM event table into ``cmt`` (with RATE ``rate_code``, if given) are ``route``
    (into the inputs with administration id ``adm``, when given)."""

    cmt: int = Field(ge=1)
    route: Route
    rate_code: Literal[-1, -2] | None = Field(default=None, description="-2: modelled duration (Dn)")
    adm: int | None = Field(default=None, ge=0, description="Administration id of the inputs it feeds")


class CompartmentLevel(Frozen):
    """Observation rows in ``cmt`` are levels of ``observable``; with the map's ``observation_item``,
    the rows whose item is ``value`` (in ``cmt`` when given, else in any CMT; no value: any value
    no other level names)."""

    cmt: int | None = Field(default=None, ge=1)
    observable: str
    value: float | None = Field(
        default=None, description="Value of the map's observation_item (None: others)"
    )


class CompartmentMap(Frozen):
    """How the source run's CMT numbers map to the card's inputs and observables (from NONMEM import)."""

    doses: tuple[CompartmentDose, ...] = ()
    levels: tuple[CompartmentLevel, ...] = ()
    observation_item: str | None = Field(
        default=None, description="Data item (DVID, FLAG...) whose value tells observation rows apart"
    )

    @model_validator(mode="after")
    def _levels_matched(self) -> CompartmentMap:
        for lv in self.levels:
            if self.observation_item is None and (lv.cmt is None or lv.value is not None):
                raise ValueError(f"level of {lv.observable!r}: a CMT and no value without observation_item")
        others = Counter(lv.cmt for lv in self.levels if lv.value is None)
        if self.observation_item is not None and max(others.values(), default=0) > 1:
            raise ValueError(f"several levels take the rows of any other value of {self.observation_item}")
        return self


class ResolvedML(Frozen):
    """An ML model version loaded for a twin: set by the loader (registry), never submitted."""

    version: int = Field(ge=1, description="Registry version number")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the ONNX bytes")
    card: dict[str, Any] = Field(description="The ML card (interop.schema.ml_card.MLCard) as JSON")
    onnx_base64: str = Field(min_length=1, description="The ONNX model, base64")


class MLLink(Frozen):
    """A registered ML model whose prediction is written to an SBML parameter of this model.

    ``role``: ``typical_value`` (the parameter is a typical value, e.g. TVCL: the ML prediction
    replaces it, with ``replaces_covariates`` held at their reference so their effects drop out,
    or multiplies it) or ``correction`` (the parameter enters an observable's expression, e.g.
    ``Cc * ML_CORR``: a correction of the individual prediction). The value is fixed per patient
    (features at the twin's origin); MAP individualises on top through the card's ETAs.
    ``on_missing``: a feature missing and not imputable either refuses the patient (``refuse``)
    or keeps the mechanistic value (``mechanistic``); either way the twin reports it.
    """

    model: str = Field(description="Registry reference ID@VERSION of the ML model (version pinned)")
    role: Literal["typical_value", "correction"]
    parameter: str = Field(description="SBML parameter (without assignment rule) receiving the value")
    mode: Literal["replace", "multiply"] = Field(
        default="replace", description="replace: parameter := prediction; multiply: parameter *= prediction"
    )
    replaces_covariates: tuple[str, ...] = Field(
        default=(), description="Covariates held at their reference value when the ML value is used"
    )
    on_missing: Literal["refuse", "mechanistic"] = "mechanistic"
    resolved: ResolvedML | None = Field(default=None, description="Filled by the loader; never submitted")

    @field_validator("model")
    @classmethod
    def _ref(cls, v: str) -> str:
        mid, sep, version = v.partition("@")
        if not sep or not MODEL_ID.match(mid) or not version.isdigit() or int(version) < 1:
            raise ValueError(f"{v!r} is not ID@VERSION (a twin pins the ML model's version)")
        return v

    @field_validator("parameter")
    @classmethod
    def _param(cls, v: str) -> str:
        return _sbml_id(v)

    @property
    def model_id(self) -> str:
        return self.model.partition("@")[0]

    @property
    def model_version(self) -> int:
        return int(self.model.partition("@")[2])


class ModelCard(Frozen):
    """What a registered model promises and how a patient binds to it."""

    schema_version: Literal["1.0", "1.1", "1.2", "1.3"] = CARD_SCHEMA_VERSION
    id: str = Field(description="Registry id: lower case, digits, . _ -")
    version: str = Field(default="1", min_length=1)
    title: str = Field(min_length=1)
    description: str = ""
    drugs: tuple[Coding, ...] = Field(min_length=1)
    publications: tuple[Publication, ...] = ()
    contributors: tuple[Person, ...] = ()
    institution: str = Field(min_length=1)
    licence: str = Field(default="CC-BY-4.0", min_length=1)
    time_unit: Literal["h"] = "h"
    dosing: tuple[DosingInput, ...] = Field(min_length=1)
    observables: tuple[Observable, ...] = Field(min_length=1)
    covariates: tuple[Covariate, ...] = ()
    random_effects: RandomEffects = RandomEffects()
    residual_error: tuple[ResidualError, ...] = ()
    validity: ValidityDomain = ValidityDomain()
    parameters: tuple[ModelParameter, ...] = Field(
        default=(), description="Parameter table: values, units and their sources"
    )
    reference_outputs: tuple[ReferenceOutput, ...] = ()
    compartments: CompartmentMap | None = Field(
        default=None, description="NONMEM CMT numbers of doses and observations (set by NONMEM import)"
    )
    ml_models: tuple[MLLink, ...] = Field(
        default=(), description="ML models supplying a typical value or a correction (hybrid twin)"
    )

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not MODEL_ID.match(v):
            raise ValueError(f"breaks the model id rule {MODEL_ID_RULE}")
        return v

    @model_validator(mode="after")
    def _cross_refs(self) -> Self:
        obs = {o.id for o in self.observables}
        if len(obs) != len(self.observables):
            raise ValueError("observable ids must be unique")
        occ = self.random_effects.occasion_covariate
        if occ is not None and occ not in {c.name for c in self.covariates}:
            raise ValueError(f"occasion_covariate {occ!r} is not one of the card's covariates")
        for r in self.residual_error:
            if r.observable not in obs:
                raise ValueError(f"residual_error names unknown observable {r.observable!r}")
        for ref in self.reference_outputs:
            if ref.observable not in obs:
                raise ValueError(f"reference_outputs names unknown observable {ref.observable!r}")
            for dose in ref.doses:
                if dose.adm is not None and not self.dosing_for(dose.route, dose.adm):
                    raise ValueError(
                        f"reference_outputs dose names {dose.route!r} adm {dose.adm} without input"
                    )
        names = [c.name for c in self.covariates]
        if len(set(names)) != len(names):
            raise ValueError("covariate names must be unique")
        _check_derived(self.covariates)
        for route, adm in {(d.route, d.adm) for d in self.dosing}:
            total = sum(d.fraction for d in self.dosing if d.route == route and d.adm == adm)
            if total > 1 + 1e-9:
                which = f"route {route!r}" + (f" adm {adm}" if adm is not None else "")
                raise ValueError(f"dosing fractions for {which} add up to {total:g} > 1")
        _check_ml_links(self)
        if self.compartments is not None:
            for lv in self.compartments.levels:
                if lv.observable not in obs:
                    raise ValueError(f"compartments names unknown observable {lv.observable!r}")
            for d in self.compartments.doses:
                if not self.dosing_for(d.route, d.adm):
                    which = "" if d.adm is None else f" adm {d.adm}"
                    raise ValueError(
                        f"compartments maps CMT {d.cmt} to route {d.route!r}{which} without input"
                    )
        return self

    def dosing_for(self, route: str, adm: int | None = None) -> tuple[DosingInput, ...]:
        """The inputs that a dose by ``route`` feeds (empty when the model has none): with ``adm``,
        those of that administration id (the primary ones when the route names none); without, the
        route's primary inputs (see :class:`DosingInput`)."""
        inputs = tuple(d for d in self.dosing if d.route == route)
        ids = [d.adm for d in inputs if d.adm is not None]
        if adm is not None and adm in ids:
            return tuple(d for d in inputs if d.adm == adm)
        if adm is not None and ids:
            return ()  # the route's inputs are told apart, and none has this id
        if any(d.adm is None for d in inputs) or not ids:
            return tuple(d for d in inputs if d.adm is None)
        return tuple(d for d in inputs if d.adm == ids[0])

    def administrations(self, route: str) -> tuple[int, ...]:
        """The administration ids that tell apart the inputs of ``route`` (empty: one input group)."""
        return tuple(dict.fromkeys(d.adm for d in self.dosing if d.route == route and d.adm is not None))

    def error_for(self, observable: str) -> ResidualError | None:
        return next((r for r in self.residual_error if r.observable == observable), None)

    def sbml_ids(self) -> set[str]:
        """Every SBML id the card names (for the registry's cross-check)."""
        ids = {d.target for d in self.dosing}
        for d in self.dosing:
            if isinstance(d.bioavailability, str):
                ids.add(d.bioavailability)
            if isinstance(d.lag_time_h, str):
                ids.add(d.lag_time_h)
            if d.duration_parameter:
                ids.add(d.duration_parameter)
        ids |= {o.sbml for o in self.observables if SBML_ID.match(o.sbml)}
        ids |= {c.name for c in self.covariates if c.to_model}
        ids |= {p.id for p in self.parameters}
        ids |= set(self.random_effects.etas)
        ids |= {m.parameter for m in self.ml_models}
        ids |= {r.sd_parameter for r in self.residual_error if r.sd_parameter}
        for occ in self.random_effects.occasions:
            ids |= set(occ.etas)
        return ids


def _check_ml_links(card: ModelCard) -> None:
    """Each parameter receives one ML model; replaced covariates exist with a reference; a
    correction's parameter appears in an observable's expression."""
    params = [m.parameter for m in card.ml_models]
    if len(set(params)) != len(params):
        raise ValueError("each parameter can receive the prediction of one ML model only")
    covs = {c.name: c for c in card.covariates}
    for m in card.ml_models:
        for name in m.replaces_covariates:
            if name not in covs or covs[name].reference is None:
                raise ValueError(
                    f"ml_models {m.model}: replaces_covariates names {name!r}, "
                    "not a covariate with a reference"
                )
        if m.role == "correction":
            used = {t for o in card.observables for t in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", o.sbml)}
            if m.parameter not in used:
                raise ValueError(
                    f"ml_models {m.model}: correction parameter {m.parameter!r} "
                    "appears in no observable's expression"
                )
            if m.replaces_covariates:
                raise ValueError(f"ml_models {m.model}: a correction replaces no covariate")


def _check_derived(covariates: tuple[Covariate, ...]) -> None:
    """Derived covariates name known covariates, parse, and do not depend on themselves."""
    from interop.schema.formulas import FormulaError, derived_inputs

    names = {c.name for c in covariates}
    deps: dict[str, set[str]] = {}
    for c in covariates:
        if c.source.derived is None:
            continue
        try:
            used = derived_inputs(c.source.derived)
        except FormulaError as exc:
            raise ValueError(f"covariate {c.name}: {exc}") from exc
        unknown = sorted(used - names)
        if unknown:
            raise ValueError(f"covariate {c.name} uses unknown covariate(s) {', '.join(unknown)}")
        deps[c.name] = used
    state: dict[str, int] = {}

    def visit(n: str) -> None:
        if state.get(n) == 1:
            raise ValueError(f"derived covariates depend on each other in a cycle through {n}")
        if state.get(n) == 2 or n not in deps:
            return
        state[n] = 1
        for m in deps[n]:
            visit(m)
        state[n] = 2

    for n in deps:
        visit(n)
