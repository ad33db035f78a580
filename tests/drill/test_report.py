"""The drill report: result.json, the summary, PNG timelines and an escaped HTML page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hakit.lab.drill.report import fault_time, format_progress, summarize, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
START = 1795560000.0
EVIL_DETAIL = "web ran on node1 <and> node3 & more"


def _samples(fault: float, down_from: float, down_until: float) -> list[list[Any]]:
    """Probe samples every 0.1 s from 5 s before the fault to 20 s after it."""
    times = [fault - 5 + i / 10 for i in range(250)]
    return [[at, not (fault + down_from <= at < fault + down_until)] for at in times]


def _run(number: int, figures: dict[str, float | None], passed: bool = True) -> dict[str, Any]:
    started = START + 100 * number
    fault = started + 5.0
    run: dict[str, Any] = {
        "scenario": "power-cut",
        "target": "node2",
        "profile": "fast",
        "run": number,
        "started": started,
        "ended": started + 30.5,
        "passed": passed,
        "timeline": [
            {
                "at": fault + 1.2,
                "what": "node2 lost from the membership",
                "node": "node1",
                "kind": "detected",
            },
            {
                "at": fault,
                "what": "fault injected: power cut of node2",
                "node": "host",
                "kind": "fault",
            },
            {"at": fault + 1.9, "what": "node2 fenced", "node": "node1", "kind": "fenced"},
            {
                "at": fault + 3.4,
                "what": "web started on node3",
                "node": "node3",
                "kind": "recovery",
            },
            {"at": fault + 3.5, "what": "web answers again", "node": "host", "kind": "available"},
            {"at": fault + 15.0, "what": "node2 rejoined", "node": "node2", "kind": "healed"},
        ],
        "figures": figures,
        "probes": [
            {
                "name": "web http",
                "samples": _samples(fault, 0.3, 3.4),
                "downtime_s": 3.1,
                "failures": 31,
            },
            {
                "name": "db tcp",
                "samples": _samples(fault, 0.5, 2.0),
                "downtime_s": 1.5,
                "failures": 15,
            },
        ],
        "violations": [],
        "invariants": {
            "ap-never-twice": "passed",
            "no-start-before-fencing": "passed",
            "placement-as-policy": "passed",
            "no-alarm-lost": "skipped",
        },
    }
    if not passed:
        run["violations"] = [
            {
                "invariant": "ap-never-twice",
                "at": fault + 2.5,
                "node": "node3",
                "detail": EVIL_DETAIL,
            }
        ]
        run["invariants"]["ap-never-twice"] = "failed"
    return run


@pytest.fixture
def runs() -> list[dict[str, Any]]:
    return [
        _run(1, {"detection_s": 1.2, "fencing_s": 1.9, "recovery_s": 3.4, "probe_downtime_s": 3.1}),
        _run(2, {"detection_s": 1.0, "fencing_s": 2.5, "recovery_s": 4.0, "probe_downtime_s": 3.6}),
        # Failed: no recovery (missing), fencing never measured (null).
        _run(3, {"detection_s": 1.6, "fencing_s": None, "probe_downtime_s": 9.25}, passed=False),
    ]


def test_summarize(runs: list[dict[str, Any]]) -> None:
    summary = summarize(runs)
    assert summary["runs"] == 3
    assert summary["passed"] == 2
    assert summary["failed"] == 1
    assert summary["detection_s"] == {"median": 1.2, "max": 1.6, "count": 3}
    assert summary["fencing_s"] == {"median": pytest.approx(2.2), "max": 2.5, "count": 2}
    assert summary["recovery_s"] == {"median": pytest.approx(3.7), "max": 4.0, "count": 2}
    assert summary["probe_downtime_s"] == {"median": 3.6, "max": 9.25, "count": 3}


def test_summarize_no_runs() -> None:
    assert summarize([]) == {"runs": 0, "passed": 0, "failed": 0}


def test_write_report(tmp_path: Path, runs: list[dict[str, Any]]) -> None:
    out_dir = tmp_path / "report"
    index = write_report(runs, out_dir)
    assert index == out_dir / "index.html"

    result = json.loads((out_dir / "result.json").read_text())
    assert result["runs"] == runs
    assert result["summary"] == json.loads(json.dumps(summarize(runs)))

    for number in (1, 2, 3):
        png = (out_dir / f"run-{number}.png").read_bytes()
        assert png.startswith(PNG_SIGNATURE)
        assert len(png) > 5_000

    page = index.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert '<span class="fail">FAIL</span></h1>' in page
    assert page.count(">PASS<") == 2  # runs 1 and 2
    for figure in ("1.20 s", "1.60 s", "2.20 s", "2.50 s", "3.70 s", "4.00 s", "3.60 s", "9.25 s"):
        assert figure in page
    assert "web ran on node1 &lt;and&gt; node3 &amp; more" in page
    assert EVIL_DETAIL not in page
    assert "<and>" not in page
    for number in (1, 2, 3):
        assert f'<img src="run-{number}.png"' in page
    # Timeline in order, relative to the fault and in UTC.
    first = page.index("fault injected: power cut of node2")
    assert first < page.index("node2 lost from the membership") < page.index("node2 fenced")
    assert "+1.200 s" in page
    assert "2026-11-24 22:41:45.000 UTC" in page  # run 1's fault
    assert "2026-11-24 22:41:46.200 UTC" in page  # and its detection
    assert "no-start-before-fencing" in page
    assert "http://" not in page and "https://" not in page


def test_all_passed_is_pass(tmp_path: Path, runs: list[dict[str, Any]]) -> None:
    page = write_report(runs[:2], tmp_path).read_text()
    assert '<span class="pass">PASS</span></h1>' in page
    assert "FAIL" not in page


def test_format_progress(runs: list[dict[str, Any]]) -> None:
    run = runs[0]
    t0 = fault_time(run)
    assert t0 == run["started"] + 5.0
    detected = run["timeline"][0]
    assert (
        format_progress(detected, t0)
        == "  +1.200s  detected   node2 lost from the membership (node1)"
    )
    assert format_progress({"at": t0 - 0.25, "what": "baseline", "kind": "note"}, t0) == (
        "  -0.250s  note       baseline"
    )


def test_fault_time_without_fault(runs: list[dict[str, Any]]) -> None:
    run = dict(runs[0], timeline=[])
    assert fault_time(run) == run["started"]
