"""The internal API the verl reward hook uses instead of the database.

A verl job runs on a Ray cluster in its own environment; its reward hook
(``verl_plugin/writing_rl_reward.py``) reaches a run's curriculum and judgments over HTTP:

``POST /internal/runs/<run>/tiers``      ``{"sample_ids": [...], "step": 12}`` ->
    ``{"tiers": {id: {"tier", "num_tiers", "mastered", "last_step"}}}``. With ``step`` the
    tier is the one the sample had when that step began (a win recorded earlier in the same
    step does not change what the step's other rollouts are judged against).
``POST /internal/runs/<run>/outcomes``   ``{"outcomes": [StepOutcome fields]}`` ->
    ``{"transitions": [Transition fields]}``, through the run's ``DjangoCurriculumStore``
    (each outcome applied at most once; at most one tier per step).
``POST /internal/runs/<run>/judgments``  ``{"judgments": [JudgmentRecord fields]}`` ->
    ``{"stored": n}``, written by the same helper as a TRL run's reporter, so the rows mean the
    same thing: ``outcome`` is the rollout's outcome (combined over both orders when it was
    judged in both; without it, the record's own order's outcome) and the stored reward is
    that outcome's (a posted ``reward`` is checked, not used).

Authentication: ``Authorization: Bearer <WRITING_RL_INTERNAL_API_TOKEN>``, compared in
constant time. With the setting empty the API does not exist (404). A bad body is a 400 that
names the field (``judgments[3].verdict``) and nothing is written: a body nested deeper than
:data:`MAX_BODY_DEPTH`, a number that is not finite (NaN, Infinity, ``1e999``), an integer
beyond :data:`MAX_INT` (what the database's integer columns hold).

Writes are idempotent, so a client may retry a call whose answer it lost: an outcome is applied
at most once per (sample, step), and a judgment identical to one already stored for the run
(same sample, step, tier, position, judge, verdict and rollout) is counted as stored, not
written again. ``{"stored": n, "duplicates": d}`` says which.
"""

from __future__ import annotations

import hmac
import json
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict
from functools import wraps
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from rl_engine.curriculum import StepOutcome
from rl_engine.outcomes import Outcome
from rl_engine.training import JudgmentRecord
from webapp.studio.models import CurriculumState, CurriculumTransition, Judgment, Run
from webapp.studio.services.curriculum_store import DjangoCurriculumStore
from webapp.studio.services.judgments import judgment_row

MAX_ITEMS = 10_000
# Integer columns (steps, tiers, token counts) are 32-bit on PostgreSQL.
MAX_INT = 2**31 - 1
MAX_BODY_DEPTH = 8
ENGINE_VERDICTS = ("A", "B", "TIE", "INVALID")
POSITIONS = ("first", "second")
OUTCOMES = tuple(Outcome)

View = Callable[..., HttpResponse]


class BadRequest(ValueError):
    """A body the API refuses; the message names the field."""


def _error(status: int, message: str) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="writing-rl-internal"'
    return response


def token_required(view: View) -> View:
    """404 when the API is disabled, 401 without the right bearer token."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        expected = settings.WRITING_RL_INTERNAL_API_TOKEN or ""
        if not expected:
            return _error(404, "not found")
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("utf-8"), expected.encode("utf-8")
        ):
            return _error(401, "a valid bearer token is required")
        return view(request, *args, **kwargs)

    return guarded


def internal_endpoint(view: Callable[[HttpRequest, Run, dict[str, Any]], dict[str, Any]]) -> View:
    """Token check, POST only, the run loaded, the JSON body parsed, BadRequest -> 400."""

    @csrf_exempt
    @token_required
    @require_POST
    @wraps(view)
    def endpoint(request: HttpRequest, run_id: int) -> HttpResponse:
        run = Run.objects.filter(pk=run_id).first()
        if run is None:
            return _error(404, f"run {run_id} does not exist")
        try:
            body = json.loads(request.body or b"{}", parse_constant=_refuse_constant)
        except RecursionError:
            return _error(400, f"the body is nested more than {MAX_BODY_DEPTH} levels deep")
        except ValueError as error:
            return _error(400, f"the body is not JSON: {error}")
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object")
        where = _too_deep(body)
        if where is not None:
            return _error(400, f"{where}: nested more than {MAX_BODY_DEPTH} levels deep")
        try:
            return JsonResponse(view(request, run, body))
        except BadRequest as error:
            return _error(400, str(error))

    return endpoint


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def _too_deep(body: Any) -> str | None:
    """The path of the first value nested deeper than MAX_BODY_DEPTH, or None."""
    stack: list[tuple[Any, str, int]] = [(body, "body", 0)]
    while stack:
        value, where, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth >= MAX_BODY_DEPTH:
                return where
            children = value.items() if isinstance(value, dict) else enumerate(value)
            for key, child in children:
                path = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}"
                stack.append((child, path, depth + 1))
    return None


# -- field readers -----------------------------------------------------------------------------


def _items(body: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    items = body.get(key)
    if not isinstance(items, list):
        raise BadRequest(f"{key}: must be a list")
    if len(items) > MAX_ITEMS:
        raise BadRequest(f"{key}: at most {MAX_ITEMS} per request, got {len(items)}")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadRequest(f"{key}[{index}]: must be an object")
    return items


def _int(item: Mapping[str, Any], name: str, where: str, minimum: int | None = None) -> int:
    value = item.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(f"{where}.{name}: must be an integer, got {_short(value)}")
    if minimum is not None and value < minimum:
        raise BadRequest(f"{where}.{name}: must be >= {minimum}, got {_short(value)}")
    if abs(value) > MAX_INT:
        raise BadRequest(f"{where}.{name}: must be at most {MAX_INT}, got {_short(value)}")
    return value


def _short(value: Any) -> str:
    """A value for an error message, cut short (a 10**30 or a huge string stays readable)."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**12 else f"{value:.3e}"
    return text if len(text) <= 80 else text[:77] + "..."


