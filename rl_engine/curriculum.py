"""Dynamic reference scheduling: which reference each training sample is compared against.

Every training instruction has references in ascending quality, its *tiers* (0-based: tier 0
is the weakest, ``num_tiers - 1`` the best). A sample starts at tier 0. In the dynamic
curriculum it moves up one tier in a step when at least ``min_wins`` of that step's rollouts
beat the current reference (outcome WIN, see :mod:`rl_engine.outcomes`); beating the top
reference marks it *mastered* and it stays there.

The state lives behind the :class:`CurriculumStore` protocol so that the trainer, the web app
and several judge workers can share it: :class:`InMemoryStore` here, a PostgreSQL store in the
web app. The rules every store keeps (and that the authors' JSON file did not):

- recording an outcome is atomic per sample;
- an outcome whose step is not newer than the sample's last recorded step changes nothing, so a
  retried or duplicated step never advances twice;
- a sample moves at most one tier per step, and never past the top tier.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol, runtime_checkable

from rl_engine.outcomes import Outcome, OutcomeCounts

__all__ = [
    "CurriculumStore",
    "InMemoryStore",
    "ReferenceScheduler",
    "StepOutcome",
    "Strategy",
    "TierState",
    "Transition",
    "apply_outcome",
    "dump_snapshot",
    "load_snapshot",
    "outcome_from_rewards",
    "step_outcome",
]

Strategy = Literal["dynamic", "static", "random"]
STRATEGIES: tuple[str, ...] = ("dynamic", "static", "random")


@dataclass(frozen=True)
class TierState:
    """Where one sample stands: its current tier, how many it has, and the last step recorded.

    ``last_step`` is -1 when no step was ever recorded. ``mastered`` is only possible at the
    top tier.
    """

    tier: int
    num_tiers: int
    mastered: bool = False
    last_step: int = -1

    def __post_init__(self) -> None:
        if self.num_tiers < 1:
            raise ValueError(f"num_tiers must be at least 1 (one reference), got {self.num_tiers}")
        if not 0 <= self.tier < self.num_tiers:
            raise ValueError(f"tier {self.tier} is outside 0..{self.num_tiers - 1}")
        if self.mastered and self.tier != self.num_tiers - 1:
            raise ValueError(
                f"a sample can only be mastered at the top tier {self.num_tiers - 1}, "
                f"not at tier {self.tier}"
            )
        if self.last_step < -1:
            raise ValueError(f"last_step must be -1 (never) or a step >= 0, got {self.last_step}")

    @classmethod
    def initial(cls, num_tiers: int) -> TierState:
        """The state of a sample that has not been trained on: tier 0, never recorded."""
        return cls(tier=0, num_tiers=num_tiers, mastered=False, last_step=-1)

    @property
    def top(self) -> int:
        """The index of the best reference."""
        return self.num_tiers - 1


@dataclass(frozen=True)
class StepOutcome:
    """How one sample's rollouts fared against its reference in one step.

    ``advance`` is the scheduler's decision (dynamic curriculum and enough wins); the counts
    are kept for every strategy so that the web app can show them.
    """

    sample_id: str
    step: int
    wins: int
    ties: int
    losses: int
    invalid: int
    advance: bool

    def __post_init__(self) -> None:
        if self.step < 0:
            raise ValueError(f"step must be >= 0, got {self.step} for sample {self.sample_id!r}")
        for name in ("wins", "ties", "losses", "invalid"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 for sample {self.sample_id!r}")

    @property
    def rollouts(self) -> int:
        return self.wins + self.ties + self.losses + self.invalid


@dataclass(frozen=True)
class Transition:
    """A sample moved from one tier to the next in a step.

    Reaching mastery (beating the top reference) is reported once, as a transition whose
    ``from_tier`` equals ``to_tier`` with ``mastered=True``.
    """

    sample_id: str
    step: int
    from_tier: int
    to_tier: int
    mastered: bool = False


@runtime_checkable
class CurriculumStore(Protocol):
    """Where tiers live. Implementations must be safe for concurrent recorders."""

    def read_tiers(self, sample_ids: Sequence[str]) -> dict[str, TierState]:
        """The states of many samples in one call; an unknown sample is a ``KeyError``."""
        ...

    def record_outcomes(self, outcomes: Sequence[StepOutcome]) -> list[Transition]:
        """Apply each outcome atomically (see :func:`apply_outcome`); return the moves made."""
        ...

    def snapshot(self) -> dict[str, TierState]:
        """Every sample's state, for a checkpoint."""
        ...

    def restore(self, snapshot: Mapping[str, TierState]) -> None:
        """Put the states of a checkpoint back (resume rolls the curriculum back with it)."""
        ...


