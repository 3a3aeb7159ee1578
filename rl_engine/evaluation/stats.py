"""Ratings and agreement: Bradley-Terry on the Elo scale, Cohen's and Fleiss' kappa.

Fleiss' kappa follows irrCAC (``irrCAC/raw.py``, ``CAC.fleiss``) for items with unequal
numbers of ratings; see :func:`fleiss_kappa`.

Bradley-Terry: P(i beats j) = 1 / (1 + exp(-(theta_i - theta_j))). We fit theta by maximum
likelihood with damped Newton steps (a handful of iterations for tens of systems), count a tie
as half a win for each side (Chatbot Arena's convention), and show ``1000 + 400/ln 10 * theta``
with theta centred so that the systems' mean rating is 1000.

A system that never lost (or never won) has no finite maximum-likelihood rating. To keep every
rating finite we add a weak prior: each system plays ``prior`` virtual tied games against a
fixed virtual opponent of rating 1000 (theta 0). With the default ``prior=0.01`` this moves the
ratings of systems with ordinary records by a fraction of an Elo point, while an unbeaten system
gets a large but finite rating. ``prior=0`` fits the plain MLE and raises ``ValueError`` when
it does not exist.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Battle",
    "Rating",
    "agreement_rate",
    "bootstrap_ratio",
    "bradley_terry",
    "cohen_kappa",
    "fleiss_kappa",
    "ratings_table",
]

ELO_SCALE = 400.0 / math.log(10.0)
ELO_OFFSET = 1000.0
# "both_bad" (an annotator's "both are bad") counts as a tie, as in Chatbot Arena.
OUTCOMES = ("a", "b", "tie", "both_bad")

Battle = tuple[str, str, str]


@dataclass(frozen=True)
class Rating:
    """A system's Bradley-Terry rating on the Elo scale, with its bootstrap 95% interval.

    Without bootstrap the interval is (rating, rating). ``battles`` counts the games it played.
    """

    system: str
    rating: float
    low: float
    high: float
    battles: int
    wins: float


def _check_battles(battles: Sequence[Battle]) -> list[str]:
    systems: set[str] = set()
    for index, battle in enumerate(battles):
        if len(battle) != 3:
            raise ValueError(f"battle {index} must be (model_a, model_b, outcome), got {battle!r}")
        model_a, model_b, outcome = battle
        if outcome not in OUTCOMES:
            raise ValueError(
                f"battle {index}: outcome must be 'a', 'b', 'tie' or 'both_bad', got {outcome!r}"
            )
        if model_a == model_b:
            raise ValueError(f"battle {index}: {model_a!r} cannot play against itself")
        systems.update((model_a, model_b))
    return sorted(systems)


def _fit(
    first: np.ndarray,
    second: np.ndarray,
    score: np.ndarray,
    count: np.ndarray,
    size: int,
    prior: float,
) -> np.ndarray:
    """theta maximising the BT log-likelihood of ``count`` games first-vs-second, each scored
    ``score`` (1, 0.5 or 0) for ``first``."""
    games = np.zeros((size, size))
    np.add.at(games, (first, second), count)
    games = games + games.T
    wins = np.zeros(size)
    np.add.at(wins, first, count * score)
    np.add.at(wins, second, count * (1.0 - score))
    played = games.sum(axis=1)
    if prior == 0.0:
        never = [i for i in range(size) if wins[i] == 0.0 or wins[i] == played[i]]
        if never:
            raise ValueError(
                "with prior=0 every system must both win and lose at least once (half a tie "
                "counts); use a small prior instead"
            )
    # Prior: `prior` games against a virtual opponent at theta 0, each half won.
    wins_total = wins + prior / 2.0

    def log_likelihood(theta: np.ndarray) -> float:
        # Per game a-vs-b with score s: s*t_a + (1-s)*t_b - log(e^t_a + e^t_b); summed, the
        # first part is sum_i wins_i * t_i, the second is symmetric in the pair.
        pair = np.sum(games * np.logaddexp(theta[:, None], theta[None, :])) / 2.0
        virtual = prior * np.sum(np.logaddexp(theta, 0.0))
        return float(np.dot(wins_total, theta) - pair - virtual)

    theta = np.zeros(size)
    current = log_likelihood(theta)
    for _ in range(100):
        diff = theta[:, None] - theta[None, :]
        p = 1.0 / (1.0 + np.exp(-diff))
        p_virtual = 1.0 / (1.0 + np.exp(-theta))
        gradient = wins_total - np.sum(games * p, axis=1) - prior * p_virtual
        weights = games * p * (1.0 - p)
        hessian = weights - np.diag(weights.sum(axis=1) + prior * p_virtual * (1.0 - p_virtual))
        if prior == 0.0:
            # Without the prior only differences are identified: pin theta_0 to 0.
            step = np.zeros(size)
            try:
                step[1:] = np.linalg.solve(hessian[1:, 1:], -gradient[1:])
            except np.linalg.LinAlgError:
                raise ValueError(
                    "the battles do not connect every system; ratings are not comparable"
                ) from None
        else:
            step = np.linalg.solve(hessian, -gradient)
        # Backtracking: halve the step until the likelihood does not drop (it is concave).
        scale = 1.0
        candidate = theta + step
        value = log_likelihood(candidate)
        while value < current - 1e-12:
            scale /= 2.0
            if scale < 1e-8:
                return theta
            candidate = theta + scale * step
            value = log_likelihood(candidate)
        theta, previous, current = candidate, current, value
        if np.max(np.abs(scale * step)) < 1e-10 or abs(current - previous) < 1e-13:
            break
    return theta


def _to_elo(theta: np.ndarray) -> np.ndarray:
    return ELO_OFFSET + ELO_SCALE * (theta - theta.mean())


def bradley_terry(
    battles: Sequence[Battle], bootstrap: int = 0, seed: int = 0, prior: float = 0.01
) -> dict[str, Rating]:
    """Bradley-Terry ratings on the Elo scale from ``(model_a, model_b, outcome)`` battles.

    ``outcome`` is ``"a"`` (model_a won), ``"b"``, ``"tie"`` or ``"both_bad"`` (a tie). With
    ``bootstrap > 0`` the battles are resampled with replacement that many times (seeded),
    refitted, and the 2.5/97.5 percentiles give the interval; a system missing from a resample
    is left out of that replicate. Ratings are centred at a mean of 1000. See the module
    docstring for ``prior``.

    >>> r = bradley_terry([("x", "y", "a")] * 3 + [("x", "y", "b")], prior=0)
    >>> round(r["x"].rating - r["y"].rating, 1)  # 400 * log10(0.75 / 0.25)
    190.8
    """
    if prior < 0:
        raise ValueError(f"prior must be >= 0, got {prior}")
    if bootstrap < 0:
        raise ValueError(f"bootstrap must be >= 0, got {bootstrap}")
    systems = _check_battles(battles)
    if not systems:
        return {}
    index = {system: i for i, system in enumerate(systems)}
    value = {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}
    # Identical battles are grouped: a bootstrap resample is then a multinomial draw of counts
    # over the distinct (first, second, score) kinds, independent of the number of battles.
    kinds = Counter((index[a], index[b], value[o]) for a, b, o in battles)
    first = np.array([k[0] for k in kinds], dtype=np.int64)
    second = np.array([k[1] for k in kinds], dtype=np.int64)
    score = np.array([k[2] for k in kinds])
    count = np.array(list(kinds.values()), dtype=float)
    ratings = _to_elo(_fit(first, second, score, count, len(systems), prior))

    played: dict[str, int] = dict.fromkeys(systems, 0)
    won: dict[str, float] = dict.fromkeys(systems, 0.0)
    for (a, b, s), n in kinds.items():
        played[systems[a]] += n
        played[systems[b]] += n
        won[systems[a]] += n * s
        won[systems[b]] += n * (1.0 - s)

    samples: list[list[float]] = [[] for _ in systems]
    if bootstrap:
        rng = np.random.default_rng(seed)
        draws = rng.multinomial(len(battles), count / count.sum(), size=bootstrap)
        for drawn in draws:
            used = drawn > 0
            present = np.unique(np.concatenate([first[used], second[used]]))
            remap = np.full(len(systems), -1, dtype=np.int64)
            remap[present] = np.arange(len(present))
            try:
                theta = _fit(
                    remap[first[used]],
                    remap[second[used]],
                    score[used],
                    drawn[used].astype(float),
                    len(present),
                    prior,
                )
            except ValueError:
                continue  # prior=0 and a resample where someone never lost: no finite fit
            elo = _to_elo(theta)
            for position, system_index in enumerate(present):
                samples[system_index].append(float(elo[position]))

    result: dict[str, Rating] = {}
    for i, system in enumerate(systems):
        if samples[i]:
            low, high = (float(v) for v in np.percentile(samples[i], [2.5, 97.5]))
        else:
            low = high = float(ratings[i])
        result[system] = Rating(
            system, float(ratings[i]), low, high, battles=played[system], wins=won[system]
        )
    return result


def _paired(labels_a: Sequence[Hashable | None], labels_b: Sequence[Hashable | None]) -> list:
    if len(labels_a) != len(labels_b):
        raise ValueError(
            f"the two raters labelled different numbers of items: {len(labels_a)} vs "
            f"{len(labels_b)}"
        )
    return [
        (a, b) for a, b in zip(labels_a, labels_b, strict=True) if a is not None and b is not None
    ]


def agreement_rate(
    labels_a: Sequence[Hashable | None], labels_b: Sequence[Hashable | None]
) -> float:
    """Share of items both raters labelled identically; items either left None are skipped.

    >>> agreement_rate(["A", "B", "tie", None], ["A", "A", "tie", "B"])
    0.6666666666666666
    """
    pairs = _paired(labels_a, labels_b)
    if not pairs:
        raise ValueError("no item was labelled by both raters")
    return sum(1 for a, b in pairs if a == b) / len(pairs)


def cohen_kappa(labels_a: Sequence[Hashable | None], labels_b: Sequence[Hashable | None]) -> float:
    """Cohen's kappa of two raters: ``(p_o - p_e) / (1 - p_e)``.

    Items either rater left None are skipped. When chance agreement is 1 (both raters used one
    and the same label throughout) kappa is undefined and NaN is returned.
    """
    pairs = _paired(labels_a, labels_b)
    if not pairs:
        raise ValueError("no item was labelled by both raters")
    n = len(pairs)
    observed = sum(1 for a, b in pairs if a == b) / n
    count_a = Counter(a for a, _ in pairs)
    count_b = Counter(b for _, b in pairs)
    expected = sum(count_a[label] * count_b[label] for label in count_a) / (n * n)
    if expected == 1.0:
        return math.nan
    return (observed - expected) / (1.0 - expected)


def fleiss_kappa(
    ratings: Sequence[Sequence[int]] | Sequence[Sequence[Hashable | None]],
    *,
    table: bool | None = None,
) -> float:
    """Fleiss' kappa for several raters, as irrCAC's ``CAC.fleiss`` computes it (Gwet's
    generalisation to items with different numbers of ratings).

    ``ratings`` is either a count table (``table=True``: one row per item, one column per
    category, cells the number of raters who chose it) or, per item, the list of labels given
    (``table=False``; None entries are skipped). With ``table=None`` labels that are not all
    integers are read as label lists; all-integer input is ambiguous (a count table, or labels
    1-5?) and must say which it is.

    With ``r_i`` ratings of item i and ``n_ik`` of them in category k:

    * observed agreement ``p_a`` = mean, over items with ``r_i >= 2``, of
      ``sum_k n_ik (n_ik - 1) / (r_i (r_i - 1))``;
    * category shares ``pi_k`` = mean, over every item with a rating, of ``n_ik / r_i`` (each
      item weighs the same, however many ratings it has);
    * chance agreement ``p_e = sum_k pi_k^2``; kappa = ``(p_a - p_e) / (1 - p_e)``.

    With equal rating counts this is the textbook Fleiss' kappa. Items without ratings are
    dropped; if no item has two ratings there is nothing to agree on (ValueError). NaN when
    chance agreement is 1.

    >>> round(fleiss_kappa([["A", "A", "A", "B"], ["A", "B"], ["B", "B", "B"]]), 6)  # -1/35
    -0.028571
    """
    rows = [list(row) for row in ratings]
    as_table = table
    if as_table is None:
        if rows and all(
            isinstance(c, int) and not isinstance(c, bool) for row in rows for c in row
        ):
            raise ValueError(
                "integer ratings are ambiguous: pass table=True for a count table (items x "
                "categories) or table=False for per-item label lists"
            )
        as_table = False
    if as_table:
        counts = np.array(rows, dtype=float)
        if counts.ndim != 2 or (counts < 0).any():
            raise ValueError("a Fleiss table needs one row of non-negative counts per item")
    else:
        labels = sorted({label for row in rows for label in row if label is not None}, key=repr)
        column = {label: j for j, label in enumerate(labels)}
        counts = np.zeros((len(rows), len(labels)))
        for i, row in enumerate(rows):
            for label in row:
                if label is not None:
                    counts[i, column[label]] += 1
    if counts.size == 0:
        raise ValueError("no ratings to compute Fleiss' kappa from")
    per_item = counts.sum(axis=1)
    rated = per_item >= 1
    counts, per_item = counts[rated], per_item[rated]
    paired = per_item >= 2
    if not paired.any():
        raise ValueError("no item has two or more ratings")
    agreement = float(
        (
            (counts[paired] * (counts[paired] - 1)).sum(axis=1)
            / (per_item[paired] * (per_item[paired] - 1))
        ).mean()
    )
    shares = (counts / per_item[:, None]).mean(axis=0)
    chance = float((shares**2).sum())
    if chance >= 1.0 - 1e-15:
        return math.nan
    return (agreement - chance) / (1.0 - chance)


def bootstrap_ratio(
    parts: Sequence[tuple[Sequence[float], Sequence[float]]],
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float | None, float | None, float | None]:
    """A score that is the mean of ratios of sums, with a percentile bootstrap interval.

    Each part is ``(numerators, denominators)``, one entry per item; the score is the mean over
    parts of ``sum(numerators) / sum(denominators)``. A plain mean of item scores is one part
    with denominators 1 (an item without a score has 0 / 0); WritingBench's pooled criteria are
    one part (sum of an item's criterion scores, its number of criteria); LongBench-Write's S̄
    is two parts (S_l and S_q). Items are resampled with replacement ``resamples`` times
    (seeded), all parts together; replicates where a part has no denominator are dropped.
    Returns (score, low, high); (None, None, None) when some part has nothing to average.

    >>> bootstrap_ratio([([1.0, 0.0, 1.0, 1.0], [1, 1, 1, 1])], resamples=0)
    (0.75, 0.75, 0.75)
    """
    if not parts:
        raise ValueError("bootstrap_ratio needs at least one (numerators, denominators) part")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    arrays = [(np.asarray(a, dtype=float), np.asarray(b, dtype=float)) for a, b in parts]
    size = len(arrays[0][0])
    if any(len(a) != size or len(b) != size for a, b in arrays):
        raise ValueError("every part needs one numerator and one denominator per item")
    if any(b.sum() <= 0 for _a, b in arrays):
        return None, None, None
    score = float(np.mean([a.sum() / b.sum() for a, b in arrays]))
    if resamples <= 0 or size < 2:
        return score, score, score
    draws = np.random.default_rng(seed).integers(0, size, size=(resamples, size))
    with np.errstate(invalid="ignore", divide="ignore"):
        replicates = np.mean(
            [a[draws].sum(axis=1) / b[draws].sum(axis=1) for a, b in arrays], axis=0
        )
    replicates = replicates[np.isfinite(replicates)]
    if len(replicates) == 0:
        return score, score, score
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    return score, float(low), float(high)


def ratings_table(ratings: Mapping[str, Rating]) -> list[Rating]:
    """Ratings sorted best first (ties by name), for display."""
    return sorted(ratings.values(), key=lambda r: (-r.rating, r.system))
