"""Property: random mutations of valid resources never crash the converter or break the counts."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from converters.fhir import convert_bundle
from tests import data
from tests.fhir.conftest import KEY, collection, load, pat1, weight_of_pat1

SEEDS = [
    pat1(),
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
    for issue in res.report.issues:
        assert issue.reason and issue.source
