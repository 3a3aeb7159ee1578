"""The app's one chart module: ticks, formatting, the titled figures of the studio and the
labelled plots of the evaluation pages."""

from __future__ import annotations

import itertools
import math
import re
from xml.etree import ElementTree

from django.template import Context, Template

from webapp.charts import (
    MAX_POINTS,
    Series,
    _fmt,
    downsample,
    grouped_bars,
    histogram,
    labelled_line_chart,
    line_chart,
    log_scatter,
    nice_ticks,
    stacked_tiers,
    tier_timeline,
)


def test_it_picks_round_ticks_covering_the_range() -> None:
    assert nice_ticks(0, 1) == [0, 0.5, 1.0]
    ticks = nice_ticks(3, 97)
    assert ticks[0] <= 3 and ticks[-1] >= 97
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert gaps == {50}


def test_it_downsamples_long_series_to_bucket_means() -> None:
    points = [(float(i), float(i % 2)) for i in range(10_000)]
    small = downsample(points)
    assert len(small) <= MAX_POINTS
    assert all(abs(y - 0.5) < 0.05 for _, y in small)
    assert downsample(points[:5]) == points[:5]


def test_it_draws_lines_with_gaps_for_missing_values_and_escapes_labels() -> None:
    svg = line_chart(
        [{"label": "<b>reward</b>", "points": [(1, 0.5), (2, None), (3, 0.7)]}], title="R & D"
    )
    assert "<polyline" in svg and "R &amp; D" in svg
    assert "&lt;b&gt;reward&lt;/b&gt;" in svg and "<b>" not in svg
    assert svg.count(",") >= 2


def test_it_says_no_data_for_empty_series() -> None:
    assert "No data yet." in line_chart([{"label": "x", "points": [(1, None)]}], title="t")
    assert "No data yet." in stacked_tiers([], [], title="t")
    assert "No data yet." in histogram([None], title="t")


def test_it_stacks_one_band_per_tier() -> None:
    svg = stacked_tiers([1, 2, 3], [[4, 0], [3, 1], [1, 2, 1]], title="tiers")
    assert svg.count("<polygon") == 3
    assert "tier 2" in svg


def test_it_bins_values_and_highlights_the_chosen() -> None:
    svg = histogram([0.0, 0.1, 0.9, 1.0], title="lp", bins=2, highlighted=[1.0])
    assert svg.count('class="bar"') == 2 and svg.count('class="bar marked"') == 1
    assert ": 2</title>" in svg and ": 1</title>" in svg


def test_it_draws_a_tier_timeline_with_a_dot_per_change() -> None:
    svg = tier_timeline([(0, 0), (3, 1), (9, 2)], num_tiers=3, last_step=12, title="timeline")
    assert svg.count("<circle") == 2
    assert "step 9: tier 2" in svg


def test_it_keeps_small_tick_labels_distinct() -> None:
    labels = [_fmt(t) for t in nice_ticks(0.0001, 0.0005)]
    assert len(set(labels)) == len(labels)
    assert "0.0002" in labels


def test_the_template_tags_draw_the_same_charts() -> None:
    html = Template("{% load studio_charts %}{% line_chart series title='T' y_min=0 %}").render(
        Context({"series": [{"label": "r", "points": [(1, 0.5), (2, 0.7)]}]})
    )
    assert html == line_chart([{"label": "r", "points": [(1, 0.5), (2, 0.7)]}], title="T", y_min=0)


