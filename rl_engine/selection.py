"""Margin-aware data selection: which instructions are worth training on, and reference order.

For an instruction, a judge scores the responses of several writers and of the policy. Its
*learning potential* is how far the best other writer is ahead of the policy:
``p = max_{j != policy} (s_j - s_policy)``. The method keeps the k instructions with the highest
potential ("margin"); the paper's baselines keep the k the policy does worst on ("difficulty"),
all of them ("full"), or a random k.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "HistogramBin",
    "SelectionItem",
    "SelectionResult",
    "SelectionStrategy",
    "chosen_ids",
    "learning_potential",
    "order_references",
    "potential_histogram",
    "select_samples",
]

SelectionStrategy = Literal["margin", "difficulty", "random", "full"]
SELECTION_STRATEGIES: tuple[str, ...] = ("margin", "difficulty", "random", "full")


def _present(scores: Mapping[str, float | None], writer: str) -> float | None:
    value = scores.get(writer)
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        raise ValueError(f"score of {writer!r} is NaN; use None for a missing score")
    return float(value)


def learning_potential(scores: Mapping[str, float | None], policy: str) -> float:
    """``max over the other writers j of (s_j - s_policy)``; negative when the policy leads.

    A writer whose score is None (a failed judgment) is treated as absent. ``ValueError`` names
    what is missing: the policy's score, or every other writer's.

    >>> learning_potential({"policy": 4, "gpt": 7, "qwen": 9}, "policy")
    5.0
    >>> learning_potential({"policy": 8, "gpt": 6}, "policy")
    -2.0
    """
    own = _present(scores, policy)
    if own is None:
        raise ValueError(f"no score for the policy {policy!r} (writers scored: {sorted(scores)})")
    others = [
        value
        for writer in scores
        if writer != policy and (value := _present(scores, writer)) is not None
    ]
    if not others:
        raise ValueError(f"no score for any writer other than the policy {policy!r}")
    return max(others) - own


@dataclass(frozen=True)
class SelectionItem:
    """One candidate instruction: the scores of every writer's response, the policy's included."""

    sample_id: str
    scores: Mapping[str, float | None]
    policy: str = "policy"


@dataclass(frozen=True)
class SelectionResult:
    """A candidate after selection.

    ``potential`` and ``policy_score`` are None where they cannot be computed (allowed for the
    random and full strategies only). ``rank`` is the position in the strategy's order (0 is
    taken first); ``chosen`` says whether it is in the selected k.
    """

    sample_id: str
    potential: float | None
    policy_score: float | None
    chosen: bool
    rank: int


def _as_item(raw: SelectionItem | Mapping[str, Any], index: int) -> SelectionItem:
    if isinstance(raw, SelectionItem):
        return raw
    if not isinstance(raw, Mapping):
        raise TypeError(f"item {index} is neither a SelectionItem nor a mapping: {raw!r}")
    missing = [key for key in ("sample_id", "scores") if key not in raw]
    if missing:
        raise ValueError(f"item {index} has no {' or '.join(missing)}")
    return SelectionItem(str(raw["sample_id"]), raw["scores"], str(raw.get("policy", "policy")))


def select_samples(
    items: Sequence[SelectionItem | Mapping[str, Any]],
    k: int | None,
    strategy: SelectionStrategy | str = "margin",
    seed: int = 0,
) -> list[SelectionResult]:
    """Rank every candidate by ``strategy`` and mark the first ``k`` as chosen.

    - ``margin``: highest learning potential first;
    - ``difficulty``: lowest policy score first;
    - ``random``: a shuffle seeded by ``seed`` (independent of the input order);
    - ``full``: everything chosen, in sample-id order (``k`` is ignored).

    Ties are broken by sample id. ``k=None`` or a ``k`` above the number of items chooses all.
    Returns every candidate (chosen or not) in rank order, so a caller can draw the histogram of
    potentials with the chosen part marked; :func:`chosen_ids` gives just the ids.
    Items can be :class:`SelectionItem` or mappings with ``sample_id``, ``scores`` and
    optionally ``policy``.

    >>> items = [
    ...     SelectionItem("x", {"policy": 5, "ref": 9}),
    ...     SelectionItem("y", {"policy": 2, "ref": 4}),
    ... ]
    >>> chosen_ids(select_samples(items, 1, "margin"))
    ['x']
    >>> chosen_ids(select_samples(items, 1, "difficulty"))
    ['y']
    """
    if strategy not in SELECTION_STRATEGIES:
        raise ValueError(
            f"strategy must be one of {', '.join(SELECTION_STRATEGIES)}; got {strategy!r}"
        )
    if k is not None and k < 0:
        raise ValueError(f"k must be >= 0 (or None for all), got {k}")
    candidates = [_as_item(raw, index) for index, raw in enumerate(items)]
    seen: set[str] = set()
    for candidate in candidates:
        if candidate.sample_id in seen:
            raise ValueError(f"sample id {candidate.sample_id!r} appears twice")
        seen.add(candidate.sample_id)

    potentials: dict[str, float | None] = {}
    policy_scores: dict[str, float | None] = {}
    for candidate in candidates:
        policy_scores[candidate.sample_id] = _present(candidate.scores, candidate.policy)
        try:
            potentials[candidate.sample_id] = learning_potential(candidate.scores, candidate.policy)
        except ValueError as error:
            if strategy == "margin":
                raise ValueError(f"sample {candidate.sample_id!r}: {error}") from None
            potentials[candidate.sample_id] = None
        if strategy == "difficulty" and policy_scores[candidate.sample_id] is None:
            raise ValueError(
                f"sample {candidate.sample_id!r}: no score for the policy {candidate.policy!r}"
            )

    ids = sorted(seen)
    if strategy == "margin":
        ids.sort(key=lambda sample_id: -(potentials[sample_id] or 0.0))
    elif strategy == "difficulty":
        ids.sort(key=lambda sample_id: policy_scores[sample_id] or 0.0)
    elif strategy == "random":
        random.Random(seed).shuffle(ids)
    limit = len(ids) if k is None or strategy == "full" else min(k, len(ids))
    return [
        SelectionResult(
            sample_id=sample_id,
            potential=potentials[sample_id],
            policy_score=policy_scores[sample_id],
            chosen=rank < limit,
            rank=rank,
        )
        for rank, sample_id in enumerate(ids)
    ]


def chosen_ids(results: Sequence[SelectionResult]) -> list[str]:
    """The ids of the chosen candidates, in rank order."""
    return [result.sample_id for result in sorted(results, key=lambda r: r.rank) if result.chosen]


@dataclass(frozen=True)
class HistogramBin:
    """Candidates whose potential lies in [low, high) (the last bin includes ``high``)."""

    low: float
    high: float
    chosen: int = 0
    not_chosen: int = 0
    sample_ids: list[str] = field(default_factory=list, compare=False)


def potential_histogram(results: Sequence[SelectionResult], bins: int = 10) -> list[HistogramBin]:
    """Equal-width bins over the learning potentials, counting chosen and unchosen candidates.

    Candidates without a potential are left out. With no potentials the list is empty; when all
    potentials are equal there is one bin.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    scored = [r for r in results if r.potential is not None]
    if not scored:
        return []
    values = [r.potential for r in scored if r.potential is not None]
    low, high = min(values), max(values)
    if high == low:
        bins = 1
    width = (high - low) / bins or 1.0
    counts: list[list[Any]] = [[0, 0, []] for _ in range(bins)]
    for result in scored:
        assert result.potential is not None
        index = min(int((result.potential - low) / width), bins - 1)
        counts[index][0 if result.chosen else 1] += 1
        counts[index][2].append(result.sample_id)
    return [
        HistogramBin(low + i * width, low + (i + 1) * width, chosen, not_chosen, ids)
        for i, (chosen, not_chosen, ids) in enumerate(counts)
    ]


