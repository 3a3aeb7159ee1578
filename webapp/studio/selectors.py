"""Read queries for the studio pages.

Each selector costs a fixed number of SQL queries whatever the data size: related rows come
through ``select_related``/``prefetch_related``, counts through aggregates or subqueries, and
long lists are paginated by the caller. The view tests pin those counts at two data sizes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from rl_engine.models import KNOWN_MODELS
from webapp.studio.models import (
    AuditLog,
    CurriculumState,
    CurriculumTransition,
    Dataset,
    Instruction,
    Judgment,
    PipelineJob,
    Reference,
    Run,
    Selection,
    SelectionEntry,
    StepMetric,
)
from webapp.studio.permissions import is_researcher
from webapp.studio.token_usage import endpoint_cost

# StepMetric.metrics keys drawn on the run page, as (key, label).
REWARD_SERIES = (("reward_mean", "reward (total)"), ("pairwise_reward_mean", "pairwise reward"))
RATE_SERIES = (
    ("win_rate", "win"),
    ("tie_rate", "tie"),
    ("loss_rate", "loss"),
    ("invalid_rate", "invalid"),
)
LENGTH_SERIES = (("mean_completion_words", "words per rollout"),)
LATENCY_SERIES = (("judge_latency_s", "judge latency (s)"),)
CHART_KEYS = [key for group in (REWARD_SERIES, RATE_SERIES, LENGTH_SERIES, LATENCY_SERIES)
              for key, _ in group] + ["tier_histogram", "mastered"]  # fmt: skip


def _count(model: type, **filters: Any) -> Subquery:
    """A correlated COUNT(*) as a subquery: cheaper than a JOIN + GROUP BY on big tables."""
    return Subquery(
        model.objects.filter(**filters)
        .order_by()
        .values(*filters.keys())
        .annotate(n=Count("*"))
        .values("n")[:1],
        output_field=IntegerField(),
    )


def dashboard_summary() -> dict[str, Any]:
    """Counts per run status, the dataset count and the ten newest runs (3 queries)."""
    run_counts = dict.fromkeys(Run.Status.values, 0)
    for row in Run.objects.order_by().values("status").annotate(n=Count("id")):
        run_counts[row["status"]] = row["n"]
    return {
        "dataset_count": Dataset.objects.count(),
        "run_counts": run_counts,
        "recent_runs": list(Run.objects.select_related("dataset", "owner")[:10]),
    }


def dataset_list() -> QuerySet[Dataset]:
    """Datasets, newest first, with their instruction and run counts."""
    return Dataset.objects.select_related("created_by").annotate(
        instruction_count=Coalesce(_count(Instruction, dataset=OuterRef("pk")), 0),
        run_count=Coalesce(_count(Run, dataset=OuterRef("pk")), 0),
    )


def dataset_instructions(
    dataset: Dataset, *, search: str = "", split: str = ""
) -> QuerySet[Instruction]:
    """The dataset's instructions with their references (ascending tier) prefetched;
    ``search`` matches the id, the prompt or the domain (case-insensitive), ``split`` keeps
    one split."""
    instructions = Instruction.objects.filter(dataset=dataset)
    if search:
        instructions = instructions.filter(
            Q(external_id__icontains=search)
            | Q(prompt__icontains=search)
            | Q(domain__icontains=search)
        )
    if split:
        instructions = instructions.filter(split=split)
    return instructions.order_by("id").prefetch_related(
        Prefetch(
            "references",
            queryset=Reference.objects.order_by(F("tier").asc(nulls_last=True), "id"),
        )
    )


def dataset_selections(dataset: Dataset) -> QuerySet[Selection]:
    return Selection.objects.filter(dataset=dataset).annotate(
        entry_count=Coalesce(_count(SelectionEntry, selection=OuterRef("pk")), 0),
        chosen_count=Coalesce(
            Subquery(
                SelectionEntry.objects.filter(selection=OuterRef("pk"), chosen=True)
                .order_by()
                .values("selection")
                .annotate(n=Count("*"))
                .values("n")[:1],
                output_field=IntegerField(),
            ),
            0,
        ),
    )


def dataset_jobs(dataset: Dataset) -> QuerySet[PipelineJob]:
    """The dataset's pipeline jobs (generation, scoring, selection, tiers), newest first."""
    return PipelineJob.objects.filter(dataset=dataset).select_related("owner")


