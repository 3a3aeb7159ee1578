from __future__ import annotations

import pytest

from rl_engine.judging import Verdict, parse_verdict


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("Final verdict: [[A]]", Verdict.A),
        ("[[B]]", Verdict.B),
        ("They are equally good. [[C]]", Verdict.TIE),
        ("[[ A ]]", Verdict.A),
        # The last tag wins: judges often restate the format before answering.
        ("Output [[A]] if A is better, [[B]] if B is. Verdict: [[B]]", Verdict.B),
        ("[[B]] ... on reflection, [[A]]", Verdict.A),
        ("I choose [[A]] or [[C]]... [[C]]", Verdict.TIE),
    ],
)
def test_it_reads_the_last_bracketed_verdict(text: str, verdict: Verdict) -> None:
    assert parse_verdict(text) is verdict


@pytest.mark.parametrize(
    "text",
    [
        "Assistant A is Absolutely better. A wins.",  # capital A's must never read as A
        "A",
        "[A]",
        "[[D]]",
        "[[a]]",
        "verdict: B",
        "",
        None,
    ],
)
def test_it_never_guesses_from_stray_letters(text: str | None) -> None:
    assert parse_verdict(text) is Verdict.INVALID


def test_it_keeps_the_agreed_values() -> None:
    assert [v.value for v in Verdict] == ["A", "B", "TIE", "INVALID"]
    assert Verdict("TIE") is Verdict.TIE


def test_the_module_doctests_hold() -> None:
    import doctest

    from rl_engine.judging import scorer, transport, verdict

    for module in (verdict, transport, scorer):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