def order_references(
    scores: Mapping[str, float | None], policy: str | None = None, drop_beaten: bool = False
) -> list[str]:
    """Writers other than the policy in ascending score (their reference tiers), ties by name.

    With ``drop_beaten`` the references the policy already beats (a strictly lower score than
    the policy's) are left out; if the policy beats them all the list is empty. Every
    reference needs a score; ``ValueError`` names those without one.

    >>> order_references({"policy": 5, "b": 7, "a": 7, "c": 3}, policy="policy")
    ['c', 'a', 'b']
    >>> order_references({"policy": 5, "b": 7, "a": 7, "c": 3}, "policy", drop_beaten=True)
    ['a', 'b']
    """
    references = [writer for writer in scores if writer != policy]
    unscored = [writer for writer in references if _present(scores, writer) is None]
    if unscored:
        raise ValueError(f"no score for the references {sorted(unscored)}")
    order = sorted(references, key=lambda writer: (_present(scores, writer), writer))
    if not drop_beaten:
        return order
    if policy is None:
        raise ValueError("drop_beaten needs the policy's name to know what it beats")
    own = _present(scores, policy)
    if own is None:
        raise ValueError(f"drop_beaten needs a score for the policy {policy!r}")
    return [writer for writer in order if (_present(scores, writer) or 0.0) >= own]
