"""Server-side SVG charts for every page of the app: no JavaScript, no CDN.

Each function takes plain numbers and returns markup marked safe; every text that reaches the
markup is escaped. Charts scale to their container (``viewBox``). Two styles share the tick
and number formatting below:

* titled figures (``line_chart``, ``stacked_tiers``, ``histogram``, ``tier_timeline``): a
  ``<figure>`` with caption and legend, used by the studio's template tags
  (``webapp.studio.templatetags.studio_charts``); long series are bucket-averaged down to
  ``MAX_POINTS`` so a 10,000-step run costs what a 300-step run costs;
* bare, labelled plots (``labelled_line_chart``, ``log_scatter``, ``grouped_bars``): an
  ``<svg>`` with axis labels and a ``<title>`` per point for hover text, inside a figure the
  evaluation pages draw themselves.

Missing values (None, NaN, infinities) are gaps, never zeros and never an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

from django.utils.safestring import SafeString, mark_safe

MAX_POINTS = 300
WIDTH, HEIGHT = 560, 214
LEFT, RIGHT, TOP, BOTTOM = 46, 12, 12, 40
# The labelled plots are taller and leave room for axis labels.
XY_HEIGHT = 300
XY_LEFT, XY_RIGHT, XY_TOP, XY_BOTTOM = 56, 28, 14, 40
# The titled figures' lines; studio.css mirrors these as .legend .key i.line-N.
PALETTE = ("#2f5bd3", "#1c8c4e", "#b7791f", "#c0392b", "#7b3fb5", "#138a9c", "#8a6d3b", "#555")
# The labelled plots' series; studio.css mirrors these as .legend .swatch-N.
SERIES_PALETTE = ("#2f5bd3", "#d9822b", "#1c8c4e", "#c0392b", "#7d4cc2", "#0f8b9c", "#8c6d1f",
                  "#d14d8b", "#4f5d75", "#6a994e", "#bc4749", "#386641")  # fmt: skip
# Tiers: a distinct hue each, every one at least 3:1 against the white lines that separate the
# stacked bands (WCAG's contrast for graphics), tier 0 at the bottom.
TIER_PALETTE = ("#6c8ef5", "#138a72", "#c26a12", "#8e44c9", "#c0306a", "#1f5fa8", "#2b2f3a")
# Exponential moving average weights offered for noisy step series (TensorBoard's slider).
SMOOTHING_CHOICES = (0.0, 0.6, 0.8, 0.9, 0.95)

Point = tuple[float, float]


@dataclass(frozen=True)
class _Frame:
    """Maps data coordinates to pixels inside the plot area."""

    x0: float
    x1: float
    y0: float
    y1: float

    def x(self, value: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return LEFT + (value - self.x0) / span * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return HEIGHT - BOTTOM - (value - self.y0) / span * (HEIGHT - TOP - BOTTOM)


def nice_ticks(low: float, high: float, count: int = 5, *, integer: bool = False) -> list[float]:
    """Round tick values covering [low, high] (1, 2 or 5 times a power of ten apart);
    ``integer`` ticks are whole numbers at least 1 apart (steps are never 1.2)."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0]
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(count - 1, 1)
    if integer:
        raw = max(raw, 1.0)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks = [round(start, 10)]
    # Go on until a tick reaches ``high``, so the top of the data is never clipped.
    while ticks[-1] < high - step * 1e-9:
        ticks.append(round(start + len(ticks) * step, 10))
    return ticks


def downsample(points: Sequence[Point], limit: int = MAX_POINTS) -> list[Point]:
    """Average consecutive points into at most ``limit`` buckets (x and y both averaged)."""
    if len(points) <= limit:
        return list(points)
    size = math.ceil(len(points) / limit)
    out = []
    for start in range(0, len(points), size):
        bucket = points[start : start + size]
        out.append(
            (sum(p[0] for p in bucket) / len(bucket), sum(p[1] for p in bucket) / len(bucket))
        )
    return out


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    # Three significant digits, so small values (a judge latency of 0.0004 s) keep distinct
    # tick labels instead of all reading "0".
    return f"{value:.3g}"


def ema(values: Sequence[float], weight: float) -> list[float]:
    """Debiased exponential moving average (TensorBoard's smoothing): the first points are not
    pulled towards zero."""
    out, last, norm = [], 0.0, 0.0
    for value in values:
        last = weight * last + (1 - weight) * value
        norm = weight * norm + (1 - weight)
        out.append(last / norm)
    return out


