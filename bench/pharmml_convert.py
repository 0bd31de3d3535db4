"""PharmML conversion time against compiling the converted model in libRoadRunner (baseline).

Run: PYTHONPATH=. python bench/pharmml_convert.py  -- prints per-model medians and the ratio
conversion / compilation (a conversion that costs a fraction of one compilation never matters
beside a twin's simulations).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, when not installed

import roadrunner  # noqa: E402

from registry.formats.pharmml import convert  # noqa: E402
from tests.data import PHARMML_ADVAN1, PHARMML_ADVAN4, PHARMML_USECASE1, PHARMML_USECASE3  # noqa: E402

CASES = [
    (PHARMML_USECASE1, None),
    (PHARMML_USECASE3, None),
    (PHARMML_ADVAN1, {"CL": 1.0}),
    (PHARMML_ADVAN4, {"ka": 1.3, "k": 0.25, "k12": 0.4, "k21": 0.15}),
]


def _median(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    print(f"{'model':28} {'convert ms':>11} {'compile ms':>11} {'ratio':>7}")
    for path, values in CASES:
        raw = path.read_bytes()
        sbml = convert(raw, source=str(path), values=values).sbml
        t_convert = _median(lambda: convert(raw, source=str(path), values=values), 20)  # noqa: B023
        t_compile = _median(lambda: roadrunner.RoadRunner(sbml), 3)  # noqa: B023
        print(f"{path.stem:28} {t_convert * 1e3:11.2f} {t_compile * 1e3:11.1f} "
              f"{t_convert / t_compile:7.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
