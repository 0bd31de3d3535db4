"""Private by default: an import's outputs carry no name, identifier, address, telecom, exact birth
date, raw resource id or identifying file name, in any file (Parquet decoded) or log.

The real CLI runs in a subprocess (with ``--verbose`` logging) on bundles named as exporters
name them (``First_Last_<id>.json``): one written here with every kind of identifying field,
and a real Synthea bundle when the shared data is there. Then every output file is scanned
for every identifying string. The console (the operator's own terminal) may name input files
on rejection lines, by design; it is scanned for everything else.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from tests import data
from tests.fhir.test_fidelity import synthea_order

KEY = "privacy-test-key-0123456789abcdef"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(data.ROOT), INTEROP_PSEUDONYM_KEY=KEY)
    return subprocess.run(
        [sys.executable, "-m", "interop", "-v", *args], capture_output=True, text=True, env=env, timeout=600
    )


def jane() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "jane-doe-77812",
        "identifier": [
            {"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "MRN-77812"},
            {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-55-1234"},
        ],
        "name": [{"family": "Doe-Whitfield", "given": ["Jane", "Marigold"]}],
        "telecom": [
            {"system": "phone", "value": "+1-555-0199-77"},
            {"system": "email", "value": "jane.doe@example.org"},
        ],
        "gender": "female",
        "birthDate": "1980-02-29",
        "address": [{"line": ["17 Juniper Lane"], "city": "Elmwood Springs", "postalCode": "60601-4411"}],
    }


def _obs(rid: str, code: str, value: float, unit: str, when: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": "Patient/jane-doe-77812"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }


def jane_bundle() -> dict[str, Any]:
    order = synthea_order("313782", "Acetaminophen 325 MG Oral Tablet", rid_="order-jane-5")
    order["subject"] = {"reference": "Patient/jane-doe-77812"}
    resources = [
        jane(),
        _obs("weight-jane-1", "29463-7", 61.5, "kg", "2015-03-02T08:00:00+01:00"),
        _obs("creat-jane-2", "2160-0", 0.9, "mg/dL", "2015-03-02T08:05:00+01:00"),
        _obs("impossible-jane-3", "29463-7", 7000, "kg", "2015-03-03T08:00:00+01:00"),  # rejected
        _obs("unmapped-jane-4", "99999-9", 1, "1", "2015-03-03T08:00:00+01:00"),  # skipped
        order,
    ]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }


def _secrets(patient: dict[str, Any]) -> list[str]:
    """Every identifying string of a Patient resource: names, identifiers, address, telecom, birth date."""
    out = [patient["id"], patient.get("birthDate", "")]
    for n in patient.get("name") or []:
        out += [n.get("family", ""), *n.get("given", [])]
    out += [i["value"] for i in patient.get("identifier") or [] if i.get("value")]
    for a in patient.get("address") or []:
        out += [*a.get("line", []), a.get("city", ""), a.get("postalCode", "")]
    out += [t["value"] for t in patient.get("telecom") or [] if t.get("value")]
    return [s for s in out if s and len(s) >= 4]


def _found(secret: str, text: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", text) is not None


def _text(path: Path) -> str:
    if path.suffix == ".parquet":
        return json.dumps(pq.read_table(path).to_pylist(), default=str)  # decoded, every column
    return path.read_text(encoding="utf-8", errors="replace")


def test_no_identifying_string_reaches_any_output_file_or_log(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    name = "Jane_Doe-Whitfield_jane-doe-77812"
    (inputs / f"{name}.json").write_text(json.dumps(jane_bundle()))
    secrets = {s: "Jane's bundle" for s in _secrets(jane())}
    secrets.update({rid: "resource id" for rid in ("weight-jane-1", "creat-jane-2", "order-jane-5")})
    file_names = [name]
    if data.FHIR_SYNTHEA_BUNDLES:  # a real export, under the name Synthea gave it
        real = data.FHIR_SYNTHEA_BUNDLES[0]
        (inputs / real.name).write_bytes(real.read_bytes())
        bundle = json.loads(real.read_text())
        patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
        secrets.update({s: "Synthea Patient" for s in _secrets(patient)})
        file_names.append(real.stem)

    out, exported = tmp_path / "out", tmp_path / "exported"
    r = _run("import", "fhir", str(inputs), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "impossible value 7000 kg" in (out / "report.txt").read_text()  # the rejection is reported
    r2 = _run("export", "fhir", str(out), "--out", str(exported))
    assert r2.returncode == 0, r2.stderr

    files = [p for p in [*out.rglob("*"), *exported.rglob("*")] if p.is_file()]
    kinds = {p.suffix for p in files}
    assert {".json", ".parquet", ".txt"} <= kinds and any(p.name == "doses.parquet" for p in files)
    leaks = [
        (p.relative_to(tmp_path), s, why)
        for p in files
        for s, why in [*secrets.items(), *((f, "file name") for f in file_names)]
        if _found(s, p.name) or _found(s, _text(p))
    ]
    assert leaks == []
    console = r.stdout + r.stderr + r2.stdout + r2.stderr
    assert [(s, why) for s, why in secrets.items() if _found(s, console)] == []
    # nothing left behind: no spool, no temporary file
    assert not [p for p in files if p.name.startswith(".tmp-") or p.suffix == ".sqlite"]
