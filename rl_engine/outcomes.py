"""The one vocabulary for how a response fared against another: WIN, TIE, LOSS or INVALID.

A pairwise judge answers with a letter (:class:`~rl_engine.judging.Verdict`: A = the response
shown first won, B = the one shown second, TIE, INVALID). Everything downstream — the reward,
the curriculum, win rates, the dashboard's judgments, human-versus-judge agreement — wants the
same thing: the outcome *for one side* (the policy, the system under evaluation). This module
is the only place that turns letters into outcomes, combines the two orders of one comparison
and maps an outcome to a reward; nothing else re-encodes them.

- :meth:`Outcome.from_verdict` — a letter and where the side of interest was shown;
- :func:`combine_orders` — the outcome over both orders (a verdict that changes with the order
  is a tie, as MT-Bench does; an INVALID order makes the comparison INVALID unless
  ``partial="single"``);
- :attr:`Outcome.reward` — 1.0 / 0.5 / 0.0, and None for INVALID (no reward, never a loss);
- :class:`OutcomeCounts` — wins, ties, losses and invalid of many outcomes.

The values are the lower-case words ("win", "tie", "loss", "invalid"), so an outcome compares
equal to its word and can be stored in a database column as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Literal

from rl_engine.judging.verdict import Verdict

__all__ = [
    "Outcome",
    "OutcomeCounts",
    "Partial",
    "PolicyPosition",
    "combine_orders",
    "verdict_letter",
]

PolicyPosition = Literal["first", "second"]
Partial = Literal["none", "single"]
_POSITIONS = ("first", "second")
_LETTERS = {"A": Verdict.A, "B": Verdict.B, "TIE": Verdict.TIE, "C": Verdict.TIE}


def verdict_letter(verdict: object, where: str = "verdict") -> Verdict:
    """``verdict`` (a :class:`Verdict`, its value, or the judge's raw tie letter ``C``) as a
    :class:`Verdict`; anything else is a ``ValueError`` naming ``where``.

    >>> verdict_letter("c"), verdict_letter(Verdict.A)
    (<Verdict.TIE: 'TIE'>, <Verdict.A: 'A'>)
    """
    if isinstance(verdict, Verdict):
        return verdict
    value = verdict.value if isinstance(verdict, Enum) else verdict
    text = str(value).strip().upper()
    if text == "INVALID":
        return Verdict.INVALID
    if text in _LETTERS:
        return _LETTERS[text]
    raise ValueError(f"{where} must be A, B, TIE or INVALID, got {verdict!r}")


def _position(position: str) -> PolicyPosition:
    if position not in _POSITIONS:
        raise ValueError(f"policy_position must be 'first' or 'second', got {position!r}")
    return position  # type: ignore[return-value]


class Outcome(StrEnum):
    """How one side of a comparison fared: won, tied, lost, or no usable verdict."""

    WIN = "win"
    TIE = "tie"
    LOSS = "loss"
    INVALID = "invalid"

    @classmethod
    def from_verdict(cls, verdict: object, policy_position: str) -> Outcome:
        """The outcome of the side shown at ``policy_position`` ("first" = A, "second" = B).

        >>> Outcome.from_verdict("B", "second"), Outcome.from_verdict("A", "second")
        (<Outcome.WIN: 'win'>, <Outcome.LOSS: 'loss'>)
        >>> Outcome.from_verdict("TIE", "first"), Outcome.from_verdict("INVALID", "first")
        (<Outcome.TIE: 'tie'>, <Outcome.INVALID: 'invalid'>)
        """
        position = _position(policy_position)
        letter = verdict_letter(verdict)
        if letter is Verdict.INVALID:
            return cls.INVALID
        if letter is Verdict.TIE:
            return cls.TIE
        own = Verdict.A if position == "first" else Verdict.B
        return cls.WIN if letter is own else cls.LOSS

    @classmethod
    def from_reward(cls, reward: float | None) -> Outcome:
        """The outcome a pairwise reward stands for; any value but 1.0, 0.5, 0.0 and None is
        a ``ValueError`` (a weighted total or a pointwise score is not an outcome).

        >>> Outcome.from_reward(1.0), Outcome.from_reward(None)
        (<Outcome.WIN: 'win'>, <Outcome.INVALID: 'invalid'>)
        """
        if reward is None:
            return cls.INVALID
        for outcome in (cls.WIN, cls.TIE, cls.LOSS):
            if reward == outcome.reward:
                return outcome
        raise ValueError(f"{reward!r} is not a pairwise reward (1.0, 0.5, 0.0 or None)")

    @classmethod
    def from_scores(cls, own: float | None, other: float | None) -> Outcome:
        """The outcome from two pointwise scores: higher wins, equal ties, None is INVALID.

        >>> Outcome.from_scores(7, 5), Outcome.from_scores(5, 5), Outcome.from_scores(None, 5)
        (<Outcome.WIN: 'win'>, <Outcome.TIE: 'tie'>, <Outcome.INVALID: 'invalid'>)
        """
        if own is None or other is None:
            return cls.INVALID
        if own == other:
            return cls.TIE
        return cls.WIN if own > other else cls.LOSS

    @property
    def reward(self) -> float | None:
        """1.0 for a win, 0.5 for a tie, 0.0 for a loss, None without a verdict."""
        return _REWARDS[self]

    @property
    def valid(self) -> bool:
        return self is not Outcome.INVALID

    def verdict(self, policy_position: str) -> Verdict:
        """The letter a judge gives for this outcome when the side was shown at
        ``policy_position`` (the inverse of :meth:`from_verdict`).

        >>> Outcome.WIN.verdict("second"), Outcome.LOSS.verdict("second")
        (<Verdict.B: 'B'>, <Verdict.A: 'A'>)
        """
        position = _position(policy_position)
        if self is Outcome.INVALID:
            return Verdict.INVALID
        if self is Outcome.TIE:
            return Verdict.TIE
        first_won = (self is Outcome.WIN) == (position == "first")
        return Verdict.A if first_won else Verdict.B


_REWARDS: dict[Outcome, float | None] = {
    Outcome.WIN: 1.0,
    Outcome.TIE: 0.5,
    Outcome.LOSS: 0.0,
    Outcome.INVALID: None,
}


def combine_orders(one: Outcome, other: Outcome, partial: Partial = "none") -> Outcome:
    """The outcome of one comparison judged in both orders, from each order's outcome.

    Agreeing orders give their outcome; disagreeing ones a tie (the verdict followed the
    position, not the text). An INVALID order makes the whole INVALID by default: a single order
    carries exactly the position bias that judging both orders cancels. With
    ``partial="single"`` the valid order's outcome is used instead.

    >>> combine_orders(Outcome.WIN, Outcome.WIN), combine_orders(Outcome.WIN, Outcome.LOSS)
    (<Outcome.WIN: 'win'>, <Outcome.TIE: 'tie'>)
    >>> combine_orders(Outcome.INVALID, Outcome.WIN)
    <Outcome.INVALID: 'invalid'>
    >>> combine_orders(Outcome.INVALID, Outcome.WIN, partial="single")
    <Outcome.WIN: 'win'>
    """
    if partial not in ("none", "single"):
        raise ValueError(f"partial must be 'none' or 'single'; got {partial!r}")
    one, other = Outcome(one), Outcome(other)
    if Outcome.INVALID in (one, other):
        if partial == "single":
            return one if one.valid else other
        return Outcome.INVALID
    return one if one is other else Outcome.TIE


@dataclass(frozen=True)
class OutcomeCounts:
    """Wins, ties, losses and invalid outcomes of many comparisons.

    :meth:`rate` is a share of the *valid* outcomes, :meth:`share` of all of them; both are
    None when no outcome is valid: no verdict is "unknown", never "0 % wins".
    """

    wins: int = 0
    ties: int = 0
    losses: int = 0
    invalid: int = 0

    @classmethod
    def of(cls, outcomes: Iterable[Outcome | str]) -> OutcomeCounts:
        """Count ``outcomes``; a value that is not an outcome is a ``ValueError`` naming it."""
        counts = dict.fromkeys(Outcome, 0)
        for index, outcome in enumerate(outcomes):
            try:
                counts[Outcome(outcome)] += 1
            except ValueError:
                raise ValueError(
                    f"item {index}: outcome must be win, tie, loss or invalid, got {outcome!r}"
                ) from None
        return cls(
            counts[Outcome.WIN], counts[Outcome.TIE], counts[Outcome.LOSS], counts[Outcome.INVALID]
        )

    @property
    def valid(self) -> int:
        return self.wins + self.ties + self.losses

    @property
    def total(self) -> int:
        """Every outcome, invalid ones included."""
        return self.valid + self.invalid

    @property
    def invalid_rate(self) -> float | None:
        return self.invalid / self.total if self.total else None

    def rate(self, outcome: Outcome | str) -> float | None:
        """The share of ``outcome`` among valid outcomes (None without one).

        >>> OutcomeCounts(wins=1, losses=1, invalid=2).rate("win")
        0.5
        >>> OutcomeCounts(invalid=3).rate(Outcome.WIN) is None
        True
        """
        outcome = Outcome(outcome)
        if outcome is Outcome.INVALID:
            return self.invalid_rate
        if not self.valid:
            return None
        count = {Outcome.WIN: self.wins, Outcome.TIE: self.ties, Outcome.LOSS: self.losses}
        return count[outcome] / self.valid

    def share(self, outcome: Outcome | str) -> float | None:
        """The share of ``outcome`` among *all* outcomes, invalid ones included (the four
        shares add up to 1) — None when there is no valid outcome to share out.

        >>> OutcomeCounts(wins=1, losses=1, invalid=2).share("win")
        0.25
        >>> OutcomeCounts(invalid=2).share("loss") is None
        True
        """
        outcome = Outcome(outcome)
        if outcome is Outcome.INVALID:
            return self.invalid_rate
        if not self.valid:
            return None
        count = {Outcome.WIN: self.wins, Outcome.TIE: self.ties, Outcome.LOSS: self.losses}
        return count[outcome] / self.total

    @property
    def adjusted_win_rate(self) -> float | None:
        """(wins + ties / 2) / valid outcomes."""
        return (self.wins + 0.5 * self.ties) / self.valid if self.valid else None

    def __add__(self, other: OutcomeCounts) -> OutcomeCounts:
        return OutcomeCounts(
            self.wins + other.wins,
            self.ties + other.ties,
            self.losses + other.losses,
            self.invalid + other.invalid,
        )
