"""Benchmark: diplotype calling with the full allele definitions over generated VCFs of the panel.

Each sample draws two named alleles per gene (reference with probability 0.7, else any named
allele of the full definition tables), unphased, at every defining position of the 18 genes.
Baseline, in the same run: only reading the same records (and their genotype arrays) with
cyvcf2. Prints, at each size, milliseconds and samples per second for both and the ratio
(calling time / reading time); the goal is a ratio under 30 at 1,000 samples.

    PYTHONPATH=. python bench/pgx_call.py [--sizes 100,300,1000] [--repeat 3] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from cyvcf2 import VCF

from converters.omics.definitions import GeneDefinition, load_panel
from converters.omics.vcf import call_vcf


def _allele(d: GeneDefinition, name: str, pid: str) -> str:
    value = d.allele(name).defining.get(pid)
    if value is None:
        return d.by_id[pid].ref
    return value if isinstance(value, str) else value[0]


def write_cohort_vcf(path: Path, n_samples: int, seed: int) -> int:
    """A GRCh38 VCF with every panel position; each sample draws two alleles per gene
    (reference with probability 0.7, else any named allele), unphased. Returns lines written."""
    rng = random.Random(seed)
    panel = load_panel()
    draws: dict[str, list[tuple[str, str]]] = {}
    for d in panel:
        others = [a.name for a in d.alleles if a.name != d.reference]

        def pick(d: GeneDefinition = d, others: list[str] = others) -> str:
            return d.reference if rng.random() < 0.7 else rng.choice(others)

        draws[d.gene] = [(pick(), pick()) for _ in range(n_samples)]
    names = [f"S{i:05d}" for i in range(n_samples)]
    contigs = sorted(
        {d.chromosome for d in panel},
        key=lambda c: (not c[3:].isdigit(), int(c[3:]) if c[3:].isdigit() else 0),
    )
    lines = [
        "##fileformat=VCFv4.2",
        "##reference=GRCh38",
        *[f"##contig=<ID={c},assembly=GRCh38>" for c in contigs],
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT"] + names),
    ]
    rows = []
    for d in panel:
        for p in d.positions:
            alleles = [p.ref, *p.alts]
            gts = [
                f"{alleles.index(_allele(d, h1, p.id))}/{alleles.index(_allele(d, h2, p.id))}"
                for h1, h2 in draws[d.gene]
            ]
            fixed = [
                d.chromosome,
                str(p.pos),
                p.id,
                p.ref,
                ",".join(p.alts),
                ".",
                "PASS",
                ".",
                "GT",
            ]
            rows.append((contigs.index(d.chromosome), p.pos, "\t".join(fixed + gts)))
    rows.sort()
    path.write_text("\n".join(lines + [r[2] for r in rows]) + "\n")
    return len(rows)


def read_only(path: Path) -> int:
    """Baseline: every record and its genotype array, nothing else."""
    n = 0
    vcf = VCF(str(path), gts012=False, strict_gt=False)
    for rec in vcf:
        rec.genotype.array()
        n += 1
    vcf.close()
    return n


def best_of(repeat: int, fn, *args):  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(*args)
        times.append(time.perf_counter() - t0)
    return min(times), result


def run(n_samples: int, repeat: int, seed: int) -> tuple[float, float, int, int, int]:
    """(read seconds, call seconds, positions, gene calls, calls without a diplotype) at one size."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cohort.vcf"
        n_lines = write_cohort_vcf(path, n_samples, seed)
        t_read, _ = best_of(repeat, read_only, path)
        t_call, calls = best_of(repeat, call_vcf, path)
    n_calls = sum(len(c) for c in calls.calls.values())
    uncalled = sum(1 for c in calls.calls.values() for g in c if g.diplotype is None)
    return t_read, t_call, n_lines, n_calls, uncalled


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,300,1000", help="comma-separated sample counts")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    panel = load_panel()
    print(f"panel: {len(panel)} genes, {sum(len(d.alleles) for d in panel)} named alleles")
    print(
        f"{'samples':>8} {'positions':>9} {'read ms':>9} {'call ms':>9} {'samples/s':>10} {'ratio':>7}  calls"
    )
    for n in (int(x) for x in args.sizes.split(",")):
        t_read, t_call, n_lines, n_calls, uncalled = run(n, args.repeat, args.seed)
        print(
            f"{n:8d} {n_lines:9d} {t_read * 1e3:9.1f} {t_call * 1e3:9.1f} {n / t_call:10,.0f} "
            f"{t_call / t_read:6.1f}x  {n_calls} gene calls, {uncalled} without a diplotype"
        )
    print(f"ratio = read + call / cyvcf2 read only, best of {args.repeat}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
