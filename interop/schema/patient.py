"""Contract 1: the shared patient schema (``PatientRecord`` and its items), version 1.

Times are timezone-aware; a converter that has to assume a zone says so in provenance.
Units are UCUM codes; the unit as received is kept beside the normalised one.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal, Self

from pydantic import AwareDatetime, Field, field_validator, model_validator

from interop.schema.base import (
    SCHEMA_VERSION,
    Coding,
    Frozen,
    HasProvenance,
    Provenance,
    finite,
)

Sex = Literal["male", "female", "other", "unknown"]
MeasurementCategory = Literal["vital-sign", "laboratory", "drug-level", "other"]
MeasurementStatus = Literal["final", "preliminary", "amended", "corrected"]
Matrix = Literal["plasma", "serum", "whole-blood", "urine", "csf", "other"]
Route = Literal[
    "iv-bolus",
    "iv-infusion",
    "oral",
    "subcutaneous",
    "intramuscular",
    "inhalation",
    "other",
]
DoseStatus = Literal["administered", "ordered", "reported"]
Phenotype = str
CallStatus = Literal["called", "uncertain", "unknown", "not_tested"]
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# An "other" measurement with this code marks a reset of a model's states at its time (NONMEM EVID 3,
# and EVID 4 with a dose at the same time): the twin starts again from the initial state.
STATE_RESET = Coding(system="urn:digphat:event", code="state-reset", display="Reset of the model's states")


class Patient(Frozen):
    """The person, pseudonymous: no name, address, contact or source identifier."""

    id: str = Field(min_length=8, description="Pseudonymous id (keyed hash of the source id)")
    sex: Sex = "unknown"
    birth_date: dt.date | None = Field(default=None, description="Possibly shifted; see provenance")
    age_years: float | None = Field(default=None, ge=0, le=130)
    provenance: Provenance


class DrugLevel(Frozen):
    """What makes a measurement a drug level."""

    analyte: Coding = Field(description="The drug or metabolite measured (RxNorm / ATC / ChEBI)")
    matrix: Matrix = "plasma"
    lloq: float | None = Field(default=None, ge=0, description="Lower limit of quantification")
    below_lloq: bool = False


class Measurement(HasProvenance):
    """A vital sign, laboratory value or drug level at one time."""

    code: Coding = Field(description="What was measured (LOINC preferred)")
    category: MeasurementCategory
    value: float
    unit: str = Field(min_length=1, description="UCUM unit, normalised")
    original_value: float | None = None
    original_unit: str | None = None
    time: AwareDatetime
    status: MeasurementStatus = "final"
    drug_level: DrugLevel | None = None

    @field_validator("value", "original_value")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        return finite(v, "value")

    @model_validator(mode="after")
    def _drug_level_consistent(self) -> Self:
        if self.category == "drug-level" and self.drug_level is None:
            raise ValueError("a drug-level measurement needs drug_level (analyte, matrix)")
        if self.category != "drug-level" and self.drug_level is not None:
            raise ValueError("drug_level is only for category 'drug-level'")
        if self.drug_level and not self.drug_level.below_lloq and self.value < 0:
            raise ValueError(f"a drug level cannot be negative (got {self.value})")
        return self


class Drug(Frozen):
    """A drug by its codes (RxNorm and/or ATC), with a name for people."""

    codes: tuple[Coding, ...] = Field(min_length=1)
    name: str | None = None

    def has_code(self, coding: Coding) -> bool:
        return any(c.matches(coding) for c in self.codes)


class Dose(HasProvenance):
    """A dose given, ordered or reported. Never mix statuses silently: filter on ``status``."""

    drug: Drug
    amount: float = Field(gt=0)
    unit: str = Field(min_length=1, description="UCUM mass or amount unit, e.g. mg")
    original_amount: float | None = None
    original_unit: str | None = None
    route: Route
    start: AwareDatetime
    duration_h: float | None = Field(default=None, gt=0, description="Infusion duration")
    rate: float | None = Field(default=None, gt=0, description="Infusion rate in unit per hour")
    interval_h: float | None = Field(default=None, gt=0, description="Repeat every (NONMEM II)")
    additional: int = Field(default=0, ge=0, description="Further doses (NONMEM ADDL)")
    status: DoseStatus
    adm: int | None = Field(
        default=None,
        ge=0,
        description="Administration id (a dataset's ADM/CMT value) choosing among a model's inputs of "
        "the route; None: the route's primary input",
    )

    @field_validator("amount")
    @classmethod
    def _finite_amount(cls, v: float) -> float:
        return finite(v, "amount") or v

    @model_validator(mode="after")
    def _infusion_consistent(self) -> Self:
        if self.route == "iv-infusion" and self.duration_h is None and self.rate is None:
            raise ValueError("an iv-infusion needs duration_h or rate")
        if self.duration_h is not None and self.rate is not None:
            implied = self.amount / self.rate
            if abs(implied - self.duration_h) > 1e-6 * max(1.0, self.duration_h):
                raise ValueError(
                    f"rate {self.rate} and duration_h {self.duration_h} disagree with amount "
                    f"{self.amount} (amount/rate = {implied:g} h)"
                )
        if self.additional and self.interval_h is None:
            raise ValueError("additional doses need interval_h")
        return self

    @property
    def infusion_hours(self) -> float | None:
        """Duration of the input in hours, from duration or rate; None for a bolus."""
        if self.duration_h is not None:
            return self.duration_h
        if self.rate is not None:
            return self.amount / self.rate
        return None

    def occurrences(self) -> tuple[AwareDatetime, ...]:
        """Start times of this dose and its ``additional`` repeats."""
        if not self.additional:
            return (self.start,)
        step = dt.timedelta(hours=self.interval_h or 0.0)
        return tuple(self.start + i * step for i in range(self.additional + 1))


class Condition(HasProvenance):
    """A diagnosis or problem."""

    code: Coding
    onset: AwareDatetime | None = None
    abatement: AwareDatetime | None = None
    clinical_status: Literal["active", "recurrence", "relapse", "inactive", "remission", "resolved"]


class Genotype(HasProvenance):
    """A pharmacogene call: diplotype in star-allele notation and the phenotype it implies.

    ``status`` says how far the call can be used (read it before the diplotype or phenotype):

    * ``called``: every defining position of the reported alleles was read and one answer fits.
    * ``uncertain``: a diplotype is given, but a position was missing or not called, alleles tie
      (``missing_positions`` and the provenance flags say which), or an undocumented allele was
      read as reference. Use the phenotype only with that caveat.
    * ``unknown``: the gene was read, but no named allele (pair) explains the genotypes: no
      diplotype, no phenotype; the provenance names the positions.
    * ``not_tested``: none of the gene's positions was in the file: no diplotype, no phenotype.

    ``uncertain`` (the flag) is True for every status but ``called``. Without a ``status`` (records
    written before it existed) it follows the flag: ``uncertain`` or ``called``.
    """

    gene: str = Field(pattern=r"^[A-Z0-9-]+$", description="HGNC symbol, e.g. CYP2C19")
    diplotype: str | None = Field(
        default=None, description="Star-allele diplotype such as *1/*2, or rs-genotype"
    )
    phenotype: Phenotype | None = Field(default=None, description="e.g. Poor Metabolizer")
    activity_score: float | None = Field(default=None, ge=0)
    caller: str = Field(min_length=1, description="Tool that made the call, with version")
    uncertain: bool = False
    missing_positions: tuple[str, ...] = ()
    status: CallStatus = Field(
        default="called", description="called | uncertain | unknown | not_tested (see the model)"
    )

    @model_validator(mode="before")
    @classmethod
    def _default_status(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("status") is None:
            data = {**data, "status": "uncertain" if data.get("uncertain") else "called"}
        return data

    @model_validator(mode="after")
    def _status_agrees(self) -> Self:
        if self.uncertain != (self.status != "called"):
            raise ValueError(f"uncertain={self.uncertain} contradicts status {self.status!r}")
        if self.status in ("unknown", "not_tested") and (self.diplotype or self.phenotype):
            raise ValueError(f"a {self.status} call has no diplotype and no phenotype")
        return self

    @field_validator("diplotype")
    @classmethod
    def _diplotype(cls, v: str | None) -> str | None:
        if v is not None and "/" not in v:
            raise ValueError("a diplotype is two haplotypes separated by '/'")
        return v


class OmicsRef(HasProvenance):
    """A reference to an omics matrix stored beside the record."""

    assay: Literal["rna-seq", "microarray", "proteomics", "metabolomics", "methylation", "other"]
    feature_namespace: str = Field(min_length=1, description="e.g. hgnc.symbol, ensembl.gene")
    scale: Literal["counts", "tpm", "fpkm", "log2", "log2-tpm", "normalised", "other"]
    path: str = Field(min_length=1, description="Parquet file, relative to the cohort folder")
    sha256: str
    sample_id: str = Field(min_length=1)

    @field_validator("sha256")
    @classmethod
    def _sha(cls, v: str) -> str:
        if not SHA256.match(v):
            raise ValueError("must be 64 lower-case hex digits")
        return v


class PatientRecord(Frozen):
    """One patient in the shared schema: everything a twin or a validation run needs."""

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    patient: Patient
    measurements: tuple[Measurement, ...] = ()
    doses: tuple[Dose, ...] = ()
    conditions: tuple[Condition, ...] = ()
    genotypes: tuple[Genotype, ...] = ()
    omics: tuple[OmicsRef, ...] = ()

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        for name in ("measurements", "doses", "conditions", "genotypes", "omics"):
            seen: set[str] = set()
            for item in getattr(self, name):
                if item.id in seen:
                    raise ValueError(f"{name}: id {item.id!r} appears twice")
                seen.add(item.id)
        return self

    def drug_levels(self) -> tuple[Measurement, ...]:
        """The drug-level measurements, in time order."""
        return tuple(
            sorted((m for m in self.measurements if m.category == "drug-level"), key=lambda m: m.time)
        )

    def administered_doses(self) -> tuple[Dose, ...]:
        """Doses actually given, in time order (orders and reports left out)."""
        return tuple(sorted((d for d in self.doses if d.status == "administered"), key=lambda d: d.start))
