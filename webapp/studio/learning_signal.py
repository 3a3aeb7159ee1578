"""The learning-signal diagnostic of a run, read from its stored judgments (a selector).

GRPO learns from the spread of rewards inside a prompt group (the rollouts of one sample at
one step): when every rollout of a group gets the same reward (all lose against a reference
that is too strong, or all win against one that is too weak) the group-relative advantages
are all zero and the group teaches nothing. Dynamic reference scheduling exists to keep
samples where they sometimes win. This module measures that per step:

- ``groups``: the step's prompt groups (distinct samples judged at the step);
- ``signal_groups``: groups with at least two valid rewards that are not all equal;
- ``signal_share``: ``signal_groups / groups`` (None at a step without a judged group);
- ``win_rate_by_tier``: per reference tier, the share of the step's valid judgments the
  policy won (ties and losses are not wins; invalid judgments are left out).

A group whose rewards are all missing (judge failures) or that has a single valid reward
counts as a group without signal: it produced no advantage either. Rewards are the stored
pairwise (or pointwise) judge rewards, not the total reward with extra terms. With the
reward position "both" each rollout has two judgment rows carrying the same reward; that
does not change whether a group's rewards vary, and counts both rows in the tier win rate.

Two aggregate queries per run, whatever its length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Max, Min, Q

from webapp.studio.models import Judgment, Run

# Rewards closer than this are equal (a pointwise reward is a float mapped from a grade).
REWARD_TOLERANCE = 1e-9


@dataclass
class StepSignal:
    step: int
    groups: int = 0
    signal_groups: int = 0
    win_rate_by_tier: dict[int, float | None] = field(default_factory=dict)
    judgments_by_tier: dict[int, int] = field(default_factory=dict)

    @property
    def zero_variance_groups(self) -> int:
        return self.groups - self.signal_groups

    @property
    def signal_share(self) -> float | None:
        return self.signal_groups / self.groups if self.groups else None

    @property
    def zero_variance_share(self) -> float | None:
        share = self.signal_share
        return None if share is None else 1.0 - share


def _win_filter() -> Q:
    return Q(verdict=Judgment.Verdict.WIN)


def _valid_filter() -> Q:
    return ~Q(verdict=Judgment.Verdict.INVALID)


def learning_signal(run: Run | int) -> list[StepSignal]:
    """Per step of ``run`` (ascending), its prompt groups with and without reward variance
    and the policy's win rate per reference tier."""
    run_id = run.pk if isinstance(run, Run) else int(run)
    judgments = Judgment.objects.filter(run_id=run_id).order_by()
    steps: dict[int, StepSignal] = {}
    groups = judgments.values("step", "instruction_id").annotate(
        low=Min("reward"), high=Max("reward"), valid=Count("reward")
    )
    for row in groups:
        signal = steps.setdefault(row["step"], StepSignal(row["step"]))
        signal.groups += 1
        if row["valid"] >= 2 and row["high"] - row["low"] > REWARD_TOLERANCE:
            signal.signal_groups += 1
    tiers = (
        judgments.filter(reference_tier__isnull=False)
        .values("step", "reference_tier")
        .annotate(wins=Count("id", filter=_win_filter()), valid=Count("id", filter=_valid_filter()))
    )
    for row in tiers:
        signal = steps.setdefault(row["step"], StepSignal(row["step"]))
        tier = int(row["reference_tier"])
        signal.judgments_by_tier[tier] = row["valid"]
        signal.win_rate_by_tier[tier] = row["wins"] / row["valid"] if row["valid"] else None
    return [steps[step] for step in sorted(steps)]


def signal_tiers(signals: list[StepSignal]) -> list[int]:
    return sorted({tier for s in signals for tier in s.win_rate_by_tier})


def learning_signal_charts(signals: list[StepSignal]) -> dict[str, Any]:
    """Series for the run page: the share of groups with signal (and without), and the win
    rate per reference tier."""
    return {
        "share": [
            {
                "label": "groups with reward variance",
                "points": [(s.step, s.signal_share) for s in signals],
            },
            {
                "label": "zero-variance groups",
                "points": [(s.step, s.zero_variance_share) for s in signals],
            },
        ],
        "tier_win_rates": [
            {
                "label": f"tier {tier}",
                "points": [(s.step, s.win_rate_by_tier.get(tier)) for s in signals],
            }
            for tier in signal_tiers(signals)
        ],
    }


def learning_signal_summary(signals: list[StepSignal]) -> dict[str, float | int | None]:
    """Over the whole run: groups, groups with signal and their share."""
    groups = sum(s.groups for s in signals)
    signal_groups = sum(s.signal_groups for s in signals)
    return {
        "groups": groups,
        "signal_groups": signal_groups,
        "signal_share": signal_groups / groups if groups else None,
    }


# -- the run's per-step metrics export ---------------------------------------------------------

SIGNAL_COLUMNS = ("groups", "signal_groups", "zero_variance_groups", "signal_share")


def run_metrics_export(run: Run) -> dict[str, Any]:
    """The run's per-step metrics as one table: every stored step metric (the trainer's
    ``StepMetrics``, ``extra`` flattened as ``extra.<name>``) with the learning signal
    (``groups``, ``signal_groups``, ``zero_variance_groups``, ``signal_share`` and
    ``win_rate_tier_<t>`` per reference tier). Returns ``{"columns": [...], "rows": [...]}``,
    rows as dicts (None where a step has no value)."""
    from webapp.studio.models import StepMetric

    signals = {s.step: s for s in learning_signal(run)}
    tiers = signal_tiers(list(signals.values()))
    metric_rows = dict(
        StepMetric.objects.filter(run=run).order_by("step").values_list("step", "metrics")
    )
    metric_columns: list[str] = []
    flattened: dict[int, dict[str, Any]] = {}
    for step, metrics in metric_rows.items():
        flat: dict[str, Any] = {}
        for key, value in (metrics or {}).items():
            if key == "step":
                continue
            if key == "extra" and isinstance(value, dict):
                flat.update({f"extra.{k}": v for k, v in value.items()})
            else:
                flat[key] = value
        for key in flat:
            if key not in metric_columns:
                metric_columns.append(key)
        flattened[step] = flat
    # PostgreSQL's jsonb keeps no key order: a stable order (the trainer's metrics, then
    # ``extra.*``, each alphabetical) makes the export the same on every database.
    metric_columns.sort(key=lambda key: (key.startswith("extra."), key))
    tier_columns = [f"win_rate_tier_{tier}" for tier in tiers]
    columns = ["step", *metric_columns, *SIGNAL_COLUMNS, *tier_columns]
    rows = []
    for step in sorted(set(flattened) | set(signals)):
        row: dict[str, Any] = {"step": step, **{c: None for c in columns[1:]}}
        row.update(flattened.get(step, {}))
        signal = signals.get(step)
        if signal is not None:
            row.update(
                groups=signal.groups,
                signal_groups=signal.signal_groups,
                zero_variance_groups=signal.zero_variance_groups,
                signal_share=signal.signal_share,
            )
            for tier in tiers:
                row[f"win_rate_tier_{tier}"] = signal.win_rate_by_tier.get(tier)
        rows.append(row)
    return {"columns": columns, "rows": rows}