def _float_or_none(item: Mapping[str, Any], name: str, where: str) -> float | None:
    value = item.get(name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise BadRequest(f"{where}.{name}: must be a number or null, got {_short(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise BadRequest(f"{where}.{name}: must be a finite number, got {_short(value)}")
    return number


def _text(item: Mapping[str, Any], name: str, where: str, required: bool = False) -> str:
    value = item.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"{where}.{name}: must be a string, got {_short(value)}")
    if "\x00" in value:
        raise BadRequest(f"{where}.{name}: contains a NUL character")
    return value


def _sample_ids(run: Run, sample_ids: list[str], where: str) -> dict[str, int]:
    """sample id -> instruction id, all of them in the run's curriculum."""
    ids: dict[str, int] = {}
    for index, sample_id in enumerate(sample_ids):
        try:
            ids[sample_id] = int(sample_id)
        except (TypeError, ValueError):
            raise BadRequest(
                f"{where}[{index}].sample_id: {sample_id!r} is not a sample id"
            ) from None
    known = set(
        CurriculumState.objects.filter(run=run, instruction_id__in=set(ids.values())).values_list(
            "instruction_id", flat=True
        )
    )
    unknown = [s for s, iid in ids.items() if iid not in known]
    if unknown:
        raise BadRequest(f"{where}: sample ids not in run {run.pk}'s curriculum: {unknown[:5]}")
    return ids


# -- endpoints ---------------------------------------------------------------------------------


@internal_endpoint
def tiers(request: HttpRequest, run: Run, body: dict[str, Any]) -> dict[str, Any]:
    sample_ids = body.get("sample_ids")
    if not isinstance(sample_ids, list) or not all(isinstance(s, str) for s in sample_ids):
        raise BadRequest("sample_ids: must be a list of strings")
    if len(sample_ids) > MAX_ITEMS:
        raise BadRequest(f"sample_ids: at most {MAX_ITEMS} per request")
    step = body.get("step")
    if step is not None:
        step = _int(body, "step", "body", minimum=0)
    ids = _sample_ids(run, sample_ids, "sample_ids")
    states = DjangoCurriculumStore(run).read_tiers(sample_ids)
    answer = {sample_id: asdict(state) for sample_id, state in states.items()}
    if step is not None:
        # The tier when ``step`` began: the from_tier of the sample's first transition at or
        # after that step, if it has one.
        later = (
            CurriculumTransition.objects.filter(
                run=run, instruction_id__in=set(ids.values()), step__gte=step
            )
            .order_by("instruction_id", "step", "id")
            .values_list("instruction_id", "from_tier")
        )
        first_from: dict[int, int] = {}
        for instruction_id, from_tier in later:
            first_from.setdefault(instruction_id, from_tier)
        for sample_id, instruction_id in ids.items():
            if instruction_id in first_from:
                answer[sample_id]["tier"] = first_from[instruction_id]
    return {"tiers": answer}


@internal_endpoint
def outcomes(request: HttpRequest, run: Run, body: dict[str, Any]) -> dict[str, Any]:
    parsed: list[StepOutcome] = []
    for index, item in enumerate(_items(body, "outcomes")):
        where = f"outcomes[{index}]"
        advance = item.get("advance")
        if not isinstance(advance, bool):
            raise BadRequest(f"{where}.advance: must be true or false, got {advance!r}")
        parsed.append(
            StepOutcome(
                sample_id=_text(item, "sample_id", where, required=True),
                step=_int(item, "step", where, minimum=0),
                wins=_int(item, "wins", where, minimum=0),
                ties=_int(item, "ties", where, minimum=0),
                losses=_int(item, "losses", where, minimum=0),
                invalid=_int(item, "invalid", where, minimum=0),
                advance=advance,
            )
        )
    _sample_ids(run, [o.sample_id for o in parsed], "outcomes")
    transitions = DjangoCurriculumStore(run).record_outcomes(parsed)
    return {"transitions": [asdict(t) for t in transitions]}


def _optional_int(item: Mapping[str, Any], name: str, where: str, default: int) -> int:
    return _int(item, name, where, minimum=0) if name in item else default


@internal_endpoint
def judgments(request: HttpRequest, run: Run, body: dict[str, Any]) -> dict[str, Any]:
    records: list[JudgmentRecord] = []
    for index, item in enumerate(_items(body, "judgments")):
        where = f"judgments[{index}]"
        verdict = _text(item, "verdict", where, required=True)
        if verdict not in ENGINE_VERDICTS:
            raise BadRequest(f"{where}.verdict: must be one of {', '.join(ENGINE_VERDICTS)}")
        position = _text(item, "position", where, required=True)
        if position not in POSITIONS:
            raise BadRequest(f"{where}.position: must be 'first' or 'second', got {position!r}")
        _float_or_none(item, "reward", where)  # checked; the stored reward is the outcome's
        # The rollout's outcome (combined over both orders when it was judged in both); a
        # record without one stands for its own order.
        outcome = _text(item, "outcome", where) or Outcome.from_verdict(verdict, position)
        if outcome not in OUTCOMES:
            raise BadRequest(f"{where}.outcome: must be one of {', '.join(OUTCOMES)}")
        latency = _float_or_none(item, "latency_s", where)
        records.append(
            JudgmentRecord(
                sample_id=_text(item, "sample_id", where, required=True),
                step=_int(item, "step", where, minimum=0),
                rollout_index=_optional_int(item, "rollout_index", where, 0),
                rollout=_text(item, "rollout", where, required=True),
                reference_tier=_int(item, "reference_tier", where, minimum=0),
                verdict=verdict,
                reward=Outcome(outcome).reward,
                outcome=outcome,
                total_reward=_float_or_none(item, "total_reward", where),
                position=position,
                rationale=_text(item, "rationale", where),
                judge=_text(item, "judge", where),
                latency_s=latency if latency is not None else 0.0,
                error=_text(item, "error", where) or None,
                attempts=_optional_int(item, "attempts", where, 1),
                prompt_tokens=_optional_int(item, "prompt_tokens", where, 0),
                completion_tokens=_optional_int(item, "completion_tokens", where, 0),
            )
        )
    ids = _sample_ids(run, [r.sample_id for r in records], "judgments")
    for record in records:
        record.sample_id = str(ids[record.sample_id])
    new = _store_new_judgments(run, [judgment_row(run.pk, record) for record in records])
    return {"stored": len(records), "duplicates": len(records) - new}


def _judgment_key(row: Judgment) -> tuple[Any, ...]:
    return (
        row.instruction_id,
        row.step,
        row.reference_tier,
        row.position,
        row.judge,
        row.order_verdict,
        row.verdict,
        row.rollout,
    )


def _store_new_judgments(run: Run, rows: list[Judgment]) -> int:
    """Write the rows the run does not hold yet; returns how many were written.

    Counted as a multiset: a request with two identical judgments stores two, and sending the
    same request again stores none. The run's row lock serialises concurrent calls.
    """
    with transaction.atomic():
        Run.objects.select_for_update().filter(pk=run.pk).values_list("pk", flat=True).first()
        steps = {row.step for row in rows}
        instructions = {row.instruction_id for row in rows}
        held = Counter(
            _judgment_key(existing)
            for existing in Judgment.objects.filter(
                run=run, step__in=steps, instruction_id__in=instructions
            ).only(
                "instruction_id",
                "step",
                "reference_tier",
                "position",
                "judge",
                "order_verdict",
                "verdict",
                "rollout",
            )
        )
        fresh = []
        for row in rows:
            key = _judgment_key(row)
            if held[key] > 0:
                held[key] -= 1
            else:
                fresh.append(row)
        Judgment.objects.bulk_create(fresh, batch_size=500)
    return len(fresh)
