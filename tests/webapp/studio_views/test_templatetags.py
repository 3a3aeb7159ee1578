"""The studio template tags: the cheap text and time filters (the charts have
tests/webapp/test_charts.py)."""

from __future__ import annotations


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
