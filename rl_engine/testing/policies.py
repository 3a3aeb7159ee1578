"""Answer policies for :class:`~rl_engine.testing.FakeOpenAIServer` that tests can predict:
the verdict a pair should get is written into its first response as ``expect=A|B|C``."""

from __future__ import annotations

import re

from rl_engine.judging.types import PairRequest
from rl_engine.testing.openai_server import ChatCall

__all__ = ["echo_policy", "expected_tag", "tagged_pair"]

_EXPECTED = re.compile(r"\[The start of assistant A's response\]\n.*?expect=([ABC])", re.DOTALL)


def tagged_pair(index: int, tag: str) -> PairRequest:
    """A pair whose first response carries ``expect=<tag>``, which :func:`echo_policy`
    answers."""
    return PairRequest(
        instruction=f"Write a haiku about autumn, number {index}.",
        first=f"Response one for {index}. expect={tag}",
        second=f"Response two for {index}.",
    )


def expected_tag(call: ChatCall) -> str:
    """The ``expect=`` tag of assistant A's response in a default-template judge prompt."""
    match = _EXPECTED.search(call.user)
    if match is None:
        raise ValueError("no 'expect=' tag in assistant A's response of this judge prompt")
    return match.group(1)


def echo_policy(call: ChatCall) -> str:
    """Answer the verdict the pair asks for, after a rationale full of capital A's (so a
    parser that guesses from stray letters is caught)."""
    return f"Assistant A And Assistant B. After All, my verdict: [[{expected_tag(call)}]]"