def apply_outcome(state: TierState, outcome: StepOutcome) -> tuple[TierState, Transition | None]:
    """The single rule every store applies to one outcome; pure, so stores can share it.

    A step that is not newer than ``state.last_step`` changes nothing. Otherwise the step is
    recorded; with ``advance`` the sample moves up one tier, or at the top tier becomes mastered
    (once). Returns the new state and the transition made, if any.

    >>> s = TierState.initial(2)
    >>> s, t = apply_outcome(s, StepOutcome("a", 0, 1, 0, 0, 0, advance=True))
    >>> s.tier, t.from_tier, t.to_tier
    (1, 0, 1)
    >>> s, t = apply_outcome(s, StepOutcome("a", 0, 1, 0, 0, 0, advance=True))  # replayed
    >>> s.tier, t is None
    (1, True)
    >>> s, t = apply_outcome(s, StepOutcome("a", 1, 1, 0, 0, 0, advance=True))
    >>> s.tier, s.mastered, t.mastered
    (1, True, True)
    """
    if outcome.step <= state.last_step:
        return state, None
    if not outcome.advance or state.mastered:
        return replace(state, last_step=outcome.step), None
    if state.tier < state.top:
        new = replace(state, tier=state.tier + 1, last_step=outcome.step)
        return new, Transition(outcome.sample_id, outcome.step, state.tier, state.tier + 1)
    new = replace(state, mastered=True, last_step=outcome.step)
    return new, Transition(outcome.sample_id, outcome.step, state.tier, state.tier, mastered=True)


def dump_snapshot(snapshot: Mapping[str, TierState]) -> dict[str, dict[str, int | bool]]:
    """A snapshot as plain JSON-safe data, for checkpoints."""
    return {
        sample_id: {
            "tier": state.tier,
            "num_tiers": state.num_tiers,
            "mastered": state.mastered,
            "last_step": state.last_step,
        }
        for sample_id, state in sorted(snapshot.items())
    }


def load_snapshot(data: Mapping[str, Any], source: str = "snapshot") -> dict[str, TierState]:
    """The inverse of :func:`dump_snapshot`; errors name ``source``, the sample and the field.

    >>> load_snapshot(dump_snapshot({"s": TierState(1, 3, False, 7)}))
    {'s': TierState(tier=1, num_tiers=3, mastered=False, last_step=7)}
    """
    states: dict[str, TierState] = {}
    for sample_id, entry in data.items():
        if not isinstance(entry, Mapping):
            raise ValueError(f"{source}: sample {sample_id!r} is not an object")
        values: dict[str, Any] = {}
        for name, kind in (
            ("tier", int),
            ("num_tiers", int),
            ("mastered", bool),
            ("last_step", int),
        ):
            value = entry.get(name)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ValueError(
                    f"{source}: sample {sample_id!r} field {name!r} must be {kind.__name__}, "
                    f"got {value!r}"
                )
            values[name] = value
        try:
            states[str(sample_id)] = TierState(**values)
        except ValueError as error:
            raise ValueError(f"{source}: sample {sample_id!r}: {error}") from None
    return states


class InMemoryStore:
    """A thread-safe curriculum store in one process's memory.

    ``num_tiers`` maps every sample id to its number of references. The store also keeps every
    applied outcome (``history``), which tests and small demos use; a replayed step is not
    appended twice.
    """

    def __init__(self, num_tiers: Mapping[str, int]) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, TierState] = {}
        self._initial_tiers: dict[str, int] = {}
        for sample_id, count in num_tiers.items():
            if count < 1:
                raise ValueError(f"sample {sample_id!r} needs at least one reference, got {count}")
            self._states[sample_id] = TierState.initial(count)
            self._initial_tiers[sample_id] = count
        self._history: list[StepOutcome] = []

    def read_tiers(self, sample_ids: Sequence[str]) -> dict[str, TierState]:
        with self._lock:
            missing = [sample_id for sample_id in sample_ids if sample_id not in self._states]
            if missing:
                raise KeyError(f"unknown sample ids in the curriculum: {missing[:5]}")
            return {sample_id: self._states[sample_id] for sample_id in sample_ids}

    def record_outcomes(self, outcomes: Sequence[StepOutcome]) -> list[Transition]:
        transitions: list[Transition] = []
        with self._lock:
            missing = [o.sample_id for o in outcomes if o.sample_id not in self._states]
            if missing:
                # Nothing is applied when any id is unknown: a typo must not half-record a step.
                raise KeyError(f"unknown sample ids in the curriculum: {missing[:5]}")
            for outcome in outcomes:
                state = self._states[outcome.sample_id]
                new_state, transition = apply_outcome(state, outcome)
                if new_state is state:
                    continue
                self._states[outcome.sample_id] = new_state
                self._history.append(outcome)
                if transition is not None:
                    transitions.append(transition)
        return transitions

    def snapshot(self) -> dict[str, TierState]:
        with self._lock:
            return dict(self._states)

    def restore(self, snapshot: Mapping[str, TierState]) -> None:
        """Replace the whole state with ``snapshot``.

        Samples the store knows but the snapshot lacks go back to their initial state; samples
        only in the snapshot are added. Outcomes newer than a sample's restored ``last_step``
        are dropped from the history.
        """
        states: dict[str, TierState] = {}
        for sample_id, state in snapshot.items():
            if not isinstance(state, TierState):
                raise TypeError(f"snapshot entry {sample_id!r} is not a TierState: {state!r}")
            states[sample_id] = state
        with self._lock:
            for sample_id, count in self._initial_tiers.items():
                states.setdefault(sample_id, TierState.initial(count))
            self._states = states
            self._history = [
                o
                for o in self._history
                if o.sample_id in states and o.step <= states[o.sample_id].last_step
            ]

    @property
    def history(self) -> list[StepOutcome]:
        """Every applied outcome, in the order applied."""
        with self._lock:
            return list(self._history)


