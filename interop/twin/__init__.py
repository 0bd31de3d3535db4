"""The twin runtime: compile a model once, bind a patient through its card, simulate."""

from interop.twin.binding import (
    CovariateSeries,
    DoseEvent,
    LevelObservation,
    Twin,
    bind_patient,
    bind_regimen,
)
from interop.twin.estimate import MapResult, estimate_map, individual_parameters
from interop.twin.model import CompiledModel, clear_model_cache, load_model
from interop.twin.reference import ReferenceCheck, check_reference_outputs
from interop.twin.simulate import Prediction, predict, simulate, simulate_observations

__all__ = [
    "CompiledModel",
    "CovariateSeries",
    "DoseEvent",
    "LevelObservation",
    "MapResult",
    "Prediction",
    "ReferenceCheck",
    "Twin",
    "bind_patient",
    "bind_regimen",
    "check_reference_outputs",
    "clear_model_cache",
    "estimate_map",
    "individual_parameters",
    "load_model",
    "predict",
    "simulate",
    "simulate_observations",
]
