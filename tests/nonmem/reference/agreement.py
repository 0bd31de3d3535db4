"""Our MAP estimates on the published-model set beside the independent reference (not NONMEM).

Each model's control stream is converted by ``interop``'s NONMEM import, its data compared with
``compare_with_nonmem`` against the reference's ``.phi`` (ETAs, OBJ), and our MAP objective at
our mode set beside the reference's own objective at its mode (``reference.csv``): the goal is
that ours is never more than 0.01 higher; lower means we found a better mode.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from interop.schema import ModelCard
from interop.twin.agreement import Agreement
from interop.workflows.twin import compare_with_nonmem
from registry.formats.nonmem import convert

ROOT = Path(__file__).resolve().parents[3] / "examples" / "nonmem" / "published"
PUBLISHED = (
    "tacrolimus_lag",
    "tacrolimus_lag_eta",
    "tacrolimus_iov",
    "tacrolimus_crossover",
    "phenytoin_mm",
    "parent_metabolite",
    "phenobarbital_tvcov",
)
UNITS = {  # UCUM units the control streams state in their comments
    "tacrolimus_lag": {"dose": "mg", "central": "ug/L"},
    "tacrolimus_lag_eta": {"dose": "mg", "central": "ug/L"},
    "tacrolimus_iov": {"dose": "mg", "central": "ug/L"},
    "tacrolimus_crossover": {"dose": "mg", "central": "ug/L"},
}
ETA_TOLERANCE = 1e-3
OBJ_TOLERANCE = 0.01


@dataclass(frozen=True)
class ModelAgreement:
    model: str
    agreement: Agreement
    reference_objective: dict[str, float]  # the reference's MAP objective at its mode, by ID
    objective_excess: dict[str, float]  # ours at our mode minus the reference's at its mode, by ID

    @property
    def max_excess(self) -> float:
        return max(self.objective_excess.values(), default=float("nan"))

    @property
    def better_modes(self) -> list[str]:
        return [s for s, d in self.objective_excess.items() if d < -OBJ_TOLERANCE]

    @property
    def max_eta_difference(self) -> float:
        return self.agreement.total.max_difference

    def passes(self) -> bool:
        a = self.agreement
        return (
            not a.failed
            and a.share_excellent >= 0.995
            and a.worse_mode == 0
            and all(d <= OBJ_TOLERANCE for d in self.objective_excess.values())
        )


def reference_objectives(model: str) -> dict[str, float]:
    with (ROOT / model / "reference.csv").open(newline="") as fh:
        return {r["ID"]: float(r["MAP_OBJECTIVE"]) for r in csv.DictReader(fh)}


def converted(model: str) -> tuple[str, ModelCard]:
    """(SBML, card) from ``interop``'s conversion of the model's control stream."""
    conv = convert((ROOT / model / "run.mod").read_bytes(), source=f"{model}.mod", units=UNITS.get(model))
    return conv.sbml, conv.card


def check_model(model: str, *, ids: str | None = None, jobs: int = 1, starts: int = 3) -> ModelAgreement:
    sbml, card = converted(model)
    agreement = compare_with_nonmem(
        sbml, card, ROOT / model / "data.csv", ROOT / model / "reference.phi",
        ids=ids, jobs=jobs, starts=starts, ofv_tolerance=OBJ_TOLERANCE,
    )  # fmt: skip
    ref = reference_objectives(model)
    excess = {s.subject: s.objective - ref[s.subject] for s in agreement.subjects if s.subject in ref}
    return ModelAgreement(model, agreement, ref, excess)


def table(results: list[ModelAgreement]) -> str:
    """The agreement table, one row per model."""
    head = (f"{'model':<22}{'subjects':>9}{'failed':>7}{'ETAs':>6}{'<0.001':>9}{'max|dETA|':>11}"
            f"{'max dOBJ':>10}{'worse':>6}{'better':>7}  verdict")  # fmt: skip
    lines = [head, "-" * len(head)]
    for r in results:
        a = r.agreement
        lines.append(
            f"{r.model:<22}{a.n_attempted:>9}{len(a.failed):>7}{a.total.n:>6}{100 * a.share_excellent:>8.1f}%"
            f"{r.max_eta_difference:>11.1e}{r.max_excess:>10.4f}{a.worse_mode:>6}{len(r.better_modes):>7}  "
            f"{'pass' if r.passes() else 'FAIL'}"
        )
        for f in a.failed:
            lines.append(f"    failed {f.subject}: {f.reason}")
        worst = sorted(a.subjects, key=lambda s: -max(s.differences, default=0.0))[:1]
        for s in worst:
            if max(s.differences, default=0.0) >= ETA_TOLERANCE:
                ref = r.reference_objective.get(s.subject, float("nan"))
                lines.append(
                    f"    worst {s.subject}: ours {s.objective:.4f} (converged={s.converged}), "
                    f"ours at reference ETAs {s.objective_at_reference:.4f}, reference {ref:.4f}"
                )
    return "\n".join(lines)
