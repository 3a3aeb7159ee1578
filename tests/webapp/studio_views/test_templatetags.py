"""The studio template tags: server-side SVG charts and the cheap text and time filters."""

from __future__ import annotations

import itertools

from webapp.studio.templatetags.studio_charts import (
    MAX_POINTS,
    _fmt,
    downsample,
    histogram,
    line_chart,
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


def test_it_clips_long_text_with_an_ellipsis() -> None:
    from webapp.studio.templatetags.studio_text import clip

    assert clip("short", 10) == "short"
    assert clip("a sentence that goes on", 10) == "a sentenc…"
    assert clip(None, 5) == ""


def test_it_stamps_times_in_the_current_time_zone() -> None:
    from datetime import UTC, datetime

    from django.utils import timezone

    from webapp.studio.templatetags.studio_text import stamp

    moment = datetime(2026, 11, 25, 17, 40, 5, tzinfo=UTC)
    assert stamp(moment) == "2026-11-25 17:40"
    assert stamp(moment, "s") == "2026-11-25 17:40:05"
    with timezone.override("Europe/Paris"):
        assert stamp(moment, "t") == "18:40:05"
    assert stamp(None) == ""


def test_it_formats_fixed_decimals_and_a_dash_for_none() -> None:
    from webapp.studio.templatetags.studio_text import fixed

    assert fixed(0.12345, 3) == "0.123"
    assert fixed(2, 2) == "2.00"
    assert fixed(None) == "—"


def test_it_keeps_small_tick_labels_distinct() -> None:
    labels = [_fmt(t) for t in nice_ticks(0.0001, 0.0005)]
    assert len(set(labels)) == len(labels)
    assert "0.0002" in labels
