"""The inline report of a profile.

:func:`mimebundle` renders a :class:`~nbdeploy.profiling.ProfileResult` as
``text/plain`` and ``text/html``: the latency percentiles and error table, a latency
histogram, CPU and memory over time, and the recommendation with its rule. The charts
are hand-written inline SVG — no JavaScript, no stylesheet or font from the internet —
so the report shows the same in JupyterLab, in a static HTML export and offline.
Everything interpolated into the HTML is escaped.

Examples
--------
>>> from nbdeploy.profiling.report import ProfileResult, example_dict
>>> bundle = mimebundle(ProfileResult.from_dict(example_dict()))
>>> sorted(bundle)
['text/html', 'text/plain']
>>> "<svg" in bundle["text/html"] and "<script" not in bundle["text/html"]
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nbdeploy.sdk.rendering import select_mimetypes

from .html import BORDER, SURFACE, TEXT, TEXT_MUTED, escape

if TYPE_CHECKING:
    import numpy.typing as npt

    from nbdeploy.profiling import ProfileResult

__all__ = [
    "format_ms",
    "histogram_svg",
    "mimebundle",
    "nice_ticks",
    "render_html",
    "timeseries_svg",
]

_Decorator = Callable[[Callable[[str], Any]], Callable[[str], Any]]
_W, _H = 380, 190
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 12, 24, 34
_FONT = 'font-family="sans-serif" font-size="10"'
_BAR = "#4c78a8"
_LINE = "#e45756"
_MEM = "#54a24b"
_LOAD = "#4c78a8"  # drawn at low opacity: a light band on light, a dark one on dark
_TABLE = 'style="border-collapse:collapse;margin:4px 0;text-align:right"'
_CELL = f'style="border:1px solid {BORDER};padding:2px 8px;text-align:right"'
_HEAD = (
    f'style="border:1px solid {BORDER};padding:2px 8px;text-align:left;'
    f'background:{SURFACE};color:{TEXT}"'
)
# SVG strokes and text follow the theme through CSS (presentation attributes cannot
# hold var()); "currentColor" is the output's text colour.
_AXIS = 'style="stroke:currentColor;stroke-opacity:0.8"'
_GRID = 'style="stroke:currentColor;stroke-opacity:0.15"'


def nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 x 10^k steps) covering ``[lo, hi]``.

    Examples
    --------
    >>> nice_ticks(0, 23)
    [0.0, 10.0, 20.0, 30.0]
    >>> nice_ticks(0, 0)
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(n, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    value = start
    while value < hi + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return [float(t) for t in ticks]


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.2f}".rstrip("0").rstrip(".")


class _Frame:
    """Maps data coordinates into the plot area of one SVG chart."""

    def __init__(self, x0: float, x1: float, y0: float, y1: float) -> None:
        self.x0, self.x1 = x0, (x1 if x1 > x0 else x0 + 1.0)
        self.y0, self.y1 = y0, (y1 if y1 > y0 else y0 + 1.0)

    def x(self, value: float) -> float:
        return _LEFT + (value - self.x0) / (self.x1 - self.x0) * (_W - _LEFT - _RIGHT)

    def y(self, value: float) -> float:
        return _H - _BOTTOM - (value - self.y0) / (self.y1 - self.y0) * (_H - _TOP - _BOTTOM)


def _axes(
    frame: _Frame, xticks: Sequence[float], yticks: Sequence[float], title: str, xlabel: str
) -> list[str]:
    base = _H - _BOTTOM
    parts = [
        f'<text x="{_W / 2:.1f}" y="14" text-anchor="middle" {_FONT} font-weight="bold">'
        f"{escape(title)}</text>",
        f'<line x1="{_LEFT}" y1="{base}" x2="{_W - _RIGHT}" y2="{base}" {_AXIS}/>',
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{base}" {_AXIS}/>',
        f'<text x="{(_LEFT + _W - _RIGHT) / 2:.1f}" y="{_H - 4}" text-anchor="middle" '
        f"{_FONT}>{escape(xlabel)}</text>",
    ]
    for t in xticks:
        x = frame.x(t)
        parts.append(f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" {_AXIS}/>')
        parts.append(
            f'<text x="{x:.1f}" y="{base + 14}" text-anchor="middle" {_FONT}>'
            f"{escape(_fmt(t))}</text>"
        )
    for t in yticks:
        y = frame.y(t)
        parts.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_W - _RIGHT}" y2="{y:.1f}" {_GRID}/>')
        parts.append(
            f'<text x="{_LEFT - 4}" y="{y + 3:.1f}" text-anchor="end" {_FONT}>'
            f"{escape(_fmt(t))}</text>"
        )
    return parts


def _svg(parts: Iterable[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(label)}" '
        f'fill="currentColor" style="margin:2px;color:{TEXT}">' + "".join(parts) + "</svg>"
    )


def _empty(title: str, why: str) -> str:
    return _svg(
        [
            f'<text x="{_W / 2:.1f}" y="14" text-anchor="middle" {_FONT} '
            f'font-weight="bold">{escape(title)}</text>',
            f'<text x="{_W / 2:.1f}" y="{_H / 2:.1f}" text-anchor="middle" {_FONT} '
            f'style="fill:{TEXT_MUTED}">{escape(why)}</text>',
        ],
        title,
    )


def histogram_svg(
    latencies_ms: npt.NDArray[np.float64] | Sequence[float],
    *,
    bins: int = 30,
    marks: Sequence[tuple[str, float]] = (),
    title: str = "Latency of successful requests",
) -> str:
    """An SVG histogram of latencies (ms), with labelled vertical ``marks`` (p50, p99 ...).

    The range ends at the 99.5th percentile so one slow outlier does not squeeze the
    rest into a single bar; slower requests are counted in the last bar, marked ``+``.

    Examples
    --------
    >>> svg = histogram_svg([1.0, 2.0, 2.5, 3.0], marks=[("p50", 2.25)])
    >>> svg.startswith("<svg") and "p50" in svg
    True
    """
    lat = np.asarray(latencies_ms, dtype=float)
    lat = lat[np.isfinite(lat)]
    if not len(lat):
        return _empty(title, "no successful request")
    lo = float(lat.min())
    hi = float(np.percentile(lat, 99.5))
    if hi <= lo:
        hi = lo + max(lo * 0.1, 0.01)
    overflow = bool((lat > hi).any())
    counts, edges = np.histogram(np.clip(lat, lo, hi), bins=bins, range=(lo, hi))
    xticks = [t for t in nice_ticks(lo, hi) if lo <= t <= hi]
    yticks = nice_ticks(0, float(counts.max()), 3)
    frame = _Frame(lo, hi, 0, yticks[-1])
    slower = int((lat > hi).sum())
    xlabel = f"latency (ms); {slower} slower in the last bar" if overflow else "latency (ms)"
    parts = _axes(frame, xticks, yticks, title, xlabel)
    for i, count in enumerate(counts):
        if not count:
            continue
        x0, x1 = frame.x(float(edges[i])), frame.x(float(edges[i + 1]))
        y = frame.y(float(count))
        parts.append(
            f'<rect x="{x0:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 1, 1):.1f}" '
            f'height="{_H - _BOTTOM - y:.1f}" fill="{_BAR}">'
            f"<title>{escape(_fmt(float(edges[i])))}–{escape(_fmt(float(edges[i + 1])))} ms: "
            f"{int(count)} requests</title></rect>"
        )
    for i, (label, value) in enumerate(marks):
        if not (math.isfinite(value) and lo <= value <= hi):
            continue
        x = frame.x(value)
        # Labels right of the line, or left of it near the right edge.
        right = x < _W - _RIGHT - 70
        anchor, dx = ("start", 2) if right else ("end", -2)
        parts.append(
            f'<line x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{_H - _BOTTOM}" '
            f'stroke="{_LINE}" stroke-dasharray="3,2"/>'
            f'<text x="{x + dx:.1f}" y="{_TOP + 10 + 11 * i}" text-anchor="{anchor}" '
            f'{_FONT} fill="{_LINE}">{escape(label)}</text>'
        )
    return _svg(parts, title)


def timeseries_svg(
    t: npt.NDArray[np.float64] | Sequence[float],
    values: npt.NDArray[np.float64] | Sequence[float],
    *,
    title: str,
    unit: str,
    load: tuple[float, float] | None = None,
    reference: tuple[str, float] | None = None,
    colour: str = _LINE,
) -> str:
    """An SVG line chart of ``values`` over ``t`` (seconds), shading the ``load`` window
    and drawing a dashed horizontal ``reference`` line (e.g. the recommendation).

    Examples
    --------
    >>> svg = timeseries_svg([0, 1, 2], [0.5, 1.0, 0.9], title="CPU", unit="cores",
    ...                      load=(0, 2), reference=("requested", 1.1))
    >>> "<polyline" in svg and "requested" in svg
    True
    """
    ts = np.asarray(t, dtype=float)
    vs = np.asarray(values, dtype=float)
    if len(ts) < 2:
        return _empty(title, "no process samples (no serving process known)")
    top = float(vs.max())
    if reference is not None and math.isfinite(reference[1]):
        top = max(top, reference[1])
    yticks = nice_ticks(0, top * 1.05 if top > 0 else 1.0, 4)
    xticks = [x for x in nice_ticks(float(ts.min()), float(ts.max())) if ts.min() <= x <= ts.max()]
    frame = _Frame(float(ts.min()), float(ts.max()), 0, yticks[-1])
    parts = []
    if load is not None:
        x0, x1 = frame.x(max(load[0], frame.x0)), frame.x(min(load[1], frame.x1))
        parts.append(
            f'<rect x="{x0:.1f}" y="{_TOP}" width="{max(x1 - x0, 0):.1f}" '
            f'height="{_H - _TOP - _BOTTOM}" fill="{_LOAD}" fill-opacity="0.12">'
            "<title>load</title></rect>"
        )
    parts += _axes(frame, xticks, yticks, f"{title} ({unit})", "time since the load started (s)")
    points = " ".join(
        f"{frame.x(float(a)):.1f},{frame.y(float(b)):.1f}" for a, b in zip(ts, vs, strict=True)
    )
    parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
    if reference is not None and math.isfinite(reference[1]):
        y = frame.y(reference[1])
        parts.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_W - _RIGHT}" y2="{y:.1f}" '
            f'{_AXIS} stroke-dasharray="4,3"/>'
            f'<text x="{_W - _RIGHT - 2}" y="{y - 3:.1f}" text-anchor="end" {_FONT}>'
            f"{escape(reference[0])} {escape(_fmt(reference[1]))}</text>"
        )
    return _svg(parts, title)


def format_ms(value: float) -> str:
    """Milliseconds with two decimals; ``–`` for NaN."""
    return "–" if math.isnan(value) else f"{value:.2f}"


def _header_html(result: ProfileResult) -> str:
    who = result.service or result.scoring_uri
    state_colour = "#2e7d32" if result.state == "Succeeded" else "#c62828"
    return (
        f"<div><b>Profile {escape(result.name)}</b> of <code>{escape(who)}</code> "
        f'<span style="background:{state_colour};color:#ffffff;border-radius:8px;'
        f'padding:1px 8px">{escape(result.state)}</span></div>'
        f"<div>{result.total} requests in {result.duration_s:.2f} s at concurrency "
        f"{result.concurrency}: <b>{result.throughput_rps:.1f} requests/s</b>, success rate "
        f"<b>{result.success_rate:.1%}</b></div>"
    )


def _tables_html(result: ProfileResult) -> str:
    """The latency percentiles and the requests by status."""
    lat = result.latency_summary_ms
    keys = list(lat)
    percentiles = (
        f"<table {_TABLE}><thead><tr><th {_HEAD}>latency (ms)</th>"
        + "".join(f"<th {_HEAD}>{escape(k)}</th>" for k in keys)
        + f"</tr></thead><tbody><tr><td {_HEAD}>successful requests</td>"
        + "".join(f"<td {_CELL}>{escape(format_ms(lat[k]))}</td>" for k in keys)
        + "</tr></tbody></table>"
    )
    status_table = (
        f"<table {_TABLE}><thead><tr><th {_HEAD}>status</th><th {_HEAD}>requests</th>"
        "</tr></thead><tbody>"
        + "".join(
            f"<tr><td {_HEAD}>{escape(k)}</td><td {_CELL}>{v}</td></tr>"
            for k, v in result.status_counts.items()
        )
        + "</tbody></table>"
    )
    return f"<div>{percentiles}{status_table}</div>"


def _charts_html(result: ProfileResult) -> str:
    """The latency histogram, CPU and memory over time (with the recommendation)."""
    lat = result.latency_summary_ms
    rec = result.recommendation
    p50, p99 = lat["p50"], lat["p99"]
    hist = histogram_svg(
        result.success_latencies_ms,
        marks=[(f"p50 {format_ms(p50)}", p50), (f"p99 {format_ms(p99)}", p99)],
    )
    load = (0.0, result.duration_s)
    cpu = timeseries_svg(
        # The first sample starts the first interval: it has no CPU figure of its own.
        result.sample_t_s[1:],
        result.sample_cpu_cores[1:],
        title="CPU",
        unit="cores",
        load=load,
        reference=None if rec.cpu is None else ("requestedCpu", rec.cpu),
    )
    memory = timeseries_svg(
        result.sample_t_s,
        result.sample_rss_bytes / 2**30,
        title="Resident memory",
        unit="GB",
        load=load,
        reference=None if rec.memory_gb is None else ("requestedMemoryInGb", rec.memory_gb),
        colour=_MEM,
    )
    return '<div style="display:flex;flex-wrap:wrap;gap:4px">' + hist + cpu + memory + "</div>"


def _recommendation_html(result: ProfileResult) -> str:
    """The recommendation with its rule, and the memory figures behind it."""
    rec = result.recommendation
    peak = result.peak_rss_bytes
    memory_note = (
        f"<div>memory: peak {_mib(peak)} during the profile; high-water mark since the "
        f"process started {_mib(result.hwm_bytes)}</div>"
        if peak is not None
        else "<div>no serving process was known, so CPU and memory were not measured</div>"
    )
    recommendation = (
        f'<div style="border-left:4px solid #4c78a8;background:{SURFACE};color:{TEXT};'
        'padding:4px 8px;margin:6px 0"><b>Recommendation</b>: '
        f"<code>requestedCpu = {escape(_none(rec.cpu))}</code>, "
        f"<code>requestedMemoryInGb = {escape(_none(rec.memory_gb))}</code>"
        f'<div style="font-size:90%;color:{TEXT_MUTED}">{escape(rec.explanation)}</div></div>'
    )
    return recommendation + memory_note


def render_html(result: ProfileResult) -> str:
    """The HTML report of ``result``: summary, tables, three charts, recommendation."""
    return (
        '<div class="nbdeploy-profile" style="font-family:sans-serif">'
        + _header_html(result)
        + '<div style="display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start">'
        + _tables_html(result)
        + "</div>"
        + _recommendation_html(result)
        + _charts_html(result)
        + "</div>"
    )


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.0f} MiB"


def _none(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}"


def mimebundle(
    result: ProfileResult,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
) -> dict[str, str]:
    """``text/plain`` (the summary) and ``text/html`` (the report) of ``result``."""
    bundle = {"text/plain": result.summary(), "text/html": render_html(result)}
    return select_mimetypes(bundle, include, exclude)