def _axes(
    frame: _Frame, y_ticks: Sequence[float], x_ticks: Sequence[float], x_label: str = ""
) -> list[str]:
    parts = []
    for tick in y_ticks:
        y = frame.y(tick)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_fmt(tick)}</text>"
        )
    base = HEIGHT - BOTTOM
    for tick in x_ticks:
        x = frame.x(tick)
        if x < LEFT - 0.5 or x > WIDTH - RIGHT + 0.5:
            continue  # a round tick below the first step (0 when steps start at 1): off the plot
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{base + 16}" text-anchor="middle">'
            f"{_fmt(tick)}</text>"
        )
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}"/>')
    if x_label:
        parts.append(
            f'<text class="tick axis-label" x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 4}" '
            f'text-anchor="middle">{escape(x_label)}</text>'
        )
    return parts


def _hover_bands(
    frame: _Frame, rows: Mapping[float, list[tuple[str, float]]], x_label: str
) -> list[str]:
    """One transparent column per x, as tall as the plot, whose title lists every series'
    value there: hovering anywhere above a step shows its numbers."""
    xs = sorted(rows)
    parts = []
    top, bottom = TOP, HEIGHT - BOTTOM
    for index, x in enumerate(xs):
        left = frame.x(xs[index - 1]) if index else frame.x(x) - 4
        right = frame.x(xs[index + 1]) if index + 1 < len(xs) else frame.x(x) + 4
        x0 = (left + frame.x(x)) / 2 if index else left
        x1 = (right + frame.x(x)) / 2 if index + 1 < len(xs) else right
        values = " · ".join(f"{label} {_fmt(value)}" for label, value in rows[x])
        parts.append(
            f'<rect class="hover-band" x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 1):.1f}" '
            f'height="{bottom - top}"><title>{escape(f"{x_label} {_fmt(x)}: {values}")}'
            "</title></rect>"
        )
    return parts


def _swatch(color: str) -> str:
    """A legend key's colour without a style attribute (the CSP allows no inline style):
    a class of studio.css for the palette's colours, else a small SVG square."""
    if color in PALETTE:
        return f'<i class="line-{PALETTE.index(color)}"></i>'
    return (
        '<svg class="swatch" viewBox="0 0 10 10" aria-hidden="true">'
        f'<rect width="10" height="10" rx="2" fill="{escape(color)}"/></svg>'
    )


def _svg(title: str, body: Sequence[str], legend: Sequence[tuple[str, str]] = ()) -> SafeString:
    label = escape(title)
    items = "".join(
        f'<span class="key">{_swatch(color)}{escape(name)}</span>' for name, color in legend
    )
    legend_html = f'<div class="legend">{items}</div>' if legend else ""
    # Every text above went through escape().
    return mark_safe(
        f'<figure class="chart"><figcaption>{label}</figcaption>'
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{label}" '
        f'preserveAspectRatio="xMidYMid meet"><title>{label}</title>{"".join(body)}</svg>'
        f"{legend_html}</figure>"
    )


def _empty(title: str) -> SafeString:
    return mark_safe(
        f'<figure class="chart empty"><figcaption>{escape(title)}</figcaption>'
        '<p class="muted">No data yet.</p></figure>'
    )


