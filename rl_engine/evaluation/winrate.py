"""Win rates of a system against a baseline from pairwise verdicts, raw and length-controlled.

Verdicts are the judge's letters: ``"A"`` (the first response shown won), ``"B"``, ``"TIE"`` or
``"INVALID"``; :class:`rl_engine.judging.Verdict` members compare equal to them. Each item is
judged in both orders (MT-Bench): a verdict that changes with the order is a tie, and an item
whose verdict is INVALID in either order is counted as invalid and left out of every rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rl_engine.judging.verdict import Verdict
from rl_engine.outcomes import Outcome, OutcomeCounts, verdict_letter
from rl_engine.outcomes import combine_orders as combine_outcomes

__all__ = [
    "LengthControlledWinRate",
    "Outcome",
    "PositionBias",
    "WinRate",
    "combine_orders",
    "length_controlled_win_rate",
    "pairwise_win_rate",
    "position_bias",
    "win_rate_from_outcomes",
]


def _letter(verdict: object, where: str) -> Verdict:
    return verdict_letter(verdict, where)


def combine_orders(system_first: object, system_second: object) -> Outcome:
    """The system's outcome on one item from the verdicts of both orders (the rule is
    :func:`rl_engine.outcomes.combine_orders`; this reads the judge's letters).

    ``system_first`` is the verdict with the system's response shown first (as A),
    ``system_second`` with it shown second (as B).

    >>> [str(combine_orders(*pair)) for pair in [("A", "B"), ("A", "A"), ("TIE", "TIE")]]
    ['win', 'tie', 'tie']
    >>> [str(combine_orders(*pair)) for pair in [("B", "A"), ("A", "INVALID")]]
    ['loss', 'invalid']
    """
    first = _letter(system_first, "system-first verdict")
    second = _letter(system_second, "system-second verdict")
    return combine_outcomes(
        Outcome.from_verdict(first, "first"), Outcome.from_verdict(second, "second")
    )


@dataclass(frozen=True)
class WinRate:
    """Counts and rates of a system against a baseline. Rates are None with no valid item."""

    wins: int
    ties: int
    losses: int
    invalid: int
    inconsistent: int = 0

    @property
    def total(self) -> int:
        """Items with a valid outcome (invalid ones excluded)."""
        return self.wins + self.ties + self.losses

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.total if self.total else None

    @property
    def adjusted_win_rate(self) -> float | None:
        """(wins + ties / 2) / total."""
        return (self.wins + 0.5 * self.ties) / self.total if self.total else None


def win_rate_from_outcomes(outcomes: Sequence[Outcome | str]) -> WinRate:
    """Count per-item outcomes ("win", "tie", "loss", "invalid")."""
    counts = OutcomeCounts.of(outcomes)
    return WinRate(counts.wins, counts.ties, counts.losses, counts.invalid)


def pairwise_win_rate(system_first: Sequence[object], system_second: Sequence[object]) -> WinRate:
    """Win rate from both-order verdicts per item (see :func:`combine_orders`).

    ``inconsistent`` counts items whose two valid verdicts disagreed (they count as ties), a
    measure of the judge's position bias on this comparison.

    >>> r = pairwise_win_rate(["A", "A", "B", "TIE", "A"], ["B", "A", "A", "TIE", "INVALID"])
    >>> (r.wins, r.ties, r.losses, r.invalid, r.inconsistent, r.adjusted_win_rate)
    (1, 2, 1, 1, 1, 0.5)
    """
    if len(system_first) != len(system_second):
        raise ValueError(
            f"verdicts for {len(system_first)} items in one order but {len(system_second)} "
            "in the other"
        )
    outcomes: list[Outcome] = []
    inconsistent = 0
    for index, (first, second) in enumerate(zip(system_first, system_second, strict=True)):
        try:
            outcome = combine_orders(first, second)
        except ValueError as error:
            raise ValueError(f"item {index}: {error}") from None
        outcomes.append(outcome)
        a, b = _letter(first, ""), _letter(second, "")
        if outcome is Outcome.TIE and not (a is Verdict.TIE and b is Verdict.TIE):
            inconsistent += 1
    counts = win_rate_from_outcomes(outcomes)
    return WinRate(counts.wins, counts.ties, counts.losses, counts.invalid, inconsistent)


@dataclass(frozen=True)
class LengthControlledWinRate:
    """The fitted length model and both rates (0-1).

    ``win_rate`` is the plain adjusted win rate of the valid items; ``length_controlled`` is
    the predicted preference with the length difference set to zero; ``length_coefficient`` is
    how strongly the judge followed length (positive: longer wins).
    """

    win_rate: float
    length_controlled: float
    intercept: float
    length_coefficient: float
    items: int


def length_controlled_win_rate(
    outcomes: Sequence[Outcome | str],
    system_lengths: Sequence[float],
    baseline_lengths: Sequence[float],
    l2: float = 1e-3,
) -> LengthControlledWinRate:
    """AlpacaEval 2-style length-controlled win rate, simplified.

    Model: ``P(system preferred) = sigmoid(b0 + b1 * tanh(d / sd(d)))`` with ``d`` the length
    difference (system minus baseline, in any unit: words, tokens) and ``sd(d)`` its standard
    deviation over items. Preferences are 1 for a win, 0.5 for a tie and 0 for a loss (a
    fractional target); invalid items are dropped. The fit is maximum likelihood by Newton (IRLS)
    with a small L2 penalty ``l2`` on ``b1`` (it keeps the fit finite when length separates the
    outcomes). The length-controlled rate is the prediction at ``d = 0`` averaged over items,
    which for this model is ``sigmoid(b0)``.

    Simplifications against AlpacaEval 2: one system and one baseline at a time (no shared
    per-model terms), and no per-instruction difficulty term.
    """
    if not len(outcomes) == len(system_lengths) == len(baseline_lengths):
        raise ValueError(
            f"need one length pair per outcome: {len(outcomes)} outcomes, "
            f"{len(system_lengths)} system lengths, {len(baseline_lengths)} baseline lengths"
        )
    read: list[Outcome] = []
    for i, outcome in enumerate(outcomes):
        try:
            read.append(Outcome(outcome))
        except ValueError:
            raise ValueError(f"item {i}: outcome must be win, tie, loss or invalid") from None
    keep = [i for i, outcome in enumerate(read) if outcome.valid]
    if not keep:
        raise ValueError("no valid outcome to fit the length model on")
    y = np.array([read[i].reward for i in keep], dtype=float)
    diff = np.array([float(system_lengths[i]) - float(baseline_lengths[i]) for i in keep])
    spread = float(diff.std())
    feature = np.tanh(diff / spread) if spread > 0 else np.zeros_like(diff)
    design = np.column_stack([np.ones_like(feature), feature])
    penalty = np.diag([0.0, l2])
    # With every target 0 or 1 the intercept alone diverges; clip it to a finite rate.
    beta = np.zeros(2)
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        gradient = design.T @ (y - p) - penalty @ beta
        hessian = design.T @ (design * (p * (1.0 - p))[:, None]) + penalty + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        beta = np.clip(beta + step, -30.0, 30.0)
        if np.max(np.abs(step)) < 1e-10:
            break
    return LengthControlledWinRate(
        win_rate=float(y.mean()),
        length_controlled=1.0 / (1.0 + math.exp(-float(beta[0]))),
        intercept=float(beta[0]),
        length_coefficient=float(beta[1]),
        items=len(keep),
    )


@dataclass(frozen=True)
class PositionBias:
    """How a judge's verdicts change when the two responses swap places.

    Over items valid in both orders: ``flips`` changed verdict, ``first_favoured`` of them
    picked whichever response was shown first both times ("A" and "A"), ``second_favoured`` the
    one shown second ("B" and "B").
    """

    items: int
    flips: int
    first_favoured: int
    second_favoured: int
    invalid: int

    @property
    def flip_rate(self) -> float | None:
        return self.flips / self.items if self.items else None


def position_bias(original: Sequence[object], swapped: Sequence[object]) -> PositionBias:
    """Compare verdicts on the same pairs in the original order and with the sides swapped.

    >>> position_bias(["A", "A", "B", "TIE", "B"], ["B", "A", "A", "INVALID", "B"])
    PositionBias(items=4, flips=2, first_favoured=1, second_favoured=1, invalid=1)
    """
    if len(original) != len(swapped):
        raise ValueError(f"{len(original)} original verdicts but {len(swapped)} swapped ones")
    items = flips = first = second = invalid = 0
    for index, (one, other) in enumerate(zip(original, swapped, strict=True)):
        a = _letter(one, f"item {index}: original verdict")
        b = _letter(other, f"item {index}: swapped verdict")
        if Verdict.INVALID in (a, b):
            invalid += 1
            continue
        items += 1
        # The same winner after the swap: the letters mirror each other.
        consistent = Outcome.from_verdict(a, "first") is Outcome.from_verdict(b, "second")
        if not consistent:
            flips += 1
            first += a is b is Verdict.A
            second += a is b is Verdict.B
    return PositionBias(items, flips, first, second, invalid)