def test_the_labelled_plots_leave_out_missing_and_non_finite_values() -> None:
    # An evaluation with a NaN or missing score draws the rest instead of failing.
    line = labelled_line_chart(
        [Series("run", [(1, 10.0), (2, math.nan), (3, 30.0)], ["a", "b", "c"])],
        x_label="step", y_label="score", y_range=None,
    )  # fmt: skip
    assert line.count("<circle") == 2 and "nan" not in line
    ElementTree.fromstring(line)
    scatter = log_scatter([Series("run", [(100, math.inf), (200, 180)])], x_label="x", y_label="y")
    assert scatter.count("<circle") == 1 and "inf" not in scatter
    bars = grouped_bars(["fiction", "news"], {"run": {"fiction": math.nan, "news": 40.0}},
                        y_label="score")  # fmt: skip
    assert bars.count("<rect") == 1 and "nan" not in bars
    assert "no data yet" in labelled_line_chart(
        [Series("run", [(1, math.nan)])], x_label="x", y_label="y", y_range=None
    )


def test_the_labelled_line_chart_ticks_cover_the_top_of_the_data() -> None:
    svg = labelled_line_chart(
        [Series("run", [(0, 3.0), (10, 97.0)])], x_label="x", y_label="y", y_range=None
    )
    tick_labels = [float(t) for t in re.findall(r'text-anchor="end">([\d.]+)<', svg)]
    assert max(tick_labels) >= 97 and min(tick_labels) <= 3


def test_step_axes_have_whole_number_ticks() -> None:
    assert nice_ticks(1, 2, 6, integer=True) == [1, 2]
    assert all(float(t).is_integer() for t in nice_ticks(0, 7, 6, integer=True))
    svg = line_chart([{"label": "r", "points": [(1, 0.1), (2, 0.2)]}], title="t")
    ticks = re.findall(r'text-anchor="middle">([^<]+)</text>', str(svg))
    assert "1.2" not in ticks and "1" in ticks and "2" in ticks
    assert ">step</text>" in svg  # the x axis is labelled


def test_smoothing_is_a_debiased_moving_average() -> None:
    from webapp.charts import ema

    assert ema([1.0, 1.0, 1.0], 0.9) == [1.0, 1.0, 1.0]  # no pull towards zero at the start
    smoothed = ema([0.0, 1.0], 0.5)
    assert smoothed[0] == 0.0 and math.isclose(smoothed[1], 2 / 3)
    svg = line_chart([{"label": "r", "points": [(1, 0.0), (2, 1.0)]}], title="t", smoothing=0.5)
    assert 'class="raw"' in svg and "r (smoothed) 0.667" in svg


def test_hovering_a_step_shows_every_series_there() -> None:
    svg = line_chart(
        [
            {"label": "win", "points": [(1, 0.25), (2, 0.5)]},
            {"label": "loss", "points": [(1, 0.75), (2, 0.5)]},
        ],
        title="rates",
    )
    assert svg.count('class="hover-band"') == 2
    assert "step 1: win 0.25 · loss 0.75" in svg


def test_a_step_range_keeps_only_those_steps() -> None:
    points = [(step, float(step)) for step in range(1, 11)]
    svg = line_chart([{"label": "r", "points": points}], title="t", x_range=(3, 5))
    assert svg.count('class="hover-band"') == 3
    assert "step 3: " in svg and "step 6: " not in svg


def test_tier_bands_have_distinct_colours_and_white_separators() -> None:
    from webapp.charts import TIER_PALETTE

    assert len(set(TIER_PALETTE)) == len(TIER_PALETTE)
    svg = stacked_tiers([1, 2], [[2, 1, 0], [1, 1, 1]], title="tiers")
    assert svg.count('stroke="#fff"') == 3
    assert "step 2: tier 0 1 · tier 1 1 · tier 2 1" in svg


def test_no_step_tick_is_drawn_left_of_the_first_step() -> None:
    # Steps 1..12: the round ticks start at 0, which lies left of the plot, over the y labels.
    svg = str(line_chart([{"label": "reward", "points": [(s, s / 12) for s in range(1, 13)]}]))
    xs = [
        float(x)
        for x, text in re.findall(
            r'<text class="tick" x="([\d.]+)" y="[\d.]+" text-anchor="middle">([^<]*)</text>', svg
        )
    ]
    assert xs and min(xs) >= 46 - 0.5  # LEFT