def line_chart(
    series: Sequence[dict],
    title: str = "",
    y_min: float | None = None,
    y_max: float | None = None,
    smoothing: float = 0.0,
    x_label: str = "step",
    x_range: tuple[float | None, float | None] = (None, None),
) -> SafeString:
    """Lines over steps. ``series``: dicts with ``label`` and ``points`` [(step, value), ...];
    points whose value is None (or not finite) are gaps, not zeros. ``smoothing`` (0 to <1)
    draws the raw line faintly under its moving average; ``x_range`` keeps the points between
    two steps (a zoom). Hovering a step shows every series' value there."""
    first, last = x_range
    cleaned = []
    for index, line in enumerate(series):
        points = [
            (float(x), float(y))
            for x, y in line["points"]
            if y is not None
            and math.isfinite(float(y))
            and (first is None or x >= first)
            and (last is None or x <= last)
        ]
        if points:
            color = line.get("color") or PALETTE[index % len(PALETTE)]
            cleaned.append((line["label"], downsample(points), color))
    if not cleaned:
        return _empty(title)
    xs = [p[0] for _, pts, _ in cleaned for p in pts]
    ys = [p[1] for _, pts, _ in cleaned for p in pts]
    low = min(ys) if y_min is None else min(y_min, min(ys))
    high = max(ys) if y_max is None else max(y_max, max(ys))
    y_ticks = nice_ticks(low, high)
    frame = _Frame(min(xs), max(xs), y_ticks[0], y_ticks[-1])
    body = _axes(frame, y_ticks, nice_ticks(min(xs), max(xs), 6, integer=True), x_label)
    smoothing = min(max(float(smoothing or 0.0), 0.0), 0.99)
    hover: dict[float, list[tuple[str, float]]] = {}
    for label, points, color in cleaned:
        for x, y in points:
            hover.setdefault(x, []).append((label, y))
        if smoothing and len(points) > 1:
            raw = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in points)
            body.append(
                f'<polyline class="raw" fill="none" stroke="{color}" stroke-width="1" '
                f'stroke-opacity="0.3" points="{raw}"/>'
            )
            smoothed = ema([y for _, y in points], smoothing)
            points = [(x, y) for (x, _), y in zip(points, smoothed, strict=True)]
            for x, y in points:
                hover[x].append((f"{label} (smoothed)", y))
        if len(points) == 1:
            x, y = points[0]
            body.append(
                f'<circle cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="3" fill="{color}">'
                f"<title>{escape(label)}: {_fmt(y)}</title></circle>"
            )
            continue
        path = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in points)
        body.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{path}">'
            f"<title>{escape(label)}</title></polyline>"
        )
    body.extend(_hover_bands(frame, hover, x_label or "x"))
    return _svg(title, body, [(label, color) for label, _, color in cleaned])


def stacked_tiers(
    steps: Sequence[int],
    histograms: Sequence[Sequence[int]],
    title: str = "",
    x_range: tuple[float | None, float | None] = (None, None),
) -> SafeString:
    """Stacked areas: how many samples sit at each tier after each step (tier 0 at the bottom);
    ``x_range`` keeps the steps between two values (a zoom)."""
    first, last = x_range
    if first is not None or last is not None:
        kept = [
            (step, histogram)
            for step, histogram in zip(steps, histograms, strict=True)
            if (first is None or step >= first) and (last is None or step <= last)
        ]
        steps, histograms = [k[0] for k in kept], [k[1] for k in kept]
    if not steps:
        return _empty(title)
    num_tiers = max((len(h) for h in histograms), default=0)
    if num_tiers == 0:
        return _empty(title)
    rows = [list(h) + [0] * (num_tiers - len(h)) for h in histograms]
    if len(rows) > MAX_POINTS:
        size = math.ceil(len(rows) / MAX_POINTS)
        steps = [steps[i] for i in range(0, len(steps), size)]
        rows = [rows[i] for i in range(0, len(rows), size)]
    totals = [sum(row) for row in rows]
    y_ticks = nice_ticks(0, max(totals) or 1, integer=True)
    frame = _Frame(min(steps), max(steps), 0, y_ticks[-1])
    body = _axes(frame, y_ticks, nice_ticks(min(steps), max(steps), 6, integer=True), "step")
    below = [0.0] * len(rows)
    legend = []
    for tier in range(num_tiers):
        above = [below[i] + rows[i][tier] for i in range(len(rows))]
        color = TIER_PALETTE[min(tier, len(TIER_PALETTE) - 1)]
        if len(steps) == 1:
            x0, x1 = LEFT, WIDTH - RIGHT
            body.append(
                f'<rect x="{x0}" width="{x1 - x0}" y="{frame.y(above[0]):.1f}" '
                f'height="{frame.y(below[0]) - frame.y(above[0]):.1f}" fill="{color}" '
                'stroke="#fff" stroke-width="1.5"/>'
            )
        else:
            top = [f"{frame.x(s):.1f},{frame.y(v):.1f}" for s, v in zip(steps, above, strict=True)]
            bottom = [
                f"{frame.x(s):.1f},{frame.y(v):.1f}"
                for s, v in reversed(list(zip(steps, below, strict=True)))
            ]
            body.append(
                f'<polygon fill="{color}" stroke="#fff" stroke-width="1.5" '
                f'points="{" ".join(top + bottom)}"><title>tier {tier}</title></polygon>'
            )
        legend.append((f"tier {tier}", color))
        below = above
    hover = {
        float(step): [(f"tier {tier}", float(count)) for tier, count in enumerate(row)]
        for step, row in zip(steps, rows, strict=True)
    }
    body.extend(_hover_bands(frame, hover, "step"))
    return _svg(title, body, legend)


