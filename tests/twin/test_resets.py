"""EVID 3 (reset) and EVID 4 (reset and dose) from the event table through the twin, against closed forms.

One compartment, V = 20 L, CL = 5 L/h (k = 0.25 /h), IV bolus or infusion into A:
a bolus D gives C = D/V exp(-k t); an infusion at rate R for s hours gives C = R/(k V) (1 - exp(-k s)).
A reset returns A to 0 and stops any running infusion.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tellurium as te

from converters.nonmem import DoseCompartment, EventTableMapping, LevelCompartment, read_event_table
from interop.schema import Coding, ModelCard
from interop.twin import bind_patient, load_model, simulate

DRUG = Coding(system="urn:test", code="drug")
ANTIMONY = """
model reset_1cmt
  compartment body = 1
  substanceOnly species A in body = 0
  elim: A -> ; CL / V * A
  TVCL = 5; TVV = 20; ETA_CL = 0
  CL := TVCL * exp(ETA_CL)
  V := TVV
  Cc := A / V
end
"""
TABLE = """ID,TIME,EVID,AMT,CMT,RATE,MDV,DV
1,0,1,100,1,0,1,.
1,2,0,0,1,0,0,3.0
1,6,3,0,1,0,1,.
1,8,0,0,1,0,0,0.1
1,12,1,200,1,100,1,.
1,12.5,0,0,1,0,0,1.0
1,13,4,50,1,0,1,.
1,14,0,0,1,0,0,2.0
1,20,0,0,1,0,0,0.5
"""


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    card = ModelCard.model_validate(
        {
            "id": "reset-test",
            "title": "reset test model",
            "drugs": [DRUG.model_dump()],
            "institution": "test",
            "dosing": [{"route": "iv-bolus", "target": "A"}, {"route": "iv-infusion", "target": "A"}],
            "observables": [{"id": "drug", "sbml": "Cc", "unit": "mg/L", "analyte": DRUG.model_dump()}],
            "random_effects": {"etas": ["ETA_CL"], "omega": [[0.09]]},
            "residual_error": [{"observable": "drug", "model": "proportional", "proportional_sd": 0.1}],
        }
    )
    path = Path(tmp_path_factory.mktemp("resets")) / "table.csv"
    path.write_text(TABLE)
    mapping = EventTableMapping(
        drug=DRUG, doses=(DoseCompartment(1, "iv-bolus"),), levels=(LevelCompartment(1, DRUG),)
    )
    result = read_event_table(path, mapping)
    assert result.report.read["reset"] == 2 and result.report.converted["reset"] == 2
    assert result.report.converted["dose"] == 3 and result.report.balanced()
    return bind_patient(load_model(te.antimonyToSBML(ANTIMONY), card), result.records[0])


def test_resets_are_read_and_bound(twin) -> None:  # type: ignore[no-untyped-def]
    assert twin.resets == (6.0, 13.0)
    assert [d.time_h for d in twin.doses] == [0.0, 12.0, 13.0]


def test_reset_and_reset_with_dose_by_hand(twin) -> None:  # type: ignore[no-untyped-def]
    k, v = 0.25, 20.0
    times = np.array([2.0, 5.9, 8.0, 12.5, 13.0, 14.0, 20.0])
    expected = [
        100 / v * np.exp(-k * 2),
        100 / v * np.exp(-k * 5.9),
        0.0,  # after the EVID 3 reset at 6 h
        100 / (k * v) * (1 - np.exp(-k * 0.5)),  # the infusion from 12 h at 100 mg/h
        100 / (k * v) * (1 - np.exp(-k * 1.0)),  # at 13 h, before the EVID 4 row acts
        50 / v * np.exp(-k * 1.0),  # the reset stopped the infusion; only the 50 mg bolus remains
        50 / v * np.exp(-k * 7.0),
    ]
    got = simulate(twin, times).values["drug"]
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-10)
    with pytest.raises(Exception, match="state resets"):
        simulate(twin, times, method="linear")
