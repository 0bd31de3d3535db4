"""Wall time of ``interop --help`` against a bare ``import typer, rich`` in the same run.

Each case runs as a fresh interpreter (what a user pays), several times interleaved, and the
medians are compared; the goal of issue 20 is a ratio of at most ~2.5. Also times one command's
help (``interop twin --help``) to show that only that group's modules load.

    python bench/cli_startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES: dict[str, list[str]] = {
    "baseline: import typer, rich": ["-c", "import typer, rich"],
    "interop --help": ["-m", "interop", "--help"],
    "interop twin --help": ["-m", "interop", "twin", "--help"],
}


def time_once(args: list[str]) -> float:
    """Seconds for one fresh interpreter to run ``args`` (output discarded)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per case (median reported)")
    opts = parser.parse_args()
    for args in CASES.values():  # warm the file cache once
        time_once(args)
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(opts.repeat):  # interleaved, so load on the machine hits every case alike
        for name, args in CASES.items():
            samples[name].append(time_once(args))
    base = statistics.median(samples["baseline: import typer, rich"])
    print(f"{'case':32} {'median s':>9} {'min s':>7} {'ratio':>6}")
    for name, values in samples.items():
        med = statistics.median(values)
        print(f"{name:32} {med:9.3f} {min(values):7.3f} {med / base:6.2f}")


if __name__ == "__main__":
    main()
