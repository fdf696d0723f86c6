"""The profile report: the front's ``ProfileReport`` renders a core ``ProfileResult``.

The core result has no rich display of its own (the core never imports a front);
``nbdeploy.ProfileReport`` draws it with :mod:`nbdeploy.display.profile`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from nbdeploy.profiling import ProfileResult, Recommendation
from nbdeploy.profiling.report import example_dict
from nbdeploy.sdk.profile import ProfileReport


def _report(**changes: Any) -> ProfileReport:
    result = dataclasses.replace(ProfileResult.from_dict(example_dict()), **changes)
    return ProfileReport.from_result(result)


def test_the_core_result_has_no_rich_display() -> None:
    result = ProfileResult.from_dict(example_dict())
    assert not hasattr(result, "_repr_mimebundle_")
    assert "requestedCpu=" in result.summary()


def test_a_report_is_the_same_result() -> None:
    result = ProfileResult.from_dict(example_dict())
    report = ProfileReport.from_result(result)
    assert isinstance(report, ProfileResult)
    assert report == result
    assert ProfileReport.from_result(report) is report
    again = ProfileReport.from_dict(report.to_dict())
    assert type(again) is ProfileReport
    assert again == report


def test_rendering_is_inline_svg_and_escaped() -> None:
    result = _report(name="<script>alert(1)</script>", service="svc&co")
    bundle = result._repr_mimebundle_()
    html = bundle["text/html"]
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "svc&amp;co" in html
    assert html.count("<svg") == 3  # latency histogram, CPU, memory
    assert "src=" not in html  # nothing loaded from anywhere
    assert "<link" not in html
    assert "requestedMemoryInGb" in html
    assert "p50" in html
    assert "<script>alert(1)</script>" in bundle["text/plain"]
    assert set(result._repr_mimebundle_(include=["text/plain"])) == {"text/plain"}
    assert set(result._repr_mimebundle_(exclude=["text/html"])) == {"text/plain"}


def test_rendering_without_process_samples() -> None:
    result = _report(
        sample_t_s=[],
        sample_cpu_cores=[],
        sample_rss_bytes=[],
        pids=(),
        peak_rss_bytes=None,
        hwm_bytes=None,
        load_cpu_cores=None,
        recommendation=Recommendation(None, None, "no process"),
    )
    html = result._repr_mimebundle_()["text/html"]
    assert "no process samples" in html
    assert result.get_details()["requestedCpu"] is None