def dataset_job_rows(dataset: Dataset, limit: int = 10) -> list[PipelineJob]:
    """The dataset's latest ``limit`` jobs for the jobs table, with every other job of their
    groups (a chain is never cut): newest group (or lone job) first, a group's jobs in the
    order they were created. The first job of a group has ``group_first`` set, and each job
    its inputs prefetched (``waiting_for``)."""
    jobs = PipelineJob.objects.filter(dataset=dataset).select_related("owner")
    latest = list(jobs[:limit])
    groups = {job.group for job in latest if job.group is not None}
    rows = {job.pk: job for job in latest}
    if groups:
        rows |= {job.pk: job for job in jobs.filter(group__in=groups)}
    shown = list(
        PipelineJob.objects.filter(pk__in=rows)
        .select_related("owner")
        .prefetch_related("depends_on")
        .order_by("pk")
    )
    newest: dict[object, int] = {}
    for job in shown:
        key = job.group or job.pk
        newest[key] = max(newest.get(key, 0), job.pk)
    shown.sort(key=lambda job: (-newest[job.group or job.pk], job.pk))
    seen: set[object] = set()
    for job in shown:
        job.group_first = job.group is not None and job.group not in seen  # type: ignore[attr-defined]
        seen.add(job.group)
    return shown


def jobs_active(jobs: list[PipelineJob]) -> bool:
    """Whether the jobs table should keep polling: a job waits, is queued or runs."""
    return any(job.status in ("waiting", "queued", "running") for job in jobs)


def dataset_runs(dataset: Dataset) -> QuerySet[Run]:
    return Run.objects.filter(dataset=dataset).select_related("owner")


def selection_summary(selection: Selection) -> dict[str, Any]:
    """Learning potential of every entry and of the chosen ones, for the histogram (1 query)."""
    rows = SelectionEntry.objects.filter(selection=selection).values_list(
        "learning_potential", "chosen"
    )
    potentials, chosen = [], []
    for potential, is_chosen in rows:
        potentials.append(potential)
        if is_chosen:
            chosen.append(potential)
    return {"potentials": potentials, "chosen_potentials": chosen, "chosen_count": len(chosen)}


def selection_entries(
    selection: Selection, *, chosen_only: bool = False
) -> QuerySet[SelectionEntry]:
    """Entries, highest learning potential first, with their instruction."""
    entries = SelectionEntry.objects.filter(selection=selection).select_related("instruction")
    if chosen_only:
        entries = entries.filter(chosen=True)
    return entries.order_by(F("learning_potential").desc(nulls_last=True), "id")


def run_list(*, status: str | None = None) -> QuerySet[Run]:
    runs = Run.objects.select_related("dataset", "owner")
    if status:
        runs = runs.filter(status=status)
    return runs


def run_detail(pk: int) -> Run:
    return Run.objects.select_related("dataset", "owner", "selection").get(pk=pk)


def run_curriculum_summary(run: Run) -> dict[str, Any]:
    """How many samples sit at each tier now, and how many are mastered (1 query)."""
    tiers: dict[int, int] = {}
    mastered = total = 0
    rows = (
        CurriculumState.objects.filter(run=run)
        .order_by()
        .values("tier", "mastered")
        .annotate(n=Count("id"))
    )
    for row in rows:
        tiers[row["tier"]] = tiers.get(row["tier"], 0) + row["n"]
        total += row["n"]
        if row["mastered"]:
            mastered += row["n"]
    return {"tiers": sorted(tiers.items()), "mastered": mastered, "samples": total}


def run_judging_summary(run: Run) -> dict[str, Any]:
    """What the run's judge did and cost (2 queries): judge calls, requests (re-asks and
    retries included), tokens in total and per judged step, the share without a verdict, and
    the last step's win rate — None ("unknown") when that step had no verdict at all."""
    totals = Judgment.objects.filter(run=run).aggregate(
        calls=Count("id"),
        invalid=Count("id", filter=Q(verdict=Judgment.Verdict.INVALID)),
        steps=Count("step", distinct=True),
        attempts=Sum("attempts"),
        prompt_tokens=Sum("prompt_tokens"),
        completion_tokens=Sum("completion_tokens"),
    )
    calls, steps = totals["calls"], totals["steps"]
    prompt, completion = totals["prompt_tokens"] or 0, totals["completion_tokens"] or 0
    last = (
        StepMetric.objects.filter(run=run)
        .order_by("-step")
        .values_list("step", "metrics__win_rate", "metrics__invalid_rate")
        .first()
    )
    cost = endpoint_cost(run.judge_endpoint, prompt, completion)
    return {
        "calls": calls,
        "attempts": totals["attempts"] or 0,
        "invalid_rate": totals["invalid"] / calls if calls else None,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "tokens": prompt + completion,
        "tokens_per_step": (prompt + completion) / steps if steps else None,
        # At the judge endpoint's declared price; None when it declares none.
        "cost": cost,
        "cost_per_step": cost / steps if cost is not None and steps else None,
        "last_step": last[0] if last else None,
        "last_win_rate": last[1] if last else None,
        "last_invalid_rate": last[2] if last else None,
    }


