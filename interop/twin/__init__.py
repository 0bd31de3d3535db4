"""The twin runtime: compile a model once, bind a patient through its card, simulate,
individualise (MAP), forecast and recommend a dose."""

from interop.twin.binding import (
    CovariateSeries,
    DoseEvent,
    LevelObservation,
    Twin,
    bind_patient,
    bind_regimen,
)
from interop.twin.estimate import MapResult, estimate_map, individual_parameters
from interop.twin.forecast import Forecast, forecast
from interop.twin.model import CompiledModel, clear_model_cache, load_model
from interop.twin.recommend import Candidate, Recommendation, RegimenOptions, Target, recommend_dose
from interop.twin.reference import ReferenceCheck, check_reference_outputs
from interop.twin.simulate import Prediction, predict, simulate, simulate_observations

__all__ = [
    "Candidate",
    "CompiledModel",
    "CovariateSeries",
    "DoseEvent",
    "Forecast",
    "LevelObservation",
    "MapResult",
    "Prediction",
    "Recommendation",
    "ReferenceCheck",
    "RegimenOptions",
    "Target",
    "Twin",
    "bind_patient",
    "bind_regimen",
    "check_reference_outputs",
    "clear_model_cache",
    "estimate_map",
    "forecast",
    "individual_parameters",
    "load_model",
    "predict",
    "recommend_dose",
    "simulate",
    "simulate_observations",
]
