"""VCF reading and calling against real files: agreement with PharmCAT, builds, bad lines."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from converters.omics.definitions import PANEL, load_definition, load_panel
from converters.omics.vcf import call_vcf, detect_build
from interop.errors import ConversionError
from tests.data import (
    PGX_EXAMPLE2_REPORT_TSV,
    PGX_EXAMPLE2_VCF,
    PGX_EXAMPLE_VCF,
    PGX_PHENOTYPE_JSON,
)
from tests.omics.vcfgen import HEADER_38, write_vcf


def _same_diplotype(a: str | None, b: str | None, reference: str) -> bool:
    if a is None or b is None:
        return a == b
    # PharmCAT's older reports call CFTR's reference "Reference"
    theirs = [reference if h == "Reference" else h for h in b.split("/")]
    return sorted(a.split("/")) == sorted(theirs)


def _agreement(vcf: Path, pharmcat: dict[str, tuple[str, str]]) -> list[tuple[str, ...]]:
    """Our call vs PharmCAT's per gene. Where PharmCAT gives no phenotype ("" or n/a), or our
    tables have none for the gene (CYP3A4, CYP4F2), the diplotype alone is compared."""
    result = call_vcf(vcf)
    (sample,) = result.samples
    ours = {c.gene: c for c in result.calls[sample]}
    rows: list[tuple[str, ...]] = []
    print(f"\nAgreement with PharmCAT for {vcf.name}")
    print(f"{'gene':8} {'ours':60} {'PharmCAT':60} agree")
    for gene, (dip, phe) in sorted(pharmcat.items()):
        c = ours[gene]
        same = _same_diplotype(c.diplotype, dip, load_definition(gene).reference)
        compare_phenotype = (
            phe.strip() not in ("", "n/a") and load_definition(gene).phenotype.method != "none"
        )
        agree = same and (c.phenotype == phe or not compare_phenotype)
        verdict = ("yes" if compare_phenotype else "yes (diplotype)") if agree else "NO"
        print(f"{gene:8} {c.diplotype!s:36} {c.phenotype!s:23} {dip:36} {phe:23} {verdict}")
        rows.append((gene, str(c.diplotype), str(c.phenotype), dip, phe, str(agree)))
    return rows


def test_agrees_with_pharmcat_phenotype_json_for_every_panel_gene_it_calls() -> None:
    doc = json.loads(PGX_PHENOTYPE_JSON.read_text())
    called = {}
    for gene, rep in doc["geneReports"].items():
        if gene in PANEL and rep["callSource"] == "MATCHER" and rep["sourceDiplotypes"]:
            d = rep["sourceDiplotypes"][0]
            called[gene] = (d["label"], "; ".join(d["phenotypes"]))
    assert set(called) == set(PANEL)  # PharmCAT calls the whole panel from this file
    rows = _agreement(PGX_EXAMPLE_VCF, called)
    assert all(r[-1] == "True" for r in rows), rows


def test_agrees_with_pharmcat_on_example2_with_cyp2c19_star2() -> None:
    lines = PGX_EXAMPLE2_REPORT_TSV.read_text().splitlines()[1:]
    called = {
        r["Gene"]: (r["Source Diplotype"], r["Phenotype"])
        for r in csv.DictReader(lines, delimiter="\t")
        if r["Gene"] in PANEL and r["Outside Call"] == "no"
    }
    assert called["CYP2C19"] == ("*2/*2", "Poor Metabolizer")
    rows = _agreement(PGX_EXAMPLE2_VCF, called)
    assert all(r[-1] == "True" for r in rows), rows


def test_multi_sample_bgzipped_vcf(tmp_path: Path) -> None:
    truth = {
        "P1": {
            "CYP2C19": ("*1", "*17"),
            "CYP3A5": ("*1", "*3"),
            "DPYD": ("Reference", "c.2846A>T"),
        },
        "P2": {"CYP2C9": ("*2", "*3"), "TPMT": ("*1", "*3A"), "UGT1A1": ("*28", "*28")},
        "P3": {
            "SLCO1B1": ("*1", "*15"),
            "NUDT15": ("*1", "*3"),
            "VKORC1": ("rs9923231 variant (T)", "rs9923231 variant (T)"),
        },
    }
    path = write_vcf(tmp_path / "cohort.vcf.gz", truth, bgzip=True)
    result = call_vcf(path)
    assert result.samples == ["P1", "P2", "P3"]
    for sample, genes in truth.items():
        calls = {c.gene: c for c in result.calls[sample]}
        for gene, pair in genes.items():
            assert sorted([calls[gene].first, calls[gene].second], key=str) == sorted(pair), (sample, gene)
            assert not calls[gene].uncertain
    assert {c.gene: c.phenotype for c in result.calls["P2"]}["CYP2C9"] == "Poor Metabolizer"
    assert result.report.balanced()


def test_phased_vcf(tmp_path: Path) -> None:
    path = write_vcf(tmp_path / "phased.vcf", {"S": {"TPMT": ("*3B", "*3C")}}, phased=True)
    calls = {c.gene: c for c in call_vcf(path).calls["S"]}
    assert calls["TPMT"].diplotype == "*3B/*3C"


def test_missing_positions_and_no_calls_are_named_never_reference(tmp_path: Path) -> None:
    path = write_vcf(
        tmp_path / "gaps.vcf",
        {"S": {"CYP2C19": ("*1", "*2")}},
        drop=frozenset({"rs776746"}),
        no_call={"S": {"rs1800462"}},
    )
    result = call_vcf(path)
    calls = {c.gene: c for c in result.calls["S"]}
    assert calls["CYP3A5"].uncertain and calls["CYP3A5"].missing_positions == ("rs776746",)
    assert "*3" in calls["CYP3A5"].untestable_alleles
    assert calls["TPMT"].uncertain and calls["TPMT"].no_call_positions == ("rs1800462",)
    assert not calls["CYP2C19"].uncertain


def test_malformed_lines_are_counted_with_their_line_numbers(tmp_path: Path) -> None:
    bad = [
        "chr10\tNOTANUMBER\trsX\tC\tT\t.\tPASS\t.\tGT\t0/0",
        "chr10\t94761901\trsY\tC",
        "chr22\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0/1",
    ]
    path = write_vcf(tmp_path / "bad.vcf", {"S": {}}, extra_lines=bad)
    result = call_vcf(path)
    lines = result.report.tallies["vcf data lines"]
    n_panel = sum(len(d.positions) for d in load_panel())
    assert lines.read == n_panel + 3
    assert lines.converted == n_panel
    assert lines.rejected["malformed VCF line"] == 2
    assert lines.skipped["not a panel position"] == 1
    assert lines.balanced
    first_data_line = len(HEADER_38) + 2
    examples = lines.examples["malformed VCF line"]
    assert examples[0].startswith(f"bad.vcf:{first_data_line + n_panel}:")


def test_ref_mismatch_is_rejected_per_line(tmp_path: Path) -> None:
    line = "chr10\t94781859\trs4244285\tT\tA\t.\tPASS\t.\tGT\t0/1"  # GRCh38 has G here
    path = write_vcf(tmp_path / "ref.vcf", {"S": {}}, drop=frozenset({"rs4244285"}), extra_lines=[line])
    result = call_vcf(path)
    lines = result.report.tallies["vcf data lines"]
    assert lines.rejected["REF differs from GRCh38"] == 1
    calls = {c.gene: c for c in result.calls["S"]}
    assert calls["CYP2C19"].missing_positions == ("rs4244285",)


@pytest.mark.parametrize(
    "header_line",
    [
        "##reference=file:///refs/human_g1k_v37.fasta",
        "##contig=<ID=1,length=249250621>",
        "##contig=<ID=chr10,assembly=hg19>",
    ],
)
def test_other_genome_build_is_refused(tmp_path: Path, header_line: str) -> None:
    header = ["##fileformat=VCFv4.2", header_line, HEADER_38[-1]]
    path = write_vcf(tmp_path / "b37.vcf", {"S": {}}, header=header)
    with pytest.raises(ConversionError, match="not GRCh38"):
        call_vcf(path)


def test_undeclared_build_with_wrong_ref_bases_is_refused(tmp_path: Path) -> None:
    header = ["##fileformat=VCFv4.2", HEADER_38[-1]]
    rows = [
        f"{d.chromosome}\t{p.pos + 1000}\t{p.id}\tN\tA\t.\tPASS\t.\tGT\t0/0"
        for d in load_panel()
        for p in d.positions
    ]
    path = write_vcf(tmp_path / "shifted.vcf", {"S": {}}, header=header, extra_lines=[])
    text = path.read_text().splitlines()
    body = [ln for ln in text if ln.startswith("#")]
    # every panel position present, but with REF bases of another assembly
    swapped = []
    for ln in text:
        if ln.startswith("#"):
            continue
        cols = ln.split("\t")
        cols[3] = "A" if cols[3] != "A" else "C"
        swapped.append("\t".join(cols))
    path.write_text("\n".join(body + swapped + rows[:0]) + "\n")
    with pytest.raises(ConversionError, match="another genome build"):
        call_vcf(path)


def test_detect_build_from_the_example_header() -> None:
    with PGX_EXAMPLE_VCF.open() as fh:
        header = "".join(ln for ln in fh if ln.startswith("#"))
    build, evidence = detect_build(header)
    assert build == "GRCh38" and "GRCh38.p14" in evidence


def test_unknown_gene_is_refused() -> None:
    with pytest.raises(ConversionError, match="unrecognised gene symbol"):
        call_vcf(PGX_EXAMPLE_VCF, genes=("CYP2C19", "NOTAGENE"))


def test_split_multiallelic_position_is_merged_copy_by_copy(tmp_path: Path) -> None:
    # UGT1A1's TA repeat written twice (as bcftools norm -m- would): the second record's variant
    # must not be hidden by the first record's reference, nor two variants put on one copy.
    second = "chr2\t233760233\t.\tCAT\tCATAT\t.\tPASS\t.\tGT\t0/1\t1/1"
    path = write_vcf(tmp_path / "split.vcf", {"S": {}, "T": {"UGT1A1": ("*1", "*36")}}, extra_lines=[second])
    result = call_vcf(path)
    lines = result.report.tallies["vcf data lines"]
    assert lines.balanced and not lines.rejected
    assert result.report.counts["records merged into a position another record also gave"] == 1
    ugt = {c.gene: c for c in result.calls["S"]}["UGT1A1"]
    assert (ugt.diplotype, ugt.status) == ("*1/*28", "called")
    # T: *36 on one copy from the first record, *28 on both from the second: a conflict
    conflict = {c.gene: c for c in result.calls["T"]}["UGT1A1"]
    assert conflict.diplotype is None and conflict.status == "unknown"


def test_samples_missing_from_the_mapping_or_with_unusable_ids_are_reported(tmp_path: Path) -> None:
    from converters.omics import PatientIds, import_vcf

    path = write_vcf(tmp_path / "three.vcf", {"S1": {}, "S2": {}, "Sample_0003": {}})
    report = import_vcf(path, tmp_path / "a", PatientIds(mapping={"S1": "patient-0001", "S2": "x"}))
    samples = report.tallies["samples"]
    assert samples.converted == 1 and samples.balanced
    assert samples.skipped == {"sample id not in the mapping file": 1}
    assert samples.rejected == {"unusable patient id": 1}
    assert report.tallies["gene calls"].converted == len(PANEL)  # only the written sample's calls
    assert [p.name for p in (tmp_path / "a" / "records").iterdir()] == ["patient-0001.json"]


def test_indexed_file_reads_only_the_panel_regions(tmp_path: Path) -> None:
    import pysam

    far = "chr1\t500\t.\tA\tG\t.\tPASS\t.\tGT\t0/1"  # outside every panel region
    plain = write_vcf(tmp_path / "idx.vcf", {"S": {"CYP2C9": ("*1", "*3")}}, extra_lines=[])
    text = plain.read_text().splitlines()
    head = [ln for ln in text if ln.startswith("#")]
    body = [far] + [ln for ln in text if not ln.startswith("#")]
    plain.write_text("\n".join(head + body) + "\n")
    gz = Path(pysam.tabix_index(str(plain), preset="vcf", force=True))
    assert Path(f"{gz}.tbi").exists()
    result = call_vcf(gz)
    assert any("indexed file" in w for w in result.report.warnings)
    lines = result.report.tallies["vcf data lines"]
    assert lines.converted == sum(len(d.positions) for d in load_panel())
    assert lines.skipped.get("not a panel position", 0) == 0  # chr1:500 was never read
    calls = {c.gene: c for c in result.calls["S"]}
    assert calls["CYP2C9"].diplotype == "*1/*3"


def test_vcf_phase_sets_are_read_from_ps(tmp_path: Path) -> None:
    header = [*HEADER_38, '##FORMAT=<ID=PS,Number=1,Type=Integer,Description="Phase set">']
    path = write_vcf(
        tmp_path / "ps.vcf", {"S": {}}, header=header, drop=frozenset({"rs1800460", "rs1142345"})
    )
    lines = path.read_text().splitlines()
    extra = [
        "chr6\t18130687\trs1142345\tT\tC,G\t.\tPASS\t.\tGT:PS\t1|0:100",
        "chr6\t18138997\trs1800460\tC\tT\t.\tPASS\t.\tGT:PS\t0|1:200",  # other set
    ]
    path.write_text("\n".join(lines + extra) + "\n")
    calls = {c.gene: c for c in call_vcf(path).calls["S"]}
    assert calls["TPMT"].diplotype == "*1/*3A"  # different sets: phase between them unknown
    extra[1] = extra[1].replace(":200", ":100")
    path.write_text("\n".join(lines + extra) + "\n")
    calls = {c.gene: c for c in call_vcf(path).calls["S"]}
    assert calls["TPMT"].diplotype == "*3B/*3C"  # same set, opposite copies: trans
