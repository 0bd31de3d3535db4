"""NONMEM-style event tables (ID TIME EVID AMT CMT RATE II ADDL MDV DV covariates) <-> patient schema."""

from converters.nonmem.mapping import COVARIATE_SYSTEM, DoseCompartment, EventTableMapping, LevelCompartment
from converters.nonmem.phi import PhiRow, read_phi
from converters.nonmem.read import EventTableResult, read_event_table
from converters.nonmem.write import write_event_table

__all__ = [
    "COVARIATE_SYSTEM",
    "DoseCompartment",
    "EventTableMapping",
    "EventTableResult",
    "LevelCompartment",
    "PhiRow",
    "read_event_table",
    "read_phi",
    "write_event_table",
]
