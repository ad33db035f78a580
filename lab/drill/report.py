"""The failover-drill report: figures summarised, one PNG timeline per run, one HTML page.

A run result is a JSON-ready dict (scenario, target, profile, run, started, ended, passed,
timeline, figures, probes, violations, invariants). Times are epoch seconds; the report
shows them relative to the first "fault" event of the run (or its start when none).

matplotlib is imported by `plot_run` only, so importing this module stays cheap.
"""

from __future__ import annotations

import html
import itertools
import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeGuard

TYPE_CHECKING = False
if TYPE_CHECKING:
    from matplotlib.axes import Axes

Run = Mapping[str, Any]

KIND_COLOURS = {
    "fault": "#000000",
    "detected": "#ff7f0e",
    "fenced": "#9467bd",
    "recovery": "#1f77b4",
    "available": "#17becf",
    "healed": "#8c564b",
    "note": "#7f7f7f",
}
OK_COLOUR = "#2ca02c"
DOWN_COLOUR = "#d62728"
VIOLATION_COLOUR = "#d62728"
KIND_WIDTH = max(len(kind) for kind in KIND_COLOURS)
LABEL_CHARS = 30
LABEL_GAP = 0.014  # the x-range share an event label needs (rotated, at 1000 px wide)


class ReportError(Exception):
    """The report cannot be written (a message for the operator, not a bug)."""


def summarize(runs: Sequence[Run]) -> dict[str, Any]:
    """Median, max and count of each figure over the runs where it is a number, plus
    the number of runs, passed and failed: {"detection_s": {...}, "runs": 3, ...}."""
    values: dict[str, list[float]] = {}
    for run in runs:
        for name, value in (run.get("figures") or {}).items():
            numbers = values.setdefault(name, [])
            if _is_number(value):
                numbers.append(float(value))
    summary: dict[str, Any] = {
        name: {
            "median": statistics.median(numbers) if numbers else None,
            "max": max(numbers) if numbers else None,
            "count": len(numbers),
        }
        for name, numbers in values.items()
    }
    passed = sum(1 for run in runs if run.get("passed") is True)
    summary.update(runs=len(runs), passed=passed, failed=len(runs) - passed)
    return summary


def _figure_names(summary: Mapping[str, Any]) -> list[str]:
    """The figure names in a `summarize` result, in first-seen order."""
    return [name for name, entry in summary.items() if isinstance(entry, Mapping)]


def fault_time(run: Run) -> float:
    """The run's time origin: its first "fault" event, else its start."""
    faults = [event["at"] for event in _timeline(run) if event.get("kind") == "fault"]
    return float(min(faults)) if faults else float(run.get("started") or 0.0)


def format_progress(event: Mapping[str, Any], t0: float) -> str:
    """One terminal line for a timeline event: `  +1.234s  detected   node2 lost ... (node1)`."""
    at = event.get("at")
    since = _relative(at - t0, unit="s") if _is_number(at) else "?"
    line = f"  {since}  {event.get('kind', '')!s:<{KIND_WIDTH}}  {event.get('what', '')}"
    node = event.get("node")
    return f"{line} ({node})" if node else line


