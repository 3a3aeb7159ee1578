"""Verdicts of a pairwise judge and how they are read from a judge's text."""

from __future__ import annotations

import re
from enum import StrEnum

__all__ = ["Verdict", "parse_verdict"]


class Verdict(StrEnum):
    """Outcome of comparing two responses: the first (A) wins, the second (B) wins, a tie, or
    no usable verdict (INVALID — never to be read as a loss)."""

    A = "A"
    B = "B"
    TIE = "TIE"
    INVALID = "INVALID"


# Only the bracketed form counts: a rationale full of capital letters must not decide anything.
_VERDICT_TAG = re.compile(r"\[\[\s*([ABC])\s*\]\]")
_TAG_TO_VERDICT = {"A": Verdict.A, "B": Verdict.B, "C": Verdict.TIE}


def parse_verdict(text: str | None) -> Verdict:
    """The verdict the judge gave in ``text``: the LAST ``[[A]]``, ``[[B]]`` or ``[[C]]`` (tie).

    Judges often quote the format before answering ("I will answer [[A]], [[B]] or [[C]]"), so
    the last tag wins. Text without a tag is INVALID; stray letters are never guessed from.

    >>> parse_verdict("Assistant A is Also good. Final verdict: [[B]]")
    <Verdict.B: 'B'>
    >>> parse_verdict("Output [[A]], [[B]] or [[C]] for a tie. My verdict: [[C]]")
    <Verdict.TIE: 'TIE'>
    >>> parse_verdict("A is clearly better.")
    <Verdict.INVALID: 'INVALID'>
    """
    if not text:
        return Verdict.INVALID
    tags = _VERDICT_TAG.findall(text)
    if not tags:
        return Verdict.INVALID
    return _TAG_TO_VERDICT[tags[-1]]
