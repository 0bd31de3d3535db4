from interop.schema import PatientRecord
from interop.validation import dataset_fingerprint


def test_fingerprint_ignores_order_and_sees_every_value(truth_records: list[PatientRecord]) -> None:
    recs = truth_records[:6]
    fp = dataset_fingerprint(recs)
    assert len(fp) == 64
    shuffled = [r.replace(measurements=list(reversed(r.measurements))) for r in reversed(recs)]
    assert dataset_fingerprint(shuffled) == fp
    m = recs[0].measurements[-1]
    changed = recs[0].replace(measurements=[*recs[0].measurements[:-1], m.replace(value=m.value + 1e-9)])
    assert dataset_fingerprint([changed, *recs[1:]]) != fp
    assert dataset_fingerprint(recs[1:]) != fp
