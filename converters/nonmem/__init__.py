"""NONMEM-style event tables (ID TIME EVID AMT CMT RATE II ADDL MDV DV covariates) <-> patient schema."""

from converters.nonmem.mapping import COVARIATE_SYSTEM, DoseCompartment, EventTableMapping, LevelCompartment
from converters.nonmem.read import EventTableResult, read_event_table

__all__ = [
    "COVARIATE_SYSTEM",
    "DoseCompartment",
    "EventTableMapping",
    "EventTableResult",
    "LevelCompartment",
    "read_event_table",
]