def step_outcome(
    sample_id: str,
    step: int,
    outcomes: Sequence[Outcome | float | None],
    *,
    min_wins: int,
    dynamic: bool,
) -> StepOutcome:
    """Count one sample's rollout outcomes in a step (WIN / TIE / LOSS / INVALID).

    A pairwise reward (1.0, 0.5, 0.0 or None) is read as the outcome it stands for; any other
    number is a ``ValueError``: the scheduler must get the rollout's standing against its
    reference, not a weighted total, or a "win" would mean something else.
    """
    read: list[Outcome] = []
    for index, value in enumerate(outcomes):
        if isinstance(value, Outcome):
            read.append(value)
            continue
        try:
            read.append(Outcome.from_reward(value))
        except (TypeError, ValueError):
            raise ValueError(
                f"reward {value!r} of rollout {index} for sample {sample_id!r} at step {step} "
                "is not a pairwise reward (1.0, 0.5, 0.0 or None); pass the pairwise term"
            ) from None
    counts = OutcomeCounts.of(read)
    return StepOutcome(
        sample_id=sample_id,
        step=step,
        wins=counts.wins,
        ties=counts.ties,
        losses=counts.losses,
        invalid=counts.invalid,
        advance=dynamic and counts.wins >= min_wins,
    )


# The name the scheduler had for it when it only took rewards.
outcome_from_rewards = step_outcome


def _random_tier(seed: int, sample_id: str, step: int, num_tiers: int) -> int:
    # A keyed hash instead of the global RNG: the tier depends only on (seed, sample, step), so
    # it is the same in every worker process and after a resume.
    digest = hashlib.blake2b(
        f"{seed}\x1f{sample_id}\x1f{step}".encode(), digest_size=8, person=b"rl-tier"
    ).digest()
    return int.from_bytes(digest, "big") % num_tiers


class ReferenceScheduler:
    """Chooses each sample's reference tier and records how its rollouts fared.

    Strategies:

    - ``"dynamic"`` (the method): the store's tier; up one tier when at least ``min_wins``
      rollouts of a step won.
    - ``"static"``: always ``static_tier`` (default the best reference). Negative values count
      from the top (-1 is the best); a tier past a sample's top is clamped to its top.
    - ``"random"``: a tier drawn uniformly per (``seed``, sample, step), reproducible.

    Static and random never advance, but their outcomes are still recorded.
    """

    def __init__(
        self,
        store: CurriculumStore,
        strategy: Strategy | str = "dynamic",
        min_wins: int = 1,
        seed: int = 0,
        static_tier: int | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}")
        if min_wins < 1:
            raise ValueError(f"min_wins must be at least 1, got {min_wins}")
        if static_tier is not None and strategy != "static":
            raise ValueError(f"static_tier is only used with strategy 'static', not {strategy!r}")
        self.store = store
        self.strategy = strategy
        self.min_wins = min_wins
        self.seed = seed
        self.static_tier = static_tier

    def _static(self, state: TierState) -> int:
        if self.static_tier is None:
            return state.top
        tier = self.static_tier if self.static_tier >= 0 else state.num_tiers + self.static_tier
        return min(max(tier, 0), state.top)

    def current_tiers(self, sample_ids: Sequence[str], step: int = 0) -> dict[str, int]:
        """The reference tier each sample is compared against at ``step``."""
        states = self.store.read_tiers(sample_ids)
        if self.strategy == "dynamic":
            return {sample_id: state.tier for sample_id, state in states.items()}
        if self.strategy == "static":
            return {sample_id: self._static(state) for sample_id, state in states.items()}
        return {
            sample_id: _random_tier(self.seed, sample_id, step, state.num_tiers)
            for sample_id, state in states.items()
        }

    def record_step(
        self, step: int, rewards: Mapping[str, Sequence[Outcome | float | None]]
    ) -> list[Transition]:
        """Record one step: one outcome per sample, written in a single store call.

        ``rewards`` maps each sample id to its rollouts' outcomes in this step (an
        :class:`~rl_engine.outcomes.Outcome`, or the pairwise reward standing for one).
        Returns the transitions the store made (none for static and random). Recording a step
        again changes nothing, so all of a sample's rollouts in a step must come in one call:
        a later call for the same sample and step is ignored.
        """
        outcomes = [
            step_outcome(
                sample_id,
                step,
                values,
                min_wins=self.min_wins,
                dynamic=self.strategy == "dynamic",
            )
            for sample_id, values in rewards.items()
        ]
        if not outcomes:
            return []
        return self.store.record_outcomes(outcomes)