def plot_run(run: Run, path: Path) -> None:
    """Write a PNG timeline of one run (about 1000x400 px): probe bands green when ok and
    red when not, a line per timeline event, violations in red."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
    except ImportError as error:
        raise ReportError(
            f"the drill timelines need matplotlib ({error});"
            " install it with: pip install 'hakit-lab[report]'"
        ) from error

    t0 = fault_time(run)
    figure = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    rows = _draw_probes(axes, run, t0) + _draw_violations(
        axes, run, t0, row=len(run.get("probes") or [])
    )
    kinds_seen = _draw_events(axes, run, t0)

    # Headroom above the bands for the event labels.
    axes.set_ylim(-0.7, max(len(rows), 1) + 1.6)
    axes.set_yticks(range(len(rows)), rows, fontsize=8)
    axes.set_xlabel("seconds since the fault")
    axes.grid(axis="x", alpha=0.3)
    title = f"{run.get('scenario', '?')} on {run.get('target', '?')} — run {run.get('run', '?')}"
    title += " — PASS" if run.get("passed") is True else " — FAIL"
    axes.set_title(title, fontsize=10)
    handles = [
        Line2D([], [], color=colour, linestyle="--", label=k) for k, colour in kinds_seen.items()
    ]
    if run.get("probes"):
        handles += [
            Line2D([], [], color=OK_COLOUR, linewidth=6, label="probe ok"),
            Line2D([], [], color=DOWN_COLOUR, linewidth=6, label="probe failing"),
        ]
    if handles:
        axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    figure.savefig(path, format="png")


def _draw_probes(axes: Axes, run: Run, t0: float) -> list[str]:
    """One band per probe, green where it answered and red where not; returns the row names."""
    rows: list[str] = []
    for probe in run.get("probes") or []:
        row = len(rows)
        rows.append(str(probe.get("name", f"probe {row + 1}")))
        for start, width, ok in _spans(probe.get("samples") or [], t0):
            axes.broken_barh(
                [(start, width)],
                (row - 0.35, 0.7),
                facecolors=OK_COLOUR if ok else DOWN_COLOUR,
                edgecolors="none",
            )
    return rows


def _draw_violations(axes: Axes, run: Run, t0: float, row: int) -> list[str]:
    """A row of red marks, one per violation named by its invariant."""
    placed = [
        (violation["at"] - t0, violation)
        for violation in run.get("violations") or []
        if _is_number(violation.get("at"))
    ]
    if not placed:
        return []
    times = [at for at, _ in placed]
    axes.scatter(times, [row] * len(times), marker="X", s=90, color=VIOLATION_COLOUR, zorder=3)
    for at, violation in placed:
        axes.annotate(
            _short(str(violation.get("invariant", "")), LABEL_CHARS),
            (at, row),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
            color=VIOLATION_COLOUR,
        )
    return ["violations"]


def _draw_events(axes: Axes, run: Run, t0: float) -> dict[str, str]:
    """A labelled vertical line per timeline event; returns the colour of each kind drawn."""
    events = sorted(((event["at"] - t0, event) for event in _timeline(run)), key=_first)
    left, right = axes.get_xlim() if axes.has_data() else (0.0, 0.0)
    times = [at for at, _ in events]
    crowded = LABEL_GAP * (max([right, *times]) - min([left, *times]) or 1.0)
    kinds_seen: dict[str, str] = {}
    label_at = -math.inf
    for at, event in events:
        kind = str(event.get("kind", "note"))
        colour = KIND_COLOURS.get(kind, KIND_COLOURS["note"])
        kinds_seen.setdefault(kind, colour)
        # Labels of close events fan out to the right rather than overlap.
        label_at = max(at, label_at + crowded)
        axes.axvline(at, color=colour, linewidth=1, linestyle="--", alpha=0.8, zorder=2)
        axes.text(
            label_at,
            0.99,
            _short(str(event.get("what", kind)), LABEL_CHARS),
            transform=axes.get_xaxis_transform(),
            rotation=90,
            va="top",
            ha="center",
            fontsize=6.5,
            color=colour,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.9, "pad": 0.5},
            zorder=4,
        )
    return kinds_seen


def write_report(runs: Sequence[Run], out_dir: Path) -> Path:
    """Write result.json, run-<n>.png (n counts the runs from 1) and index.html into out_dir;
    return the index.html path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(runs)
    result = {"runs": list(runs), "summary": summary}
    (out_dir / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    images = []
    for number, run in enumerate(runs, start=1):
        image = out_dir / f"run-{number}.png"
        plot_run(run, image)
        images.append(image.name)
    index = out_dir / "index.html"
    index.write_text(_render_html(runs, summary, images), encoding="utf-8")
    return index


def _render_html(runs: Sequence[Run], summary: Mapping[str, Any], images: Sequence[str]) -> str:
    """The self-contained report page; `images` names each run's PNG, beside the page."""
    scenarios = list(dict.fromkeys(str(run.get("scenario", "?")) for run in runs))
    verdict = "PASS" if runs and summary["failed"] == 0 else "FAIL"
    title = f"Failover drill: {', '.join(scenarios) or 'no runs'} — {verdict}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<h1>Failover drill: {_esc(", ".join(scenarios) or "no runs")} {_verdict(verdict)}</h1>',
        f"<p>{summary['runs']} runs: {summary['passed']} passed, {summary['failed']} failed.</p>",
        "<h2>Summary</h2>",
        _table(
            ["figure", "median", "max", "runs measured"],
            (
                [
                    name,
                    _seconds(summary[name]["median"]),
                    _seconds(summary[name]["max"]),
                    str(summary[name]["count"]),
                ]
                for name in _figure_names(summary)
            ),
        ),
    ]
    names = _figure_names(summary)
    for run, image in zip(runs, images, strict=True):
        parts.append(_run_section(run, image, names))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _run_section(run: Run, image: str, figure_names: Sequence[str]) -> str:
    t0 = fault_time(run)
    verdict = "PASS" if run.get("passed") is True else "FAIL"
    heading = (
        f"Run {run.get('run', '?')}: {run.get('scenario', '?')} on {run.get('target', '?')}"
        f" (profile {run.get('profile', '?')})"
    )
    figures = run.get("figures") or {}
    timeline = sorted(_timeline(run), key=lambda event: float(event["at"]))
    invariants = run.get("invariants") or {}
    violations = run.get("violations") or []
    probes = run.get("probes") or []
    parts = [
        "<section>",
        f"<h2>{_esc(heading)} {_verdict(verdict)}</h2>",
        f"<p>Started {_esc(_utc(run.get('started')))}, ended {_esc(_utc(run.get('ended')))};"
        f" the fault at {_esc(_utc(t0))}.</p>",
        "<h3>Figures</h3>",
        _table(["figure", "value"], ([name, _seconds(figures.get(name))] for name in figure_names)),
        "<h3>Timeline</h3>",
        _table(
            ["since fault", "UTC", "kind", "node", "what"],
            (
                [
                    _relative(float(event["at"]) - t0),
                    _utc(event["at"]),
                    str(event.get("kind", "")),
                    str(event.get("node", "")),
                    str(event.get("what", "")),
                ]
                for event in timeline
            ),
        ),
        "<h3>Invariants</h3>",
        _table(
            ["invariant", "status"],
            ([name, str(status)] for name, status in invariants.items()),
            status_column=1,
        ),
        "<h3>Violations</h3>",
    ]
    if violations:
        parts.append(
            _table(
                ["invariant", "since fault", "UTC", "node", "detail"],
                (
                    [
                        str(violation.get("invariant", "")),
                        _since(violation.get("at"), t0),
                        _utc(violation.get("at")),
                        str(violation.get("node", "")),
                        str(violation.get("detail", "")),
                    ]
                    for violation in violations
                ),
            )
        )
    else:
        parts.append("<p>None.</p>")
    if probes:
        parts += [
            "<h3>Probes</h3>",
            _table(
                ["probe", "downtime", "failed samples", "samples"],
                (
                    [
                        str(probe.get("name", "")),
                        _seconds(probe.get("downtime_s")),
                        str(probe.get("failures", "")),
                        str(len(probe.get("samples") or [])),
                    ]
                    for probe in probes
                ),
            ),
        ]
    parts += [
        f'<img src="{_esc(image)}" alt="{_esc("timeline of " + heading)}">',
        "</section>",
    ]
    return "\n".join(parts)


