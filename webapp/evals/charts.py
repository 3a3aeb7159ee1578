"""Server-side SVG charts for evaluation pages: no JavaScript, no CDN.

Each function takes plain numbers and returns SVG markup marked safe; every label goes through
``escape``. Charts scale to their container (``viewBox``) and carry a ``<title>`` per point
for hover text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 560, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 28, 14, 40
# studio.css mirrors these as .legend .swatch-N.
PALETTE = ("#2f5bd3", "#d9822b", "#1c8c4e", "#c0392b", "#7d4cc2", "#0f8b9c", "#8c6d1f",
           "#d14d8b", "#4f5d75", "#6a994e", "#bc4749", "#386641")  # fmt: skip


@dataclass(frozen=True)
class Series:
    """A named set of (x, y) points; ``labels`` (optional) name each point for hover text."""

    name: str
    points: Sequence[tuple[float, float]]
    labels: Sequence[str] = ()


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.0f}"
    return f"{value:.3g}"


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        if value >= low - step * 1e-9:
            ticks.append(round(value, 10))
        value += step
    return ticks


def _frame(parts: list[str], label: str) -> SafeString:
    body = "".join(parts)
    return mark_safe(  # every text inside was escaped
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg">{body}</svg>'
    )


def _empty(label: str, message: str) -> SafeString:
    return _frame(
        [f'<text class="tick" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
         f"{escape(message)}</text>"],
        label,
    )  # fmt: skip


def line_chart(
    series: Sequence[Series], *, x_label: str, y_label: str, y_range: tuple[float, float] | None
) -> SafeString:
    """Lines with markers, one per series, on linear axes."""
    points = [p for s in series for p in s.points]
    if not points:
        return _empty(y_label, "no data yet")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    if x0 == x1:
        x0, x1 = x0 - 1, x1 + 1
    y0, y1 = y_range or (min(ys), max(ys))
    if y0 == y1:
        y0, y1 = y0 - 1, y1 + 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return TOP + plot_h - (y - y0) / (y1 - y0) * plot_h

    parts = _axes(_nice_ticks(x0, x1), _nice_ticks(y0, y1), sx, sy, x_label, y_label, _fmt)
    for index, s in enumerate(series):
        ordered = sorted(zip(s.points, s.labels or [""] * len(s.points), strict=True))
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for (x, y), _l in ordered)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{colour(index)}" stroke-width="2"/>'
        )
        for (x, y), label in ordered:
            hover = escape(f"{s.name}: {label + ' ' if label else ''}({_fmt(x)}, {_fmt(y)})")
            parts.append(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{colour(index)}">'
                f"<title>{hover}</title></circle>"
            )
    return _frame(parts, y_label)


def log_scatter(
    series: Sequence[Series], *, x_label: str, y_label: str, diagonal: bool = True
) -> SafeString:
    """Points on log-log axes (values <= 0 are drawn at the bottom edge, as 1), with the
    y = x diagonal: on it, the response has exactly the required length."""
    points = [p for s in series for p in s.points]
    if not points:
        return _empty(y_label, "no item with a required length")
    values = [max(v, 1.0) for p in points for v in p]
    low = 10 ** math.floor(math.log10(min(values)))
    high = 10 ** math.ceil(math.log10(max(values)))
    if high <= low:
        high = low * 10
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span = math.log10(high) - math.log10(low)

    def sx(x: float) -> float:
        return LEFT + (math.log10(max(x, 1.0)) - math.log10(low)) / span * plot_w

    def sy(y: float) -> float:
        return TOP + plot_h - (math.log10(max(y, 1.0)) - math.log10(low)) / span * plot_h

    decades = [10.0**e for e in range(round(math.log10(low)), round(math.log10(high)) + 1)]
    parts = _axes(decades, decades, sx, sy, x_label, y_label, _fmt)
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
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour(index)}" '
                f'fill-opacity="0.75"><title>{hover}</title></circle>'
            )
    return _frame(parts, y_label)


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
        return _empty(y_label, "no data yet")
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM - 30
    group_w = plot_w / len(groups)
    bar_w = max(2.0, group_w * 0.8 / len(names))

    def sy(y: float) -> float:
        return TOP + plot_h - y / y_max * plot_h

    parts: list[str] = []
    for tick in _nice_ticks(0, y_max):
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{sy(tick):.1f}" '
            f'y2="{sy(tick):.1f}"/><text class="tick" x="{LEFT - 6}" y="{sy(tick) + 3:.1f}" '
            f'text-anchor="end">{_fmt(tick)}</text>'
        )
    for g_index, group in enumerate(groups):
        base = LEFT + g_index * group_w + group_w * 0.1
        for s_index, name in enumerate(names):
            value = series[name].get(group)
            if value is None:
                continue
            x, y = base + s_index * bar_w, sy(max(0.0, min(value, y_max)))
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 1:.1f}" '
                f'height="{TOP + plot_h - y:.1f}" fill="{colour(s_index)}">'
                f"<title>{escape(f'{name} · {group}: {value:.1f}')}</title></rect>"
            )
        short = group if len(group) <= 16 else group[:15] + "…"
        cx = LEFT + (g_index + 0.5) * group_w
        parts.append(
            f'<text class="tick" x="{cx:.1f}" y="{TOP + plot_h + 12}" text-anchor="end" '
            f'transform="rotate(-30 {cx:.1f} {TOP + plot_h + 12})">{escape(short)}'
            f"<title>{escape(group)}</title></text>"
        )
    parts.append(
        f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" '
        f'y2="{TOP + plot_h}"/>'
        f'<text class="tick" x="12" y="{TOP + plot_h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {TOP + plot_h / 2})">{escape(y_label)}</text>'
    )
    return _frame(parts, y_label)


def _axes(
    x_ticks: Sequence[float],
    y_ticks: Sequence[float],
    to_x: Callable[[float], float],
    to_y: Callable[[float], float],
    x_label: str,
    y_label: str,
    show: Callable[[float], str],
) -> list[str]:
    parts = []
    bottom, top = HEIGHT - BOTTOM, TOP
    for tick in y_ticks:
        y = to_y(tick)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y + 3:.1f}" text-anchor="end">'
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
        f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{bottom}" y2="{bottom}"/>'
        f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{top}" y2="{bottom}"/>'
        f'<text class="tick" x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 6}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
        f'<text class="tick" x="12" y="{(top + bottom) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {(top + bottom) / 2})">{escape(y_label)}</text>'
    )
    return parts