def run_charts(run: Run) -> dict[str, Any]:
    """Series for the run page's charts from the run's step metrics (1 query).

    Only the keys the charts draw are read from the JSON column, so a metrics blob with
    many extras costs no more to chart.
    """
    rows = list(
        StepMetric.objects.filter(run=run)
        .order_by("step")
        .values_list("step", *[f"metrics__{key}" for key in CHART_KEYS])
    )
    column = {key: index + 1 for index, key in enumerate(CHART_KEYS)}

    def series(group: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
        return [
            {"label": label, "points": [(row[0], row[column[key]]) for row in rows]}
            for key, label in group
        ]

    steps = [row[0] for row in rows]
    histograms = [row[column["tier_histogram"]] or [] for row in rows]
    return {
        "steps": len(rows),
        "reward": series(REWARD_SERIES),
        "rates": series(RATE_SERIES),
        "length": series(LENGTH_SERIES),
        "latency": series(LATENCY_SERIES),
        "tier_steps": steps,
        "tier_histograms": histograms,
    }


def run_recent_audit(run: Run, limit: int = 10) -> list[AuditLog]:
    return list(AuditLog.objects.filter(run=run).select_related("actor", "instruction")[:limit])


SAMPLE_FILTERS = ("all", "stuck", "mastered", "climbing")


def progression_samples(
    run: Run, *, show: str = "all", stuck_steps: int = 20
) -> QuerySet[CurriculumState]:
    """The run's samples with the step of their last tier change (``last_change``, -1 if none).

    ``show``: "stuck" keeps samples not mastered whose tier has not moved for ``stuck_steps``
    steps of the run; "mastered" those that beat their best reference; "climbing" those that
    moved at least once and are not mastered. The filters are ``[NOT] EXISTS`` on the
    transitions (PostgreSQL runs them as anti/semi joins); the ``last_change`` annotation is
    only computed for the rows of the page shown.
    """
    transitions = CurriculumTransition.objects.filter(
        run=run, instruction=OuterRef("instruction_id")
    )
    last_change = Subquery(
        transitions.order_by("-step", "-id").values("step")[:1], output_field=IntegerField()
    )
    states = (
        CurriculumState.objects.filter(run=run)
        .select_related("instruction")
        .annotate(last_change=Coalesce(last_change, Value(-1)))
        .order_by("instruction_id")
    )
    if show == "stuck":
        # Stuck: no change after the step stuck_steps back (never-moved samples count from 0).
        threshold = run.current_step - stuck_steps
        if threshold < 0:
            return states.none()
        states = states.filter(mastered=False).exclude(
            Exists(transitions.filter(step__gt=threshold))
        )
    elif show == "mastered":
        states = states.filter(mastered=True)
    elif show == "climbing":
        states = states.filter(mastered=False).filter(Exists(transitions))
    return states


def run_rollout_judgments(run: Run) -> QuerySet[Judgment]:
    """One judgment row per rollout of ``run``, to count rollouts by outcome.

    With the reward position "both" a rollout has two rows (one per order) carrying the same
    outcome; only the one with the policy shown second is kept then.
    """
    rows = Judgment.objects.filter(run=run)
    if (run.config or {}).get("reward_position") == "both":
        rows = rows.filter(position="second")
    return rows


def sample_progression(run: Run, instruction: Instruction, *, rollouts: int = 8) -> dict[str, Any]:
    """Everything the sample page shows (5 queries): the curriculum state, the tier timeline,
    the references, the latest rollouts with their verdicts and rationales, verdicts per step."""
    state = CurriculumState.objects.filter(run=run, instruction=instruction).first()
    transitions = list(
        CurriculumTransition.objects.filter(run=run, instruction=instruction).order_by("step", "id")
    )
    references = list(
        Reference.objects.filter(instruction=instruction).order_by(
            F("tier").asc(nulls_last=True), "id"
        )
    )
    latest = list(
        Judgment.objects.filter(run=run, instruction=instruction).order_by("-step", "-id")[
            :rollouts
        ]
    )
    per_step = (
        run_rollout_judgments(run)
        .filter(instruction=instruction)
        .order_by("step")
        .values("step")
        .annotate(
            wins=Count("id", filter=Q(verdict=Judgment.Verdict.WIN)),
            ties=Count("id", filter=Q(verdict=Judgment.Verdict.TIE)),
            losses=Count("id", filter=Q(verdict=Judgment.Verdict.LOSS)),
            invalid=Count("id", filter=Q(verdict=Judgment.Verdict.INVALID)),
        )
    )
    verdicts = list(per_step)
    start_tier = transitions[0].from_tier if transitions else (state.tier if state else 0)
    points = [(0.0, float(start_tier))] + [(float(t.step), float(t.to_tier)) for t in transitions]
    by_tier = {ref.tier: ref for ref in references if ref.tier is not None}
    current = by_tier.get(state.tier) if state else None
    return {
        "state": state,
        "transitions": transitions,
        "timeline": points,
        "references": references,
        "current_reference": current,
        "latest_judgments": latest,
        "verdicts_per_step": verdicts[-50:],
        "steps_judged": len(verdicts),
        "next_tier": max(by_tier, default=-1) + 1,
    }


# -- the new-run form's time estimate ---------------------------------------------------------

ESTIMATE_MAX_RUNS = 20
"""How many of the latest similar finished runs the estimate reads."""


def step_time_estimate(
    *,
    policy: str,
    num_generations: int,
    prompts_per_step: int,
    max_completion_tokens: int,
    max_steps: int | None = None,
) -> dict[str, Any]:
    """How long a run with these rollout sizes takes here, from what this instance measured:
    the median ``step_seconds`` over the steps of the latest succeeded runs with the same
    policy, group size, prompts per step and rollout length (2 queries).

    Returns ``{"median_s": float | None, "runs": int, "steps": int, "total_s": float | None}``;
    ``median_s`` is None when no such run finished yet."""
    runs = list(
        Run.objects.filter(
            status=Run.Status.SUCCEEDED,
            config__policy=policy,
            config__num_generations=num_generations,
            config__prompts_per_step=prompts_per_step,
            config__max_completion_tokens=max_completion_tokens,
        )
        .order_by("-finished_at", "-pk")
        .values_list("pk", flat=True)[:ESTIMATE_MAX_RUNS]
    )
    measured = [
        (run_id, float(value))
        for run_id, value in StepMetric.objects.filter(run_id__in=runs).values_list(
            "run_id", "metrics__step_seconds"
        )
        if isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    ]
    seconds = sorted(value for _, value in measured)
    if not seconds:
        return {"median_s": None, "runs": 0, "steps": 0, "total_s": None}
    middle = len(seconds) // 2
    median = seconds[middle] if len(seconds) % 2 else (seconds[middle - 1] + seconds[middle]) / 2
    return {
        "median_s": median,
        "runs": len({run_id for run_id, _ in measured}),
        "steps": len(seconds),
        "total_s": median * max_steps if max_steps else None,
    }


def clonable_runs(user: Any) -> QuerySet[Run]:
    """The runs ``user`` may copy into a new run: those they may see. Every researcher sees
    every run of the instance (the run list and run pages are not per owner), so this is the
    run list; anyone else sees none."""
    if not is_researcher(user):
        return Run.objects.none()
    return Run.objects.select_related("dataset").order_by("-created_at", "-pk")


POLICY_SUGGESTIONS = 20


def policy_suggestions() -> list[str]:
    """Policies to offer in the form: the known model names, then the final models of the
    latest finished runs whose folder this process can see (1 query)."""
    names = list(KNOWN_MODELS)
    runs = (
        Run.objects.filter(status=Run.Status.SUCCEEDED)
        .exclude(output_dir="")
        .order_by("-finished_at", "-pk")
        .values_list("output_dir", flat=True)[:POLICY_SUGGESTIONS]
    )
    for output_dir in runs:
        final = Path(output_dir) / "final"
        if final.is_dir():
            names.append(str(final))
    return names
