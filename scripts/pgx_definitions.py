"""Regenerate the shipped allele-definition tables (converters/omics/data/pgx) from a published source.

Two sources are understood:

* ``--pypgx PATH``: the pypgx package (MIT licence), as a downloaded wheel (read as a zip, so pypgx
  and its heavy dependencies need not be installed) or an installed ``pypgx`` directory. Its
  ``api/data`` tables carry the CPIC/PharmVar core alleles on GRCh38 (allele-table.csv,
  variant-table.csv), the allele functions and activity values, the CPIC diplotype-to-phenotype
  table and the activity-score equations.
* ``--pharmcat DIR``: a PharmCAT ``allele_definitions`` directory (``<GENE>_translation.json``,
  MPL-2.0), with ``--pharmcat-phenotypes DIR`` for its ``phenotype/<GENE>.json`` functions and
  diplotype phenotypes; without them a gene keeps the functions of the tables already shipped.

The output is one ``<GENE>.json`` per panel gene in the shape ``converters.omics.definitions``
reads, plus ``SOURCE.json``: the source's name, version, SHA-256 of what was read and its licence.
The tables are data, so the script is the one place that knows the sources' formats.

    PYTHONPATH=. python scripts/pgx_definitions.py --pypgx pypgx-0.27.0-py3-none-any.whl
    PYTHONPATH=. python scripts/pgx_definitions.py --pharmcat pharmcat/alleles \
        --pharmcat-phenotypes pharmcat/phenotype
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
import sys
import zipfile
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from converters.omics.definitions import PANEL

OUT = Path(__file__).resolve().parents[1] / "converters" / "omics" / "data" / "pgx"

# The genes PharmCAT calls from a VCF (CYP2D6 and HLA come in as outside calls): the caller's panel.
GENES = PANEL
# PharmCAT's matcher rules that are not in any definition table (NamedAlleleMatcher, Constants).
LOWEST_FUNCTION = {"DPYD", "RYR1"}
UNDOCUMENTED_AS_REFERENCE = {"CACNA1S", "DPYD", "G6PD", "NUDT15", "RYR1", "TPMT"}
CHROMOSOMES = {
    "ABCG2": "chr4",
    "CACNA1S": "chr1",
    "CFTR": "chr7",
    "CYP2B6": "chr19",
    "CYP2C19": "chr10",
    "CYP2C9": "chr10",
    "CYP3A4": "chr7",
    "CYP3A5": "chr7",
    "CYP4F2": "chr19",
    "DPYD": "chr1",
    "G6PD": "chrX",
    "IFNL3": "chr19",
    "NUDT15": "chr13",
    "RYR1": "chr19",
    "SLCO1B1": "chr12",
    "TPMT": "chr6",
    "UGT1A1": "chr2",
    "VKORC1": "chr16",
}
GUIDELINES = {
    "CYP2C19": "CPIC guidelines for CYP2C19 (clopidogrel, SSRIs, PPIs, voriconazole)",
    "CYP2C9": "CPIC guidelines for CYP2C9 (warfarin, NSAIDs, phenytoin)",
    "DPYD": "CPIC guideline for fluoropyrimidines and DPYD",
    "TPMT": "CPIC guideline for thiopurines and TPMT/NUDT15",
    "NUDT15": "CPIC guideline for thiopurines and TPMT/NUDT15",
    "UGT1A1": "CPIC guideline for atazanavir and UGT1A1",
    "SLCO1B1": "CPIC guideline for statins and SLCO1B1/ABCG2/CYP2C9",
    "ABCG2": "CPIC guideline for statins and SLCO1B1/ABCG2/CYP2C9",
    "CYP3A5": "CPIC guideline for tacrolimus and CYP3A5",
    "CYP2B6": "CPIC guideline for efavirenz and CYP2B6",
    "CFTR": "CPIC guideline for ivacaftor and CFTR",
    "IFNL3": "CPIC guideline for peginterferon alfa and IFNL3",
    "RYR1": "CPIC guideline for volatile anaesthetics/succinylcholine and RYR1/CACNA1S",
    "CACNA1S": "CPIC guideline for volatile anaesthetics/succinylcholine and RYR1/CACNA1S",
    "G6PD": "CPIC guideline for G6PD",
    "VKORC1": "CPIC guideline for warfarin (VKORC1 -1639G>A)",
}
# Alleles of CYP2C19 other than the genome's *38 sit on the *1 background (rs3758581 G, PharmVar);
# pypgx lists core variants only, so the background is added except where PharmVar has *38's.
BACKGROUND = {"CYP2C19": ("*1", frozenset({"*16", "*30", "*34", "*38"}))}
# Genes named by one SNP: CPIC/PharmCAT name the alleles "rsid reference (base)"/"rsid variant (base)".
SINGLE_SNP = {"ABCG2": "rs2231142", "IFNL3": "rs12979860", "VKORC1": "rs9923231"}
# PharmCAT does not call these from a VCF (exemptions): G6PD's Mediterranean Haplotype is a
# background haplotype, and its two positions are ignored.
IGNORED_ALLELES = {"G6PD": frozenset({"Mediterranean Haplotype"})}
IGNORED_VARIANTS = {
    "G6PD": frozenset({(154532439, "A", "G"), (154532990, "CGGT", "C")}),
    "RYR1": frozenset({(38580126, "CA", "C")}),
}
# Sub-alleles PharmVar folds into one star allele, which pypgx lists by their core only: CYP2C19 *4
# is found with and without -806C>T (*4.001/*4.002), *2 with and without c.99C>T's neighbour
# 94775507, *35 with and without -889T>G's 94762760. Either base is allowed there.
EITHER = {
    "CYP2C19": {"*2": (94775507, ("G", "A")), "*4": (94761900, ("C", "T")), "*35": (94762760, ("A", "C"))}
}
# Allele names PharmVar has changed since the source was published (SLCO1B1 *46 became *45.002, and
# the old *45 is *45.001; PharmCAT reports both as *45).
RENAMED = {"SLCO1B1": {"*45": "*45.001", "*46": "*45.002"}}
# CPIC's DPYD table has the HapB3 intronic variant on its own (decreased function, activity 0.5),
# which pypgx 0.27 lacks: HapB3's exonic c.1236G>A is only a tag of it.
EXTRA_ALLELES = {"DPYD": (("c.1129-5923C>G", 97579893, "C", "Decreased function", 0.5),)}
# Facts from CPIC's published gene tables, applied over either source where its vocabulary
# differs from CPIC's (and so from PharmCAT's): CFTR is named by ivacaftor response, VKORC1 by its
# -1639G>A genotype, and G6PD phenotypes carry no "G6PD " prefix.
CPIC_NOTE = "phenotype vocabulary per CPIC gene tables (CFTR/ivacaftor, VKORC1 -1639, G6PD)"
CFTR_REFERENCE = "ivacaftor non-responsive CFTR sequence"
CFTR_NON_RESPONSIVE = frozenset({"F508del"})


def apply_cpic_facts(doc: dict[str, Any]) -> dict[str, Any]:
    gene = doc["gene"]
    if gene == "CFTR":
        for a in doc["alleles"]:
            if a["name"] == doc["reference"]:
                a["name"] = CFTR_REFERENCE
            responsive = a["name"] != CFTR_REFERENCE and a["name"] not in CFTR_NON_RESPONSIVE
            a["function"] = "ivacaftor responsive" if responsive else "ivacaftor non-responsive"
        doc["reference"] = CFTR_REFERENCE
        yes, no = "ivacaftor responsive", "ivacaftor non-responsive"
        doc["phenotype"] = {
            "method": "function",
            "rules": [
                {"functions": [no, no], "phenotype": "ivacaftor non-responsive in CF patients"},
                {"functions": [no, yes], "phenotype": "ivacaftor responsive in CF patients"},
                {"functions": [yes, yes], "phenotype": "ivacaftor responsive in CF patients"},
            ],
            "otherwise": "Indeterminate",
        }
    elif gene == "VKORC1":
        ref = doc["reference"]
        var = next(a["name"] for a in doc["alleles"] if a["name"] != ref)
        doc["phenotype"] = {
            "method": "function",
            "diplotypes": {
                f"{ref}/{ref}": "-1639 GG",
                f"{ref}/{var}": "-1639 AG",
                f"{var}/{var}": "-1639 AA",
            },
            "otherwise": "Indeterminate",
        }
    elif gene == "G6PD":
        ph = doc["phenotype"]
        for rule in ph.get("rules", []):
            rule["phenotype"] = rule["phenotype"].removeprefix("G6PD ")
        ph["diplotypes"] = {k: v.removeprefix("G6PD ") for k, v in ph.get("diplotypes", {}).items()}
    else:
        return doc
    doc["source"] += f"; {CPIC_NOTE}"
    return doc


PYPGX_LICENCE = (
    "pypgx (https://pypi.org/project/pypgx/) is MIT-licensed, Copyright (c) Seung-been Steven Lee; "
    "its tables compile CPIC and PharmVar allele definitions and CPIC phenotype tables."
)
PHARMCAT_LICENCE = "PharmCAT allele definitions are MPL-2.0 (PharmGKB/PharmCAT), built from CPIC/PharmVar."


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _trim(ref: str, alt: str) -> tuple[str, str]:
    """Right-trim a shared suffix so one variant has one spelling (CAT>CATAT == C>CAT)."""
    while len(ref) > 1 and len(alt) > 1 and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    return ref, alt


# --- pypgx ---------------------------------------------------------------------------------------


def read_pypgx_tables(path: Path) -> tuple[dict[str, list[dict[str, str]]], str, str, str]:
    """(table name -> rows, pypgx version, sha256 of what was read, licence text) from a wheel or
    an installed package directory."""
    names = ("allele-table", "variant-table", "diplotype-table", "equation-table", "gene-table")
    tables: dict[str, list[dict[str, str]]] = {}
    if path.is_file():
        raw = path.read_bytes()
        digest = sha256_of(raw)
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            for n in names:
                text = zf.read(f"pypgx/api/data/{n}.csv").decode("utf-8")
                tables[n] = list(csv.DictReader(io.StringIO(text)))
            meta = next(m for m in zf.namelist() if m.endswith(".dist-info/METADATA"))
            version = re.search(r"^Version: (\S+)", zf.read(meta).decode(), re.MULTILINE)
            licences = [m for m in zf.namelist() if re.search(r"\.dist-info/(licenses/)?LICEN[CS]E", m)]
            licence = zf.read(licences[0]).decode() if licences else ""
    else:
        data = path / "api" / "data"
        h = hashlib.sha256()
        for n in names:
            blob = (data / f"{n}.csv").read_bytes()
            h.update(blob)
            tables[n] = list(csv.DictReader(io.StringIO(blob.decode("utf-8"))))
        digest = h.hexdigest()
        init = (path / "version.py") if (path / "version.py").exists() else path / "__init__.py"
        version = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", init.read_text())
        found = sorted(path.parent.glob("pypgx-*.dist-info/licenses/LICENSE")) + sorted(
            path.parent.glob("pypgx-*.dist-info/LICENSE")
        )
        licence = found[0].read_text() if found else ""
    return tables, (version.group(1) if version else "unknown"), digest, licence


def _function(value: str) -> str:
    """pypgx writes 'No Function'; CPIC and PharmCAT write 'No function'."""
    value = value.strip().strip('"')
    return value[:1].upper() + value[1:].lower() if value and value != "N/A" else "Unknown function"


def gene_from_pypgx(gene: str, tables: dict[str, list[dict[str, str]]], version: str) -> dict[str, Any]:
    gene_row = next(r for r in tables["gene-table"] if r["Gene"] == gene)
    reference = gene_row["GRCh38Default"]
    variants: dict[int, dict[str, Any]] = {}
    for row in tables["variant-table"]:
        if row["Gene"] != gene or not row["GRCh38Position"].isdigit():
            continue
        pos = int(row["GRCh38Position"])
        alt38 = row["Variant"] if row["Variant"] != row["GRCh38Allele"] else row["GRCh37Allele"]
        if (pos, *_trim(row["GRCh38Allele"], alt38)) in IGNORED_VARIANTS.get(gene, frozenset()):
            continue
        rec = variants.setdefault(pos, {"rsids": set(), "ref": row["GRCh38Allele"], "alts": []})
        if row["rsID"] not in ("", "N/A", "."):
            rec["rsids"].add(row["rsID"])
        # One position, several spellings (C>CAT, CAT>C): keep the longest REF, re-anchor alts to it.
        ref, alt = row["GRCh38Allele"], row["Variant"]
        if alt == ref:  # pypgx's Variant is the GRCh37 one where the builds' references differ
            alt = row["GRCh37Allele"]
        if len(ref) > len(rec["ref"]):
            rec["alts"] = [a + ref[len(rec["ref"]) :] for a in rec["alts"]]
            rec["ref"] = ref
        full_alt = alt + rec["ref"][len(ref) :]
        if full_alt not in rec["alts"]:
            rec["alts"].append(full_alt)
    single = SINGLE_SNP.get(gene)
    if single is not None:  # keep the guideline's SNP only (pypgx lists more for IFNL3)
        variants = {p: v for p, v in variants.items() if single in v["rsids"]}
    alleles: list[dict[str, Any]] = []
    skipped = []
    for row in tables["allele-table"]:
        if row["Gene"] != gene:
            continue
        name = row["StarAllele"]
        if row["SV"] == "TRUE":
            skipped.append(f"{name} (structural variant)")
            continue
        if name in IGNORED_ALLELES.get(gene, frozenset()):
            skipped.append(f"{name} (not called from a VCF)")
            continue
        core = [c for c in row["GRCh38Core"].split(",") if c and c != "N/A"]
        ignored = IGNORED_VARIANTS.get(gene, frozenset())
        core = [c for c in core if (int(c.split("-")[1]), *_trim(*c.split("-")[2:])) not in ignored]
        if any(int(c.split("-")[1]) not in variants for c in core):
            skipped.append(f"{name} (a core variant is not at a called position)")
            continue
        defining: dict[str, str] = {}
        for item in core:
            _, pos_s, ref, alt = item.split("-")
            rec = variants[int(pos_s)]
            defining[str(pos_s)] = alt + rec["ref"][len(ref) :]
        if not core and name != reference:
            skipped.append(f"{name} (no GRCh38 core variants)")
            continue
        score = row["ActivityScore"]
        alleles.append(
            {
                "name": name,
                "function": _function(row["Function"]),
                "activity": float(score) if re.fullmatch(r"[0-9.]+", score) else None,
                "defining": defining,
            }
        )
    for a in alleles:
        a["name"] = RENAMED.get(gene, {}).get(a["name"], a["name"])
    names = {a["name"] for a in alleles}
    for name, pos, base, function, activity in EXTRA_ALLELES.get(gene, ()):
        if name not in names and pos in variants:
            alleles.append(
                {"name": name, "function": function, "activity": activity, "defining": {str(pos): base}}
            )
    if gene in BACKGROUND:
        star1, exempt = BACKGROUND[gene]
        background = next(a["defining"] for a in alleles if a["name"] == star1)
        for a in alleles:
            if a["name"] not in exempt and a["name"] != star1:
                a["defining"] = {**background, **a["defining"]}
            if a["name"] == star1:  # *1 is fully specified: reference everywhere else
                a["pins_all"] = True
    renamed: dict[str, str] = dict(RENAMED.get(gene, {}))
    if single is not None:
        (pos,) = variants
        rec = variants[pos]
        for a in alleles:
            kind = "reference" if a["name"] == reference else "variant"
            base = rec["ref"] if kind == "reference" else a["defining"][str(pos)]
            renamed[a["name"]] = a["name"] = f"{single} {kind} ({base})"
        reference = f"{single} reference ({rec['ref']})"
    for a in alleles:
        pos_either = EITHER.get(gene, {}).get(a["name"])
        if pos_either is not None and pos_either[0] in variants and str(pos_either[0]) not in a["defining"]:
            a["defining"][str(pos_either[0])] = list(pos_either[1])
    positions = _positions(gene, {p: (v["rsids"], v["ref"], v["alts"]) for p, v in variants.items()})
    ids = {str(p["pos"]): p["id"] for p in positions}
    for a in alleles:
        a["defining"] = {ids[k]: v for k, v in a["defining"].items()}
    return {
        "gene": gene,
        "version": f"pypgx-{version}",
        "source": (
            f"pypgx {version} api/data tables (CPIC/PharmVar core alleles on GRCh38, CPIC functions, "
            "activity values and diplotype phenotypes); regenerated by scripts/pgx_definitions.py"
        ),
        "licence": PYPGX_LICENCE,
        "genome_build": "GRCh38",
        "chromosome": CHROMOSOMES[gene],
        "guideline": GUIDELINES.get(gene, ""),
        "reference": reference,
        "calling": "lowest_function" if gene in LOWEST_FUNCTION else "diplotype",
        "undocumented_as_reference": gene in UNDOCUMENTED_AS_REFERENCE,
        "positions": positions,
        "alleles": alleles,
        "phenotype": _phenotype_pypgx(gene, gene_row["PhenotypeMethod"], alleles, tables, renamed),
        "skipped_alleles": skipped,
    }


def _positions(gene: str, variants: dict[int, tuple[set[str], str, list[str]]]) -> list[dict[str, Any]]:
    """Positions in genome order, named by rsid when it names one position only, else chrom:pos."""
    counts: dict[str, int] = defaultdict(int)
    for rsids, _, _ in variants.values():
        for r in rsids:
            counts[r] += 1
    out = []
    for pos in sorted(variants):
        rsids, ref, alts = variants[pos]
        unique = sorted(r for r in rsids if counts[r] == 1)
        ident = unique[0] if len(unique) == 1 and len(rsids) == 1 else f"{CHROMOSOMES[gene]}:{pos}"
        out.append({"id": ident, "pos": pos, "ref": ref, "alts": alts})
    return out


def _phenotype_pypgx(
    gene: str,
    method: str,
    alleles: list[dict[str, Any]],
    tables: dict[str, list[dict[str, str]]],
    renamed: dict[str, str],
) -> dict[str, Any]:
    if method == "Score":
        ranges = []
        for row in tables["equation-table"]:
            if row["Gene"] != gene:
                continue
            eq = row["Equation"].replace(" ", "")
            if m := re.fullmatch(r"([0-9.]+)<=score<([0-9.]+)", eq):
                ranges.append(
                    {
                        "min": float(m[1]),
                        "max": float(m[2]),
                        "max_inclusive": False,
                        "phenotype": row["Phenotype"],
                    }
                )
            elif m := re.fullmatch(r"([0-9.]+)==score", eq):
                ranges.append({"min": float(m[1]), "max": float(m[1]), "phenotype": row["Phenotype"]})
            elif m := re.fullmatch(r"([0-9.]+)<=score", eq):
                ranges.append({"min": float(m[1]), "max": 99.0, "phenotype": row["Phenotype"]})
            else:
                raise ValueError(f"{gene}: cannot read equation {row['Equation']!r}")
        return {"method": "activity", "ranges": ranges, "otherwise": "Indeterminate"}
    rows = []
    for r in tables["diplotype-table"]:
        if r["Gene"] == gene:
            first, _, second = r["Diplotype"].partition("/")
            rows.append((f"{renamed.get(first, first)}/{renamed.get(second, second)}", r["Phenotype"]))
    if method != "Diplotype" or not rows:
        return {"method": "none", "otherwise": "n/a"}
    return _function_rules({a["name"]: a["function"] for a in alleles}, rows)


def _function_rules(functions: dict[str, str], rows: list[tuple[str, str]]) -> dict[str, Any]:
    """A diplotype table as function-pair rules, with the diplotypes the rules do not fit kept as such."""
    by_pair: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    parsed = []
    for dip, phenotype in rows:
        first, _, second = dip.partition("/")
        if first not in functions or second not in functions:
            continue
        fa, fb = sorted((functions[first], functions[second]))
        by_pair[(fa, fb)][phenotype] += 1
        parsed.append((first, second, fa, fb, phenotype))
    rules = {}
    for pair, counts in by_pair.items():
        rules[pair] = max(counts.items(), key=lambda kv: kv[1])[0]
    exceptions = {f"{a}/{b}": ph for a, b, fa, fb, ph in parsed if rules[(fa, fb)] != ph}
    return {
        "method": "function",
        "rules": [{"functions": list(k), "phenotype": v} for k, v in sorted(rules.items())],
        "diplotypes": dict(sorted(exceptions.items())),
        "otherwise": "Indeterminate",
    }


# --- PharmCAT ------------------------------------------------------------------------------------


def gene_from_pharmcat(
    gene: str, definitions: Path, phenotypes: Path | None, current: dict[str, Any] | None
) -> tuple[dict[str, Any], bytes]:
    raw = (definitions / f"{gene}_translation.json").read_bytes()
    doc = json.loads(raw)
    exemptions = _pharmcat_exemptions(definitions).get(gene, {})
    ignored_pos = {p["position"] for p in exemptions.get("ignoredPositions", [])}
    ignored_alleles = {a.lower() for a in exemptions.get("ignoredAlleles", [])}
    keep = [i for i, v in enumerate(doc["variants"]) if v["position"] not in ignored_pos]
    variants = {
        v["position"]: ({v["rsid"]} if v.get("rsid") else set(), v["ref"], list(v["alts"]))
        for i, v in enumerate(doc["variants"])
        if i in keep
    }
    positions = _positions(gene, variants)
    ids = [next(p["id"] for p in positions if p["pos"] == doc["variants"][i]["position"]) for i in keep]
    functions, activities, pheno = _pharmcat_functions(gene, phenotypes, current)
    reference = next(a["name"] for a in doc["namedAlleles"] if a["reference"])
    alleles: list[dict[str, Any]] = []
    for a in doc["namedAlleles"]:
        if a["name"].lower() in ignored_alleles or a.get("structuralVariant"):
            continue
        defining: dict[str, Any] = {}
        for pid, i in zip(ids, keep, strict=True):
            value = a["alleles"][i]
            if value is None or a["reference"]:
                continue
            defining[pid] = (
                _iupac(value) if value not in variants[doc["variants"][i]["position"]][2] else value
            )
        if not defining and not a["reference"]:
            continue
        alleles.append(
            {
                "name": a["name"],
                "function": functions.get(a["name"], "Unknown function"),
                "activity": activities.get(a["name"]),
                "defining": defining,
            }
        )
    return {
        "gene": gene,
        "version": f"pharmcat-{doc['version']}",
        "source": f"PharmCAT allele definitions {doc['version']} ({doc['source']}); "
        "scripts/pgx_definitions.py",
        "licence": PHARMCAT_LICENCE,
        "genome_build": "GRCh38",
        "chromosome": doc["chromosome"],
        "guideline": GUIDELINES.get(gene, ""),
        "reference": reference,
        "calling": "lowest_function" if gene in LOWEST_FUNCTION else "diplotype",
        "undocumented_as_reference": gene in UNDOCUMENTED_AS_REFERENCE,
        "positions": positions,
        "alleles": alleles,
        "phenotype": pheno,
        "skipped_alleles": [],
    }, raw


_IUPAC = {
    "R": "AG",
    "Y": "CT",
    "S": "CG",
    "W": "AT",
    "K": "GT",
    "M": "AC",
    "B": "CGT",
    "D": "AGT",
    "H": "ACT",
    "V": "ACG",
    "N": "ACGT",
}


def _iupac(value: str) -> list[str] | str:
    return list(_IUPAC[value]) if value in _IUPAC else value


def _pharmcat_exemptions(definitions: Path) -> dict[str, Any]:
    path = definitions / "exemptions.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _pharmcat_functions(
    gene: str, phenotypes: Path | None, current: dict[str, Any] | None
) -> tuple[dict[str, str], dict[str, float | None], dict[str, Any]]:
    path = phenotypes / f"{gene.replace('-', '_')}.json" if phenotypes else None
    if path is None or not path.exists():
        if current is None:
            return {}, {}, {"method": "none", "otherwise": "n/a"}
        funcs = {a["name"]: a["function"] for a in current["alleles"]}
        acts = {a["name"]: a.get("activity") for a in current["alleles"]}
        return funcs, acts, current["phenotype"]
    doc = json.loads(path.read_text())
    funcs, acts = {}, {}
    for a in doc.get("namedAlleles", []):
        funcs[a["name"]] = a.get("functionValue") or "Unknown function"
        value = a.get("activityValue")
        acts[a["name"]] = float(value) if value and re.fullmatch(r"[0-9.]+", value) else None
    rows = [(d["diplotype"], d["generesult"]) for d in doc.get("diplotypes", []) if "/" in d["diplotype"]]
    if current is not None and current["phenotype"]["method"] == "activity":
        return funcs, acts, current["phenotype"]
    return funcs, acts, _function_rules(funcs, rows) if rows else {"method": "none", "otherwise": "n/a"}


# --- main ----------------------------------------------------------------------------------------


def write(genes: list[dict[str, Any]], manifest: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for g in genes:
        (out / f"{g['gene']}.json").write_text(json.dumps(g, indent=1, ensure_ascii=False) + "\n")
    (out / "SOURCE.json").write_text(json.dumps(manifest, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--pypgx", type=Path, help="pypgx wheel (.whl) or installed pypgx package directory")
    src.add_argument("--pharmcat", type=Path, help="PharmCAT allele_definitions directory")
    ap.add_argument("--pharmcat-phenotypes", type=Path, help="PharmCAT phenotype directory")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--genes", default=",".join(GENES))
    args = ap.parse_args(argv)
    genes = [g.strip() for g in args.genes.split(",") if g.strip()]
    now = datetime.now(UTC).strftime("%Y-%m-%d")
    if args.pypgx:
        tables, version, digest, licence = read_pypgx_tables(args.pypgx)
        if licence:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "LICENSE-pypgx.txt").write_text(licence)
        built = [apply_cpic_facts(gene_from_pypgx(g, tables, version)) for g in genes]
        manifest = {
            "source": "pypgx",
            "version": version,
            "sha256": digest,
            "read_from": args.pypgx.name,
            "licence": PYPGX_LICENCE + " Full text: LICENSE-pypgx.txt.",
            "generated": now,
            "genes": genes,
        }
    else:
        built, digests = [], {}
        for g in genes:
            current_path = args.out / f"{g}.json"
            current = json.loads(current_path.read_text()) if current_path.exists() else None
            doc, raw = gene_from_pharmcat(g, args.pharmcat, args.pharmcat_phenotypes, current)
            built.append(doc if args.pharmcat_phenotypes else apply_cpic_facts(doc))
            digests[g] = sha256_of(raw)
        manifest = {
            "source": "PharmCAT allele definitions",
            "version": built[0]["version"],
            "sha256": sha256_of("".join(digests[g] for g in genes).encode()),
            "files_sha256": digests,
            "licence": PHARMCAT_LICENCE,
            "generated": now,
            "genes": genes,
        }
    write(built, manifest, args.out)
    for g in built:
        print(
            f"{g['gene']:8s} {len(g['positions']):4d} positions {len(g['alleles']):4d} alleles",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