def histogram(
    values: Sequence[float | None],
    title: str = "",
    bins: int = 20,
    highlighted: Sequence[float | None] = (),
    highlight_label: str = "chosen",
    x_label: str = "",
) -> SafeString:
    """Bars counting ``values`` per bin; ``highlighted`` (a subset, e.g. the chosen
    instructions) is drawn over them in a second color. None values are left out."""
    data = [float(v) for v in values if v is not None]
    marked = [float(v) for v in highlighted if v is not None]
    if not data:
        return _empty(title)
    low, high = min(data), max(data)
    if high == low:
        high = low + 1.0
    width = (high - low) / bins

    def counts(sample: Sequence[float]) -> list[int]:
        out = [0] * bins
        for value in sample:
            out[min(int((value - low) / width), bins - 1)] += 1
        return out

    all_counts, marked_counts = counts(data), counts(marked)
    y_ticks = nice_ticks(0, max(all_counts), integer=True)
    frame = _Frame(low, high, 0, y_ticks[-1])
    body = _axes(frame, y_ticks, nice_ticks(low, high, 6), x_label)
    for index, count in enumerate(all_counts):
        x0, x1 = frame.x(low + index * width), frame.x(low + (index + 1) * width)
        edge = f"{_fmt(low + index * width)}…{_fmt(low + (index + 1) * width)}"
        for value, css in ((count, "bar"), (marked_counts[index], "bar marked")):
            if value:
                y = frame.y(value)
                body.append(
                    f'<rect class="{css}" x="{x0 + 0.5:.1f}" width="{max(x1 - x0 - 1, 1):.1f}" '
                    f'y="{y:.1f}" height="{frame.y(0) - y:.1f}">'
                    f"<title>{edge}: {value}</title></rect>"
                )
    legend = [("all", "#98b2ee")]
    if marked:
        legend.append((highlight_label, "#2446a8"))
    return _svg(title, body, legend)


def tier_timeline(
    points: Sequence[Point], num_tiers: int, last_step: int, title: str = ""
) -> SafeString:
    """A step line of one sample's tier over the run: ``points`` are (step, tier) at each change,
    starting with the initial tier; the line runs on to ``last_step``."""
    if not points:
        return _empty(title)
    end = max(last_step, int(points[-1][0]), 1)
    frame = _Frame(0, end, -0.5, max(num_tiers - 0.5, 0.5))
    body = _axes(frame, [], nice_ticks(0, end, 6, integer=True), "step")
    for tier in range(num_tiers):
        y = frame.y(tier)
        body.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"tier {tier}</text>"
        )
    coords = []
    for index, (step, tier) in enumerate(points):
        if index:
            coords.append(f"{frame.x(step):.1f},{frame.y(points[index - 1][1]):.1f}")
        coords.append(f"{frame.x(step):.1f},{frame.y(tier):.1f}")
    coords.append(f"{frame.x(end):.1f},{frame.y(points[-1][1]):.1f}")
    body.append(
        f'<polyline fill="none" stroke="{PALETTE[0]}" stroke-width="2.2" '
        f'points="{" ".join(coords)}"/>'
    )
    for step, tier in points[1:]:
        body.append(
            f'<circle cx="{frame.x(step):.1f}" cy="{frame.y(tier):.1f}" r="3.5" '
            f'fill="{PALETTE[0]}">'
            f"<title>step {_fmt(step)}: tier {_fmt(tier)}</title></circle>"
        )
    return _svg(title, body)


# -- labelled plots (evaluation pages) -----------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """A named set of (x, y) points; ``labels`` (optional) name each point for hover text."""

    name: str
    points: Sequence[tuple[float, float]]
    labels: Sequence[str] = ()


def series_colour(index: int) -> str:
    return SERIES_PALETTE[index % len(SERIES_PALETTE)]


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _finite_series(series: Sequence[Series]) -> list[Series]:
    """Each series without its points that have no finite x or y (a gap is not a zero),
    keeping every kept point's label."""
    out = []
    for s in series:
        labels = s.labels or [""] * len(s.points)
        kept = [(p, label) for p, label in zip(s.points, labels, strict=True)
                if _finite(p[0]) and _finite(p[1])]  # fmt: skip
        out.append(Series(s.name, [p for p, _ in kept], [label for _, label in kept]))
    return out


