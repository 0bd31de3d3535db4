"""Property: random mutations of valid resources never crash the converter or break the counts."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from converters.fhir import convert_bundle
from converters.fhir.export import export_bundle
from converters.report import EXAMPLES_PER_REASON
from tests import data
from tests.fhir.conftest import KEY, collection, load, pat1, weight_of_pat1
from tests.fhir.test_fidelity import _infusion_by_rate, synthea_order

HASH = re.compile(r"^[0-9a-f]{32}$")


def _exported_observation() -> dict:
    """An Observation as our export writes it: pseudonymised, date-shifted, as-received value kept."""
    rec = convert_bundle(collection(pat1(), weight_of_pat1()), KEY).records[0]
    return next(
        e["resource"] for e in export_bundle(rec)["entry"] if e["resource"]["resourceType"] == "Observation"
    )


def _creatinine(code: str, value: float, unit: str) -> dict:
    obs = weight_of_pat1()
    obs["code"] = {"coding": [{"system": "http://loinc.org", "code": code}]}
    obs["valueQuantity"] = {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    return obs


SEEDS = [
    pat1(),
    synthea_order("313782", "Acetaminophen 325 MG Oral Tablet"),  # unitless dose, RxNorm clinical drug
    synthea_order("861007", "Metformin hydrochloride 500 MG Oral Tablet", 1),
    _infusion_by_rate(),
    _exported_observation(),
    _creatinine("2160-0", 1.1, "mg/dL"),
    _creatinine("14682-9", 97.0, "umol/L"),
    weight_of_pat1(),
    load(data.FHIR_HEIGHT_IN) | {"subject": {"reference": "Patient/pat1"}},
    *(load(p) for p in data.FHIR_MEDADMIN.values()),
    load(data.FHIR_R4_SPEC / "MedicationRequest-medrx0318.json"),
    load(data.FHIR_DEMO_BUNDLE)["entry"][3]["resource"],
]

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            "entered-in-error",
            "preliminary",
            "mg/kg",
            "TAB",
            "[lb_av]",
            "kg",
            "2999-01-01",
            "Patient/pat1",
            "#med0301",
            "urn:uuid:x",
            "Patient?identifier=a|b",
            "not-a-date",
            "-5",
        ]
    ),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(res: dict, path: tuple, action: str, value: Any) -> dict:
    res = copy.deepcopy(res)
    if not path:
        return res
    parent = res
    for p in path[:-1]:
        parent = parent[p]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "set":
        parent[last] = value
    else:  # duplicate the value into a sibling or wrap it
        parent[last] = [parent[last]] if not isinstance(parent[last], list) else parent[last] * 2
    return res


@st.composite
def mutated_feeds(draw) -> list[dict]:
    feed = []
    for seed in draw(st.lists(st.sampled_from(range(len(SEEDS))), min_size=1, max_size=5)):
        res = SEEDS[seed]
        for _ in range(draw(st.integers(0, 3))):
            paths = _paths(res)
            path = draw(st.sampled_from(paths))
            res = _mutate(res, path, draw(st.sampled_from(["delete", "set", "wrap"])), draw(VALUES))
        feed.append(res)
    return feed


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_feeds())
def test_mutations_never_crash_and_counts_add_up(feed):
    bundle = collection(*[r if isinstance(r, dict) else {"value": r} for r in feed])
    bundle = json.loads(json.dumps(bundle, default=str).replace("NaN", "null").replace("Infinity", "1e308"))
    res = convert_bundle(bundle, KEY)
    assert res.report.balanced()
    assert sum(res.report.read.values()) == len(feed)
    assert all(len(shown) <= EXAMPLES_PER_REASON for shown in res.report.examples.values())  # bounded
    for issue in res.report.issues:
        assert issue.reason and issue.source
        assert issue.resource_id is None or HASH.match(issue.resource_id)  # never a raw id
    for rec in res.records:
        for item in (rec.patient, *rec.measurements, *rec.doses, *rec.conditions):
            prov = item.provenance
            assert prov.source_file.startswith("src-") and prov.source_system == "fhir"  # never a path
            assert prov.resource_id is None or HASH.match(prov.resource_id)
        assert not {m.code.code for m in rec.measurements} & {"2160-0", "38483-4"}  # one analyte
        assert all(m.unit == "umol/L" for m in rec.measurements if m.code.code == "14682-9")
        for d in rec.doses:  # an infusion always knows how long it lasts and how fast
            assert d.route != "iv-infusion" or (d.duration_h and d.rate)
        shifts = {t.detail for t in rec.patient.provenance.transformations}
        assert shifts & {
            "secret per-patient offset (whole days)",
            "shifted before export (date-shifted tag in the source): kept as is",
        }  # shifted by default, and the record says so