def _table(
    header: Sequence[str], rows: Iterable[Sequence[str]], status_column: int | None = None
) -> str:
    lines = ["<table>", "<tr>" + "".join(f"<th>{_esc(cell)}</th>" for cell in header) + "</tr>"]
    for row in rows:
        cells = []
        for column, cell in enumerate(row):
            css = f' class="{_esc(cell)}"' if column == status_column else ""
            cells.append(f"<td{css}>{_esc(cell)}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    if len(lines) == 2:
        lines.append(f'<tr><td colspan="{len(header)}">none</td></tr>')
    lines.append("</table>")
    return "\n".join(lines)


def _spans(samples: Iterable[Sequence[Any]], t0: float) -> list[tuple[float, float, bool]]:
    """(start, width, ok) spans of equal probe state, relative to t0; the last sample lasts
    as long as the typical interval between samples."""
    points = sorted(
        (sample[0] - t0, bool(sample[1]))
        for sample in samples
        if len(sample) == 2 and _is_number(sample[0])
    )
    if not points:
        return []
    gaps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(points)]
    last_width = statistics.median(gaps) if gaps else 0.5
    ends = [point[0] for point in points[1:]] + [points[-1][0] + last_width]
    spans: list[tuple[float, float, bool]] = []
    for (at, ok), end in zip(points, ends, strict=True):
        if spans and spans[-1][2] == ok:
            start = spans[-1][0]
            spans[-1] = (start, end - start, ok)
        else:
            spans.append((at, end - at, ok))
    return spans


def _first(pair: tuple[float, object]) -> float:
    return pair[0]


def _timeline(run: Run) -> list[Mapping[str, Any]]:
    return [event for event in run.get("timeline") or [] if _is_number(event.get("at"))]


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _relative(seconds: float, unit: str = " s") -> str:
    return f"{seconds:+.3f}{unit}"


def _since(epoch: object, t0: float) -> str:
    return _relative(epoch - t0) if _is_number(epoch) else "—"


def _seconds(value: object) -> str:
    return f"{value:.2f} s" if _is_number(value) else "—"


def _utc(epoch: object) -> str:
    if not _is_number(epoch):
        return "—"
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _verdict(verdict: str) -> str:
    return f'<span class="{verdict.lower()}">{verdict}</span>'


_CSS = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
section { border-top: 2px solid #ddd; margin-top: 2em; }
img { max-width: 100%; border: 1px solid #ddd; }
.pass, .passed { color: #1a7f1a; font-weight: bold; }
.fail, .failed { color: #c00; font-weight: bold; }
.skipped { color: #888; }
"""