def _bare_svg(parts: list[str], label: str) -> SafeString:
    body = "".join(parts)
    return mark_safe(  # every text inside was escaped
        f'<svg viewBox="0 0 {WIDTH} {XY_HEIGHT}" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg">{body}</svg>'
    )


def _bare_empty(label: str, message: str) -> SafeString:
    return _bare_svg(
        [f'<text class="tick" x="{WIDTH / 2}" y="{XY_HEIGHT / 2}" text-anchor="middle">'
         f"{escape(message)}</text>"],
        label,
    )  # fmt: skip


def labelled_line_chart(
    series: Sequence[Series], *, x_label: str, y_label: str, y_range: tuple[float, float] | None
) -> SafeString:
    """Lines with markers, one per series, on linear axes. Points without a finite value are
    left out (a gap in the data is not a zero)."""
    kept = _finite_series(series)
    points = [p for s in kept for p in s.points]
    if not points:
        return _bare_empty(y_label, "no data yet")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    low, high = y_range or (min(ys), max(ys))
    # The frame spans the ticks, which cover the data: the top point is never clipped.
    x_ticks = nice_ticks(min(xs), max(xs), 6)
    y_ticks = nice_ticks(min(low, min(ys)), max(high, max(ys)), 6)
    x0, x1 = x_ticks[0], x_ticks[-1]
    y0, y1 = y_ticks[0], y_ticks[-1]
    plot_w, plot_h = WIDTH - XY_LEFT - XY_RIGHT, XY_HEIGHT - XY_TOP - XY_BOTTOM

    def sx(x: float) -> float:
        return XY_LEFT + (x - x0) / ((x1 - x0) or 1.0) * plot_w

    def sy(y: float) -> float:
        return XY_TOP + plot_h - (y - y0) / ((y1 - y0) or 1.0) * plot_h

    parts = _labelled_axes(x_ticks, y_ticks, sx, sy, x_label, y_label, _fmt)
    for index, s in enumerate(kept):
        if not s.points:
            continue
        ordered = sorted(zip(s.points, s.labels, strict=True))
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for (x, y), _l in ordered)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{series_colour(index)}" '
            'stroke-width="2"/>'
        )
        for (x, y), label in ordered:
            hover = escape(f"{s.name}: {label + ' ' if label else ''}({_fmt(x)}, {_fmt(y)})")
            parts.append(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{series_colour(index)}">'
                f"<title>{hover}</title></circle>"
            )
    return _bare_svg(parts, y_label)


def log_scatter(
    series: Sequence[Series], *, x_label: str, y_label: str, diagonal: bool = True
) -> SafeString:
    """Points on log-log axes (values <= 0 are drawn at the bottom edge, as 1), with the
    y = x diagonal: on it, the response has exactly the required length."""
    series = _finite_series(series)
    points = [p for s in series for p in s.points]
    if not points:
        return _bare_empty(y_label, "no item with a required length")
    values = [max(v, 1.0) for p in points for v in p]
    low = 10 ** math.floor(math.log10(min(values)))
    high = 10 ** math.ceil(math.log10(max(values)))
    if high <= low:
        high = low * 10
    plot_w, plot_h = WIDTH - XY_LEFT - XY_RIGHT, XY_HEIGHT - XY_TOP - XY_BOTTOM
    span = math.log10(high) - math.log10(low)

    def sx(x: float) -> float:
        return XY_LEFT + (math.log10(max(x, 1.0)) - math.log10(low)) / span * plot_w

    def sy(y: float) -> float:
        return XY_TOP + plot_h - (math.log10(max(y, 1.0)) - math.log10(low)) / span * plot_h

    decades = [10.0**e for e in range(round(math.log10(low)), round(math.log10(high)) + 1)]
    parts = _labelled_axes(decades, decades, sx, sy, x_label, y_label, _fmt)
    if diagonal:
        parts.append(
            f'<line x1="{sx(low):.1f}" y1="{sy(low):.1f}" x2="{sx(high):.1f}" y2="{sy(high):.1f}" '
            'stroke="#9aa3b2" stroke-dasharray="4 3"><title>produced = required</title></line>'
        )
    for index, s in enumerate(series):
        labels = s.labels or [""] * len(s.points)
        for (x, y), label in zip(s.points, labels, strict=True):
            hover = escape(f"{s.name} {label}: required {_fmt(x)}, produced {_fmt(y)}")
            parts.append(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{series_colour(index)}" '
                f'fill-opacity="0.75"><title>{hover}</title></circle>'
            )
    return _bare_svg(parts, y_label)


