"""The one import report: counts per reason, bounded examples, hidden sources, top rejections."""

from __future__ import annotations

import json

from converters.omics.report import ImportReport as OmicsReport
from converters.report import EXAMPLES_PER_REASON, MAX_REASONS, ConversionReport, ImportReport


def _feed(report: ImportReport, n: int) -> None:
    for i in range(n):
        report.read["Observation"] += 1
        if i % 2:
            report.converted["Observation"] += 1
        else:
            report.add(
                "rejected",
                "Observation",
                f"impossible value {i}",
                source="/data/Jane_Doe_123.json",
                line=i + 1,
            )


def test_one_type_under_every_old_name():
    assert ConversionReport is ImportReport is OmicsReport


def test_memory_is_bounded_however_many_rejections():
    report = ImportReport()
    _feed(report, 20_000)  # 10 000 rejections, each with its own reason text
    assert report.balanced() and report.totals()["rejected"] == 10_000
    assert len(report.reason_counts) <= MAX_REASONS + 1  # the rest folded into one line
    assert sum(report.reason_counts.values()) == 10_000  # but every one is counted
    assert all(len(v) <= EXAMPLES_PER_REASON for v in report.examples.values())
    assert len(report.issues) <= (MAX_REASONS + 1) * EXAMPLES_PER_REASON


def test_tally_view_counts_into_the_same_report():
    report = ImportReport(source="x.vcf")
    lines = report.tally("vcf data lines")
    lines.ok(3)
    lines.reject("malformed VCF line", where="x.vcf:7")
    lines.skip("not a panel position", n=4)
    assert (lines.read, lines.converted, lines.n_rejected, lines.n_skipped) == (8, 3, 1, 4)
    assert lines.balanced and report.balanced()
    assert lines.rejected == {"malformed VCF line": 1} and lines.examples == {
        "malformed VCF line": ["x.vcf:7"]
    }
    assert report.tallies["vcf data lines"].read == 8


def test_written_reports_hide_sources_and_name_file_and_line_of_top_rejections():
    report = ImportReport()
    _feed(report, 40)
    hide = lambda s: "src-0123abcd"  # noqa: E731 - what a keyed token looks like
    text = report.to_text(hide=hide, top=3)
    assert "Jane_Doe" not in text and "Jane_Doe" not in report.to_json(hide)
    assert "src-0123abcd:1: Observation: impossible value 0" in text
    assert "... and 17 more rejection(s)" in text  # 20 rejected, 3 shown
    shown, rest = report.top_rejections(3)
    assert len(shown) == 3 and rest == 17 and shown[0].source == "/data/Jane_Doe_123.json"  # in memory
    reasons = json.loads(report.to_json(hide))["reasons"]
    assert reasons[0]["examples"][0]["source"] == "src-0123abcd" and reasons[0]["count"] == 1


def test_all_rejected():
    report = ImportReport()
    report.read["Observation"] += 2
    report.add("rejected", "Observation", "bad")
    report.add("rejected", "Observation", "bad")
    assert report.all_rejected()
    report.read["Patient"] += 1
    report.converted["Patient"] += 1
    assert not report.all_rejected()


def test_free_text_examples_name_the_reports_own_file_by_token_too():
    report = ImportReport(source="/data/Jane_Doe_sample.vcf")
    report.tally("vcf data lines").reject("malformed VCF line", where="Jane_Doe_sample.vcf:7")
    hide = lambda s: "src-feedc0de"  # noqa: E731
    assert "src-feedc0de:7" in report.to_text(hide=hide) and "Jane_Doe" not in report.to_json(hide)
    assert report.tallies["vcf data lines"].examples == {"malformed VCF line": ["Jane_Doe_sample.vcf:7"]}
