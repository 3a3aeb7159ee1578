"""What ``/metrics`` exposes, in Prometheus' text exposition format (version 0.0.4).

Gauges computed at scrape time from the database and the broker:

* ``writing_rl_runs{status}`` — runs by status;
* ``writing_rl_runs_worker_lost``, ``writing_rl_jobs_worker_lost`` — running runs and
  pipeline jobs without a heartbeat for ``WRITING_RL_RUN_STALE_S`` (beat sends them to a live
  worker; alert when one stays above 0);
* ``writing_rl_queue_depth{queue}`` — messages waiting per Celery queue (Redis ``LLEN`` of the
  queue's lists, priorities included; the filesystem transport: its message files);
* ``writing_rl_judge_latency_seconds`` (a summary) and ``writing_rl_judge_error_ratio`` — over
  the studio judgments of the last ``WRITING_RL_METRICS_WINDOW_S`` seconds (default 900);
* ``writing_rl_judgments_window{verdict}`` — those judgments by verdict (the rollout's
  outcome: win, tie, loss, invalid); ``writing_rl_judge_tokens_window{kind}`` (prompt,
  completion) and ``writing_rl_judge_requests_window`` — what they cost;
* ``writing_rl_run_judge_tokens{run,kind}``, ``writing_rl_run_judge_tokens_per_step{run}`` —
  each running run's judge tokens so far and per judged step;
  ``writing_rl_run_waiting_for_judge{run}`` — 1 while a run holds a step for its judge;
* ``writing_rl_run_judge_cost{run}`` — each running run's judge cost so far at its judge
  endpoint's declared price (only runs whose endpoint declares one);
* ``writing_rl_tokens{source,kind}`` — every token the endpoints reported so far, by
  ``source`` (``run_judge``: training runs' judgments, ``pipeline``: pipeline jobs' writers and
  graders, ``evaluation``: benchmark judging, ``campaign_judge``: LLM judges of human
  evaluation campaigns) and ``kind`` (prompt, completion); ``writing_rl_requests{source}`` the
  requests behind them; ``writing_rl_cost{source}`` what they cost at the declared prices (the
  priced endpoints' part only; absent when none is priced). Computed at most once a minute;
* ``writing_rl_run_steps_per_second{run}`` — optimizer steps per second of each running run,
  from its step records in the window;
* ``writing_rl_scrape_error{source}`` — 1 when a source could not be read (the rest is still
  served).

The format is simple enough to write by hand; the tests parse it back with
``prometheus_client``'s parser.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, F, Max, Min, Q, Sum
from django.utils import timezone

from webapp.studio.models import Judgment, PipelineJob, Run, StepMetric
from webapp.studio.token_usage import TokenTotals, totals_sum, usage_totals
from workers.queues import QueueName

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# kombu's Redis transport keeps one list per priority step: "<queue>", "<queue>\x06\x163", ...
REDIS_PRIORITY_SEPARATOR = "\x06\x16"
REDIS_PRIORITY_STEPS = (3, 6, 9)
# Quantiles are computed from at most this many of the window's newest judgments.
LATENCY_SAMPLE = 20_000


@dataclass
class Family:
    """One metric family: name, help, type and its samples (labels, value)."""

    name: str
    help: str
    kind: str = "gauge"
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, suffix: str = "", **labels: str) -> None:
        self.samples.append((self.name + suffix, labels, value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def render(families: Iterable[Family]) -> str:
    """The exposition text of ``families``."""
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {family.help}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for name, labels, value in family.samples:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            lines.append(
                f"{name}{{{label_text}}} {_number(value)}" if labels else f"{name} {_number(value)}"
            )
    return "\n".join(lines) + "\n"


def window_seconds() -> int:
    return int(getattr(settings, "WRITING_RL_METRICS_WINDOW_S", 900))


# -- sources ---------------------------------------------------------------------------------


def runs_by_status() -> Family:
    family = Family("writing_rl_runs", "Runs by status.")
    counts = dict(
        Run.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    for status in Run.Status.values:
        family.add(counts.get(status, 0), status=status)
    return family


def worker_lost() -> list[Family]:
    """Running runs and pipeline jobs whose worker has been silent for the stale time."""
    stale = timezone.now() - timedelta(seconds=settings.WRITING_RL_RUN_STALE_S)
    silent = Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True)
    families = []
    for name, model, what in (
        ("writing_rl_runs_worker_lost", Run, "Running runs"),
        ("writing_rl_jobs_worker_lost", PipelineJob, "Running pipeline jobs"),
    ):
        family = Family(name, f"{what} whose worker sent no heartbeat for WRITING_RL_RUN_STALE_S.")
        family.add(model.objects.filter(silent, status="running").count())
        families.append(family)
    return families


def queue_depths() -> dict[str, int]:
    """Messages waiting in each of our Celery queues."""
    url = str(settings.CELERY_BROKER_URL)
    names = [queue.value for queue in QueueName]
    if url.startswith("filesystem://"):
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
        files = os.listdir(folder)
        # kombu names each message "<ms>_<uuid>.<queue>.msg".
        return {
            name: sum(1 for f in files if f.partition(".")[2] == f"{name}.msg") for name in names
        }
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.llen(name)
            for step in REDIS_PRIORITY_STEPS:
                pipe.llen(f"{name}{REDIS_PRIORITY_SEPARATOR}{step}")
        lengths = pipe.execute()
    finally:
        client.close()
    per_queue = 1 + len(REDIS_PRIORITY_STEPS)
    return {name: sum(lengths[i * per_queue : (i + 1) * per_queue]) for i, name in enumerate(names)}


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile by linear interpolation (NaN for no values)."""
    if not sorted_values:
        return math.nan
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def judge_families(window_s: int) -> list[Family]:
    since = timezone.now() - timedelta(seconds=window_s)
    recent = Judgment.objects.filter(created_at__gte=since)
    by_verdict = dict(
        recent.values_list("verdict").annotate(n=Count("id")).values_list("verdict", "n")
    )
    total = sum(by_verdict.values())
    latencies = sorted(
        recent.filter(latency_s__isnull=False)
        .order_by("-created_at")
        .values_list("latency_s", flat=True)[:LATENCY_SAMPLE]
    )
    latency = Family(
        "writing_rl_judge_latency_seconds",
        f"Judge call latency of the judgments of the last {window_s} s.",
        kind="summary",
    )
    for q in (0.5, 0.9, 0.99):
        latency.add(quantile(latencies, q), quantile=str(q))
    latency.add(sum(latencies), suffix="_sum")
    latency.add(len(latencies), suffix="_count")
    errors = Family(
        "writing_rl_judge_error_ratio",
        f"Share of the last {window_s} s's judgments without a usable verdict.",
    )
    errors.add(by_verdict.get(Judgment.Verdict.INVALID, 0) / total if total else 0.0)
    verdicts = Family(
        "writing_rl_judgments_window", f"Judgments of the last {window_s} s by verdict."
    )
    for verdict in Judgment.Verdict.values:
        verdicts.add(by_verdict.get(verdict, 0), verdict=verdict)
    spent = recent.aggregate(
        prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"), attempts=Sum("attempts")
    )
    tokens = Family(
        "writing_rl_judge_tokens_window",
        f"Tokens the judge endpoints reported for the judgments of the last {window_s} s.",
    )
    for kind in ("prompt", "completion"):
        tokens.add(spent[kind] or 0, kind=kind)
    requests = Family(
        "writing_rl_judge_requests_window",
        f"Judge requests (re-asks and retries included) of the last {window_s} s's judgments.",
    )
    requests.add(spent["attempts"] or 0)
    return [latency, errors, verdicts, tokens, requests]