def grouped_bars(
    groups: Sequence[str],
    series: Mapping[str, Mapping[str, float]],
    *,
    y_label: str,
    y_max: float = 100.0,
) -> SafeString:
    """One group of bars per category (e.g. domain), one bar per series (e.g. run)."""
    names = list(series)
    if not groups or not names:
        return _bare_empty(y_label, "no data yet")
    plot_w, plot_h = WIDTH - XY_LEFT - XY_RIGHT, XY_HEIGHT - XY_TOP - XY_BOTTOM - 30
    group_w = plot_w / len(groups)
    bar_w = max(2.0, group_w * 0.8 / len(names))

    def sy(y: float) -> float:
        return XY_TOP + plot_h - y / y_max * plot_h

    parts: list[str] = []
    for tick in nice_ticks(0, y_max, 6):
        parts.append(
            f'<line class="grid" x1="{XY_LEFT}" x2="{WIDTH - XY_RIGHT}" y1="{sy(tick):.1f}" '
            f'y2="{sy(tick):.1f}"/><text class="tick" x="{XY_LEFT - 6}" y="{sy(tick) + 3:.1f}" '
            f'text-anchor="end">{_fmt(tick)}</text>'
        )
    for g_index, group in enumerate(groups):
        base = XY_LEFT + g_index * group_w + group_w * 0.1
        for s_index, name in enumerate(names):
            value = series[name].get(group)
            if value is None or not math.isfinite(value):
                continue
            x, y = base + s_index * bar_w, sy(max(0.0, min(value, y_max)))
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 1:.1f}" '
                f'height="{XY_TOP + plot_h - y:.1f}" fill="{series_colour(s_index)}">'
                f"<title>{escape(f'{name} · {group}: {value:.1f}')}</title></rect>"
            )
        short = group if len(group) <= 16 else group[:15] + "…"
        cx = XY_LEFT + (g_index + 0.5) * group_w
        parts.append(
            f'<text class="tick" x="{cx:.1f}" y="{XY_TOP + plot_h + 12}" text-anchor="end" '
            f'transform="rotate(-30 {cx:.1f} {XY_TOP + plot_h + 12})">{escape(short)}'
            f"<title>{escape(group)}</title></text>"
        )
    parts.append(
        f'<line class="axis" x1="{XY_LEFT}" x2="{WIDTH - XY_RIGHT}" y1="{XY_TOP + plot_h}" '
        f'y2="{XY_TOP + plot_h}"/>'
        f'<text class="tick" x="12" y="{XY_TOP + plot_h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {XY_TOP + plot_h / 2})">{escape(y_label)}</text>'
    )
    return _bare_svg(parts, y_label)


def _labelled_axes(
    x_ticks: Sequence[float],
    y_ticks: Sequence[float],
    to_x: Callable[[float], float],
    to_y: Callable[[float], float],
    x_label: str,
    y_label: str,
    show: Callable[[float], str],
) -> list[str]:
    parts = []
    bottom, top = XY_HEIGHT - XY_BOTTOM, XY_TOP
    for tick in y_ticks:
        y = to_y(tick)
        parts.append(
            f'<line class="grid" x1="{XY_LEFT}" x2="{WIDTH - XY_RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{XY_LEFT - 6}" y="{y + 3:.1f}" text-anchor="end">'
            f"{show(tick)}</text>"
        )
    for tick in x_ticks:
        x = to_x(tick)
        parts.append(
            f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}"/>'
            f'<text class="tick" x="{x:.1f}" y="{bottom + 14}" text-anchor="middle">'
            f"{show(tick)}</text>"
        )
    parts.append(
        f'<line class="axis" x1="{XY_LEFT}" x2="{WIDTH - XY_RIGHT}" y1="{bottom}" y2="{bottom}"/>'
        f'<line class="axis" x1="{XY_LEFT}" x2="{XY_LEFT}" y1="{top}" y2="{bottom}"/>'
        f'<text class="tick" x="{(XY_LEFT + WIDTH - XY_RIGHT) / 2}" y="{XY_HEIGHT - 6}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
        f'<text class="tick" x="12" y="{(top + bottom) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {(top + bottom) / 2})">{escape(y_label)}</text>'
    )
    return parts
