"""Agreement of MAP estimates with a reference (NONMEM's ``.phi``), classed as in the mapbayr study.

Per ETA, the absolute difference to the reference: below 0.001 excellent, 0.001 to 0.1
acceptable, 0.1 or more discordant; per subject, the OBJ difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Agreement", "AgreementRow", "FailedSubject", "SubjectComparison", "summarise_agreement"]

EXCELLENT = 1e-3
ACCEPTABLE = 0.1


@dataclass(frozen=True)
class SubjectComparison:
    subject: str
    etas: tuple[float, ...]
    reference_etas: tuple[float, ...]
    ofv: float
    reference_ofv: float
    objective: float  # our MAP objective at our mode
    objective_at_reference: float  # our MAP objective at the reference's ETAs
    converged: bool

    @property
    def differences(self) -> np.ndarray:
        return np.abs(np.asarray(self.etas) - np.asarray(self.reference_etas))


@dataclass(frozen=True)
class FailedSubject:
    """A subject the estimator could not fit: recorded with why, the run goes on."""

    subject: str
    reason: str


@dataclass(frozen=True)
class AgreementRow:
    eta: str
    n: int
    excellent: int
    acceptable: int
    discordant: int
    max_difference: float

    def share(self, which: str) -> float:
        return getattr(self, which) / self.n if self.n else float("nan")


@dataclass(frozen=True)
class Agreement:
    rows: tuple[AgreementRow, ...]
    total: AgreementRow
    n_subjects: int
    ofv_within: int  # subjects whose OBJ differs by at most ofv_tolerance
    ofv_tolerance: float
    max_ofv_difference: float
    better_mode: int  # subjects off by more than the tolerance where our mode has a lower objective
    subjects: tuple[SubjectComparison, ...]
    failed: tuple[FailedSubject, ...] = ()
    worse_mode: int = 0  # subjects whose objective at our mode exceeds that at the reference ETAs by > tol
    n_etas: int = 0
    input_notes: tuple[str, ...] = ()  # rows of the event table not converted, with why

    @property
    def n_attempted(self) -> int:
        return self.n_subjects + len(self.failed)

    @property
    def _eta_values(self) -> int:
        """ETA values attempted: a failed subject's ETAs count as not agreeing."""
        return self.total.n + len(self.failed) * self.n_etas

    @property
    def share_excellent(self) -> float:
        return self.total.excellent / self._eta_values if self._eta_values else float("nan")

    @property
    def share_within_acceptable(self) -> float:
        n = self._eta_values
        return (self.total.excellent + self.total.acceptable) / n if n else float("nan")

    @property
    def share_ofv_within(self) -> float:
        return self.ofv_within / self.n_attempted if self.n_attempted else float("nan")

    @property
    def better_subjects(self) -> tuple[SubjectComparison, ...]:
        """Subjects where our mode's objective is lower than at the reference ETAs by more than the
        tolerance: we found a better mode (reported as such, not counted as disagreeing)."""
        return tuple(s for s in self.subjects if s.objective < s.objective_at_reference - self.ofv_tolerance)

    def same_mode(self) -> Agreement:
        """The agreement over the other subjects (and the failed ones), where both should share a mode."""
        better = {id(s) for s in self.better_subjects}
        return summarise_agreement(
            [r.eta for r in self.rows],
            [s for s in self.subjects if id(s) not in better],
            self.ofv_tolerance,
            self.failed,
        )

    def passes(self, min_excellent: float, min_acceptable: float, min_ofv_within: float) -> bool:
        """The thresholds on the subjects that share a mode; a better mode of ours is no failure,
        an objective worse than at the reference ETAs always is."""
        same = self.same_mode()
        return (
            self.worse_mode == 0
            and same.share_excellent >= min_excellent
            and same.share_within_acceptable >= min_acceptable
            and same.share_ofv_within >= min_ofv_within
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "n_subjects": self.n_subjects,
            "rows": [r.__dict__ for r in (*self.rows, self.total)],
            "share_excellent": self.share_excellent,
            "share_within_acceptable": self.share_within_acceptable,
            "ofv_tolerance": self.ofv_tolerance,
            "ofv_within": self.ofv_within,
            "max_ofv_difference": self.max_ofv_difference,
            "better_mode": self.better_mode,
            "better_mode_subjects": [b.subject for b in self.better_subjects],
            "same_mode_share_excellent": self.same_mode().share_excellent if self.better_mode else None,
            "worse_mode": self.worse_mode,
            "n_failed": len(self.failed),
            "input_notes": list(self.input_notes),
            "failed": [{"subject": f.subject, "reason": f.reason} for f in self.failed],
            "subjects": [
                {
                    "subject": s.subject,
                    "etas": s.etas,
                    "reference_etas": s.reference_etas,
                    "ofv": s.ofv,
                    "reference_ofv": s.reference_ofv,
                    "objective": s.objective,
                    "objective_at_reference": s.objective_at_reference,
                    "converged": s.converged,
                }
                for s in self.subjects
            ],
        }


def _row(name: str, d: np.ndarray) -> AgreementRow:
    return AgreementRow(
        eta=name,
        n=int(d.size),
        excellent=int(np.sum(d < EXCELLENT)),
        acceptable=int(np.sum((d >= EXCELLENT) & (d < ACCEPTABLE))),
        discordant=int(np.sum(d >= ACCEPTABLE)),
        max_difference=float(d.max(initial=0.0)),
    )


def summarise_agreement(
    eta_names: Sequence[str],
    subjects: Sequence[SubjectComparison],
    ofv_tolerance: float = 0.01,
    failed: Sequence[FailedSubject] = (),
) -> Agreement:
    """The agreement table over ``subjects`` (one row per ETA and a total); ``failed`` subjects are
    listed and count as disagreeing in the shares."""
    diffs = np.array([s.differences for s in subjects]).reshape(len(subjects), len(eta_names))
    rows = tuple(_row(n, diffs[:, j]) for j, n in enumerate(eta_names))
    ofv_d = np.array([abs(s.ofv - s.reference_ofv) for s in subjects])
    within = int(np.sum(ofv_d <= ofv_tolerance))
    better = sum(1 for s in subjects if s.objective < s.objective_at_reference - ofv_tolerance)
    worse = sum(1 for s in subjects if s.objective > s.objective_at_reference + ofv_tolerance)
    return Agreement(
        rows,
        _row("all", diffs.ravel()),
        len(subjects),
        within,
        ofv_tolerance,
        float(ofv_d.max(initial=0.0)),
        better,
        tuple(subjects),
        tuple(failed),
        worse,
        len(eta_names),
    )