def running_run_judging() -> list[Family]:
    """Per running run: judge tokens so far, tokens per judged step, waiting for the judge."""
    running = list(Run.objects.filter(status=Run.Status.RUNNING).values_list("id", "judge_wait"))
    totals = {
        row["run_id"]: row
        for row in Judgment.objects.filter(run_id__in=[pk for pk, _ in running])
        .values("run_id")
        .annotate(
            prompt=Sum("prompt_tokens"),
            completion=Sum("completion_tokens"),
            steps=Count("step", distinct=True),
        )
    }
    tokens = Family("writing_rl_run_judge_tokens", "Judge tokens of each running run so far.")
    per_step = Family(
        "writing_rl_run_judge_tokens_per_step", "Judge tokens per judged step of each running run."
    )
    waiting = Family(
        "writing_rl_run_waiting_for_judge",
        "1 while a running run holds a step because its judge gives no verdicts.",
    )
    cost = Family(
        "writing_rl_run_judge_cost",
        "Judge cost of each running run so far, at its judge endpoint's declared price.",
    )
    endpoints = dict(
        (run.pk, run.judge_endpoint)
        for run in Run.objects.filter(pk__in=[pk for pk, _ in running]).only("id", "config")
    )
    for run_id, judge_wait in running:
        row = totals.get(run_id, {})
        prompt, completion = row.get("prompt") or 0, row.get("completion") or 0
        tokens.add(prompt, run=str(run_id), kind="prompt")
        tokens.add(completion, run=str(run_id), kind="completion")
        steps = row.get("steps") or 0
        per_step.add((prompt + completion) / steps if steps else 0.0, run=str(run_id))
        waiting.add(1 if judge_wait else 0, run=str(run_id))
        spent = TokenTotals.of(
            endpoints.get(run_id, ""), prompt_tokens=prompt, completion_tokens=completion
        )
        if spent.cost is not None:
            cost.add(spent.cost, run=str(run_id))
    return [tokens, per_step, waiting, cost]


TOKEN_TOTALS_CACHE_S = 60


def token_totals_by_source() -> dict[str, TokenTotals]:
    """Every token reported so far, by source, each part at its endpoint's declared price
    (4 grouped queries and a scan of the pipeline jobs' tallies)."""
    from webapp.annotation.models import JudgeRun, JudgeVote
    from webapp.evals.models import EvalItemResult, EvalRun

    def grouped(rows: Iterable[dict[str, object]], endpoint_of: dict[int, str]) -> TokenTotals:
        return totals_sum(
            TokenTotals.of(
                endpoint_of.get(int(row["owner"]), ""),  # type: ignore[call-overload]
                prompt_tokens=row["prompt"],  # type: ignore[arg-type]
                completion_tokens=row["completion"],  # type: ignore[arg-type]
                attempts=row["attempts"],  # type: ignore[arg-type]
            )
            for row in rows
        )

    sums = {"prompt": Sum("prompt_tokens"), "completion": Sum("completion_tokens"),
            "attempts": Sum("attempts")}  # fmt: skip
    run_rows = list(Judgment.objects.values(owner=F("run_id")).annotate(**sums))
    runs = {
        run.pk: run.judge_endpoint
        for run in Run.objects.filter(pk__in=[r["owner"] for r in run_rows]).only("id", "config")
    }
    eval_rows = list(
        EvalItemResult.objects.values(owner=F("eval_run_id")).annotate(
            prompt=Sum("judge_prompt_tokens"),
            completion=Sum("judge_completion_tokens"),
            attempts=Sum("judge_attempts"),
        )
    )
    evals = {
        e.pk: e.judge_endpoint
        for e in EvalRun.objects.filter(pk__in=[r["owner"] for r in eval_rows]).only("id", "judge")
    }
    vote_rows = list(JudgeVote.objects.values(owner=F("judge_run_id")).annotate(**sums))
    judges = {
        j.pk: j.judge_endpoint
        for j in JudgeRun.objects.filter(pk__in=[r["owner"] for r in vote_rows]).only("id", "spec")
    }
    pipeline = totals_sum(
        usage_totals(usage)
        for usage in PipelineJob.objects.exclude(usage={}).values_list("usage", flat=True)
    )
    return {
        "run_judge": grouped(run_rows, runs),
        "pipeline": pipeline,
        "evaluation": grouped(eval_rows, evals),
        "campaign_judge": grouped(vote_rows, judges),
    }


def token_families() -> list[Family]:
    totals: dict[str, TokenTotals] | None = cache.get("writing_rl:metrics:token-totals")
    if totals is None:
        totals = token_totals_by_source()
        cache.set("writing_rl:metrics:token-totals", totals, TOKEN_TOTALS_CACHE_S)
    tokens = Family(
        "writing_rl_tokens", "Tokens the model endpoints reported so far, by source and kind."
    )
    requests = Family(
        "writing_rl_requests", "Requests (retries and re-asks included) behind those tokens."
    )
    cost = Family(
        "writing_rl_cost",
        "What those tokens cost at the endpoints' declared prices (priced endpoints only).",
    )
    for source, spent in totals.items():
        tokens.add(spent.prompt_tokens, source=source, kind="prompt")
        tokens.add(spent.completion_tokens, source=source, kind="completion")
        requests.add(spent.attempts, source=source)
        if spent.cost is not None:
            cost.add(spent.cost, source=source)
    return [tokens, requests, cost]


def steps_per_second(window_s: int) -> Family:
    family = Family(
        "writing_rl_run_steps_per_second",
        f"Optimizer steps per second of each running run over the last {window_s} s.",
    )
    since = timezone.now() - timedelta(seconds=window_s)
    rows = (
        StepMetric.objects.filter(run__status=Run.Status.RUNNING, created_at__gte=since)
        .values("run_id")
        .annotate(n=Count("id"), first=Min("created_at"), last=Max("created_at"))
    )
    rates = {row["run_id"]: row for row in rows}
    for run_id in Run.objects.filter(status=Run.Status.RUNNING).values_list("id", flat=True):
        row = rates.get(run_id)
        span = (row["last"] - row["first"]).total_seconds() if row else 0.0
        family.add((row["n"] - 1) / span if row and span > 0 else 0.0, run=str(run_id))
    return family


def collect() -> list[Family]:
    """Every family, reading each source independently: one failing source is reported as a
    scrape error, not a failed scrape."""
    window = window_seconds()
    families: list[Family] = []
    errors = Family("writing_rl_scrape_error", "1 when a metrics source could not be read.")
    for source, build in (
        ("runs", lambda: [runs_by_status(), *worker_lost()]),
        ("queues", _queue_family),
        ("judgments", lambda: [*judge_families(window), *running_run_judging()]),
        ("steps", lambda: [steps_per_second(window)]),
        ("tokens", token_families),
    ):
        try:
            families.extend(build())
            errors.add(0, source=source)
        except Exception:
            errors.add(1, source=source)
    window_family = Family("writing_rl_metrics_window_seconds", "Window of the windowed metrics.")
    window_family.add(window)
    return [*families, window_family, errors]


def _queue_family() -> list[Family]:
    family = Family("writing_rl_queue_depth", "Messages waiting in each Celery queue.")
    for name, depth in queue_depths().items():
        family.add(depth, queue=name)
    return [family]
