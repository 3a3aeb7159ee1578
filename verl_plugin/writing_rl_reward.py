"""Writing-RL's pairwise reward as a verl custom reward function.

verl loads this file by path (``reward.custom_reward_function.path`` / ``.name``) in each of its
reward-loop workers and awaits, once per rollout::

    await compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...,
                        **reward.custom_reward_function.reward_kwargs)

and takes the returned dict's ``"score"`` as the rollout's reward (the other keys become the
rollout's reward extra info). A verl job runs in its own environment (verl pins its own
transformers), so this module is deliberately standalone: the standard library plus
``openai``. It never imports torch, Django or ``rl_engine``. The few lines it shares with
``rl_engine`` (reading ``[[A]]``/``[[B]]``/``[[C]]``, the 1 / 0.5 / 0 reward) are duplicated here
on purpose and pinned to the engine's by ``tests/verl_plugin``.

What one call does, for a training rollout (``data_source == "writing_rl"``):

1. read the sample's tier *as of this step* from the web app's internal API (once per sample
   and step in this process; the API answers the tier the sample had when the step began, so
   every rollout of a step is judged against the same reference even across workers);
2. ask the judge to compare the rollout with that reference (reference shown first by
   default — the paper's "position disadvantage"), retrying transient failures;
3. store the judgment through the internal API, so the dashboard shows it like a TRL run's;
4. on a win, record a step outcome ``advance=True``: the curriculum store moves the sample up
   at most one tier per step (later wins of the same step change nothing).

The step comes from ``extra_info["global_steps"]``, which verl's async rollout servers put in
every rollout's extra fields (merged into ``extra_info`` by the reward manager). Validation
rollouts (``data_source == "writing_rl/eval"``) are judged against the best reference and
touch neither the curriculum nor the judgments.

A judge call that gives no usable verdict is never a silent loss: verl's reward tensor has no
"missing" value, so the rollout gets ``invalid_reward`` (default 0.5, the tie value: no push
either way), ``judge_invalid`` is 1.0 in its reward extra info, and the judgment is stored as
INVALID with the reason (the dashboard and ``/metrics`` count those). A judgment the internal
API could not take is appended to ``writing_rl_unsent.jsonl`` in the working directory rather
than dropped.

Settings (``reward_kwargs``; secrets only from the environment):
    api_url        the web app's base URL, e.g. ``http://studio:8000`` (required for training)
    run_id         the studio run (required for training)
    judge_base_url / judge_model / judge_api_key_env   the OpenAI-compatible judge
    position       "disadvantage" | "advantage" | "both"
    prompts_file   JSON with the judge's templates (written by the job builder)
    max_concurrency, timeout_s, max_retries, max_reasks, invalid_reward
    judge_outage_budget_s, judge_outage_max_wait_s   while the judge endpoint is unreachable
                   (connection errors, timeouts, 429, 5xx) a judgment waits with backoff up to
                   the budget, holding its step; then JudgeOutageError fails the job
Environment: ``WRITING_RL_INTERNAL_API_TOKEN`` (the internal API's bearer token) and the judge
key in the variable named by ``judge_api_key_env`` (default ``OPENAI_API_KEY``).
"""

# No ``from __future__ import annotations``: verl executes this file without registering it in
# sys.modules, and dataclasses cannot resolve string annotations of such a module.
import asyncio
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai

__all__ = [
    "EVAL_SOURCE",
    "TRAIN_SOURCE",
    "HookSettings",
    "compute_score",
    "pairwise_reward",
    "parse_verdict",
]

log = logging.getLogger("writing_rl.verl_reward")

TRAIN_SOURCE = "writing_rl"
EVAL_SOURCE = "writing_rl/eval"
UNSENT_FILE = "writing_rl_unsent.jsonl"
TOKEN_ENV = "WRITING_RL_INTERNAL_API_TOKEN"

# -- the verdict and the reward (duplicated from rl_engine.judging / rl_engine.reward) ----------

# Only the bracketed tag counts, and the last one wins: judges quote the format before answering.
_VERDICT_TAG = re.compile(r"\[\[\s*([ABC])\s*\]\]")
_TAG_TO_VERDICT = {"A": "A", "B": "B", "C": "TIE"}


def parse_verdict(text: str | None) -> str:
    """``"A"``, ``"B"``, ``"TIE"`` from the last ``[[A]]``/``[[B]]``/``[[C]]`` in ``text``;
    ``"INVALID"`` when there is none (a stray capital letter never decides).

    >>> parse_verdict("A is fine. Final verdict: [[B]]")
    'B'
    >>> parse_verdict("A is clearly better.")
    'INVALID'
    """
    tags = _VERDICT_TAG.findall(text or "")
    return _TAG_TO_VERDICT[tags[-1]] if tags else "INVALID"


def pairwise_reward(verdict: str, policy_position: str) -> float | None:
    """1.0 when the policy's text won, 0.5 for a tie, 0.0 for a loss, None without a verdict.

    >>> pairwise_reward("B", "second"), pairwise_reward("B", "first"), pairwise_reward("C", "first")
    (1.0, 0.0, None)
    >>> pairwise_reward("TIE", "first")
    0.5
    """
    if verdict == "TIE":
        return 0.5
    if verdict not in ("A", "B"):
        return None
    won = (verdict == "A") == (policy_position == "first")
    return 1.0 if won else 0.0


# -- settings ---------------------------------------------------------------------------------

REASK = (
    "Your answer did not end with a verdict in the required format. Reply with exactly one "
    'of "[[A]]", "[[B]]" or "[[C]]" (tie) and nothing else.'
)


@dataclass(frozen=True)
class HookSettings:
    api_url: str = ""
    run_id: str = ""
    judge_base_url: str = ""
    judge_model: str = ""
    judge_api_key_env: str = "OPENAI_API_KEY"
    position: str = "disadvantage"
    prompts_file: str = "judge_prompts.json"
    max_concurrency: int = 32
    timeout_s: float = 120.0
    max_retries: int = 5
    max_reasks: int = 1
    invalid_reward: float = 0.5
    judge_extra_body: dict[str, Any] | None = None  # structured output, sampling extras
    api_timeout_s: float = 30.0
    api_retries: int = 6  # about 25 s of backoff before a step's rollout gives up
    # An unreachable or failing judge endpoint (connection error, timeout, 429, 5xx, after the
    # client's own retries) holds the rollout's judgment — and so the step — with backoff up to
    # this many seconds since the first failure; then JudgeOutageError fails the verl job (its
    # last checkpoint stays, so it can be resumed). 0 fails at the first such error.
    judge_outage_budget_s: float = 600.0
    judge_outage_max_wait_s: float = 60.0

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> "HookSettings":
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in kwargs.items() if k in known}
        settings = cls(**values)
        if settings.position not in ("disadvantage", "advantage", "both"):
            raise ValueError(
                f"writing_rl_reward: position must be disadvantage, advantage or both; "
                f"got {settings.position!r}"
            )
        if not settings.judge_base_url or not settings.judge_model:
            raise ValueError(
                "writing_rl_reward: set reward_kwargs.judge_base_url and judge_model (an "
                "OpenAI-compatible endpoint, e.g. a vLLM server at http://judge:8000/v1)"
            )
        return settings


@dataclass
class _Templates:
    system: str
    user: str
    criteria_system: str
    criteria_user: str

    @classmethod
    def load(cls, path: str) -> "_Templates":
        candidates = [Path(path), Path(__file__).resolve().parent / Path(path).name]
        for candidate in candidates:
            if candidate.is_file():
                data = json.loads(candidate.read_text(encoding="utf-8"))
                return cls(
                    data["default"]["system"],
                    data["default"]["user"],
                    data["with_criteria"]["system"],
                    data["with_criteria"]["user"],
                )
        raise FileNotFoundError(
            f"writing_rl_reward: judge prompts {path!r} not found (looked in "
            f"{', '.join(str(c) for c in candidates)}); the job builder writes judge_prompts.json "
            "next to this module"
        )

    def messages(self, instruction: str, first: str, second: str, criteria: str | None) -> list:
        system, user = (
            (self.criteria_system, self.criteria_user) if criteria else (self.system, self.user)
        )
        text = user.format(
            instruction=instruction, first=first, second=second, criteria=criteria or ""
        )
        return [{"role": "system", "content": system}, {"role": "user", "content": text}]


# -- per-event-loop state ------------------------------------------------------------------------


@dataclass
class _Judged:
    verdict: str
    policy_position: str
    rationale: str
    latency_s: float
    attempts: int
    error: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class _State:
    settings: HookSettings
    templates: _Templates
    judge: openai.AsyncOpenAI
    token: str
    slots: asyncio.Semaphore
    tiers: dict[tuple[str, int], asyncio.Future[int]] = field(default_factory=dict)


# Clients bind to the event loop that first uses them, so state is kept per loop.
_STATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _State] = weakref.WeakKeyDictionary()


def _state(settings: HookSettings) -> _State:
    loop = asyncio.get_running_loop()
    state = _STATES.get(loop)
    if state is None or state.settings != settings:
        token = os.environ.get(TOKEN_ENV, "")
        state = _State(
            settings=settings,
            templates=_Templates.load(settings.prompts_file),
            judge=openai.AsyncOpenAI(
                base_url=settings.judge_base_url,
                api_key=os.environ.get(settings.judge_api_key_env) or "not-needed",
                timeout=settings.timeout_s,
                max_retries=settings.max_retries,
            ),
            token=token,
            slots=asyncio.Semaphore(settings.max_concurrency),
        )
        _STATES[loop] = state
    return state


# -- the internal API ----------------------------------------------------------------------------


def _post_json(url: str, token: str, payload: dict[str, Any], timeout_s: float) -> tuple[int, str]:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode("utf-8"),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", errors="replace")


async def _api(state: _State, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    """POST to the internal API, retrying connection errors and 5xx; 4xx raises at once.

    The standard library's client in a thread: the calls are few (tiers are cached per step)
    and it keeps this module free of any HTTP client version that verl's environment pins.
    """
    settings = state.settings
    url = f"{settings.api_url.rstrip('/')}/internal/runs/{settings.run_id}/{path}"
    delay = 0.5
    failure = ""
    for attempt in range(settings.api_retries + 1):
        try:
            status, body = await asyncio.to_thread(
                _post_json, url, state.token, payload, settings.api_timeout_s
            )
        except (OSError, urllib.error.URLError) as error:
            failure = f"{type(error).__name__}: {error}"
        else:
            if 200 <= status < 300:
                answer: dict[str, Any] = json.loads(body)
                return answer
            if status < 500:  # a redirect (e.g. to HTTPS) or a refusal: retrying will not help
                raise RuntimeError(
                    f"writing_rl_reward: internal API {url} answered {status}: {body[:300]} "
                    f"(check {TOKEN_ENV} and run_id)"
                )
            failure = f"HTTP {status}"
        if attempt < settings.api_retries:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
    raise ConnectionError(f"writing_rl_reward: internal API {url} failed: {failure}")


async def _tier(state: _State, sample_id: str, step: int) -> int:
    key = (sample_id, step)
    pending = state.tiers.get(key)
    if pending is None:
        pending = asyncio.get_running_loop().create_future()
        state.tiers[key] = pending
        # Forget older steps: a step's tiers are never read again once the next one starts.
        for old in [k for k in state.tiers if k[1] < step - 1]:
            del state.tiers[old]
        try:
            body = await _api(state, "tiers", {"sample_ids": [sample_id], "step": step})
            pending.set_result(int(body["tiers"][sample_id]["tier"]))
        except BaseException as error:
            del state.tiers[key]
            pending.set_exception(error)
            pending.exception()  # retrieved: the rollouts waiting on it get it from await
            raise
    return await asyncio.shield(pending)


def _spool(payload: dict[str, Any]) -> None:
    with open(UNSENT_FILE, "a", encoding="utf-8") as spool:
        spool.write(json.dumps(payload) + "\n")


async def _post_or_spool(state: _State, path: str, payload: dict[str, Any]) -> None:
    try:
        await _api(state, path, payload)
    except (ConnectionError, RuntimeError) as error:
        log.error("%s; kept in %s", error, UNSENT_FILE)
        _spool({"path": path, "run_id": state.settings.run_id, **payload})


# -- judging -------------------------------------------------------------------------------------


class JudgeOutageError(RuntimeError):
    """The judge endpoint gave no answer for longer than ``judge_outage_budget_s``: the verl
    job stops rather than train on rewards that carry no verdict."""


# Errors that mean the endpoint is down or overloaded, not that it answered badly.
OUTAGE_ERRORS = (
    openai.APIConnectionError,  # APITimeoutError included
    openai.RateLimitError,
    openai.InternalServerError,
)


async def _wait_out_outage(state: _State, failure: Exception, outage: dict[str, float]) -> bool:
    """Wait before judging again while the outage budget lasts (backoff 5, 10, 20 ... s, at
    most ``judge_outage_max_wait_s``, never past the budget); False once it is spent."""
    now = time.monotonic()
    first = outage.setdefault("since", now)
    budget = state.settings.judge_outage_budget_s
    left = budget - (now - first)
    if left <= 0:
        return False
    wait = min(5.0 * 2 ** outage.get("waits", 0), state.settings.judge_outage_max_wait_s, left)
    outage["waits"] = outage.get("waits", 0) + 1
    log.warning(
        "waiting for judge %.0f s (%.0f s of the %.0f s outage budget left): %s: %s",
        wait, left, budget, type(failure).__name__, failure,
    )  # fmt: skip
    await asyncio.sleep(wait)
    return True


async def _judge_once(
    state: _State, instruction: str, first: str, second: str, criteria: str | None
) -> tuple[str, str, float, int, str | None, int, int]:
    messages = state.templates.messages(instruction, first, second, criteria)
    started = time.monotonic()
    attempts = 0
    prompt_tokens = completion_tokens = 0
    text = ""
    error: str | None = None
    outage: dict[str, float] = {}
    async with state.slots:
        asks = 0
        while asks <= state.settings.max_reasks:
            attempts += 1
            try:
                reply = await state.judge.chat.completions.create(
                    model=state.settings.judge_model,
                    messages=messages,
                    temperature=0.0,
                    max_tokens=1024,
                    extra_body=state.settings.judge_extra_body or None,
                )
            except OUTAGE_ERRORS as failure:
                waited = await _wait_out_outage(state, failure, outage)
                if waited:
                    continue
                raise JudgeOutageError(
                    f"waiting for judge: {state.settings.judge_base_url} gave no answer for "
                    f"{state.settings.judge_outage_budget_s:.0f} s (the outage budget): "
                    f"{type(failure).__name__}: {failure}"
                ) from failure
            except openai.OpenAIError as failure:
                error = f"judge call failed after retries: {type(failure).__name__}: {failure}"
                break
            if reply.usage is not None:
                prompt_tokens += reply.usage.prompt_tokens
                completion_tokens += reply.usage.completion_tokens
            text = (reply.choices[0].message.content or "") if reply.choices else ""
            asks += 1
            if parse_verdict(text) != "INVALID":
                error = None
                break
            error = "the judge's answer has no [[A]], [[B]] or [[C]] verdict"
            messages = [
                *messages,
                {"role": "assistant", "content": text},
                {"role": "user", "content": REASK},
            ]
    verdict = parse_verdict(text) if error is None else "INVALID"
    latency = time.monotonic() - started
    return verdict, text, latency, attempts, error, prompt_tokens, completion_tokens


async def _judge(
    state: _State, instruction: str, rollout: str, reference: str, criteria: str | None
) -> list[_Judged]:
    orders = {
        "disadvantage": ["second"],
        "advantage": ["first"],
        "both": ["second", "first"],
    }[state.settings.position]
    calls = []
    for policy_position in orders:
        first, second = (rollout, reference) if policy_position == "first" else (reference, rollout)
        calls.append(_judge_once(state, instruction, first, second, criteria))
    results = await asyncio.gather(*calls)
    return [
        _Judged(verdict, pos, text, latency, attempts, error, pt, ct)
        for pos, (verdict, text, latency, attempts, error, pt, ct) in zip(
            orders, results, strict=True
        )
    ]


def _combined_reward(judged: list[_Judged]) -> float | None:
    """One order: its reward. Both orders: their agreement, a tie when they disagree (a
    verdict that flips with the order is a tie), None if either has no verdict."""
    rewards = [pairwise_reward(j.verdict, j.policy_position) for j in judged]
    if any(r is None for r in rewards):
        return None
    if len(rewards) == 1 or rewards[0] == rewards[1]:
        return rewards[0]
    return 0.5


def _outcome(reward: float | None) -> str:
    """The outcome word (rl_engine.outcomes.Outcome's value) of a pairwise reward."""
    if reward is None:
        return "invalid"
    return {1.0: "win", 0.5: "tie", 0.0: "loss"}[reward]


def _criteria_text(criteria: Any) -> str | None:
    if criteria is None or criteria == "":
        return None
    return criteria if isinstance(criteria, str) else json.dumps(criteria, ensure_ascii=False)


def _step_of(extra_info: dict[str, Any]) -> int:
    step = extra_info.get("global_steps")
    if step is None:
        raise ValueError(
            "writing_rl_reward: extra_info has no 'global_steps'; the curriculum needs the "
            "training step. verl's async rollout (actor_rollout_ref.rollout.mode=async, the "
            "default) provides it; use that mode"
        )
    return int(step)


async def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: dict[str, Any],
    extra_info: dict[str, Any] | None = None,
    **reward_kwargs: Any,
) -> dict[str, float]:
    """verl's custom reward function: the rollout ``solution_str``'s pairwise reward against the
    sample's current reference, as ``{"score": reward, "judge_invalid": 0.0 | 1.0,
    "tier": t}``. ``ground_truth`` is the row's ``reward_model.ground_truth``: ``id`` (the
    sample id), ``prompt``, ``target`` (references, weakest first) and ``criteria``."""
    settings = HookSettings.from_kwargs(reward_kwargs)
    state = _state(settings)
    extra_info = dict(extra_info or {})
    sample_id = str(ground_truth["id"])
    references = list(ground_truth["target"])
    instruction = str(ground_truth["prompt"])
    criteria = _criteria_text(ground_truth.get("criteria"))
    training = data_source == TRAIN_SOURCE
    if training:
        if not settings.api_url or not settings.run_id:
            raise ValueError("writing_rl_reward: training needs reward_kwargs.api_url and run_id")
        step = _step_of(extra_info)
        tier = await _tier(state, sample_id, step)
        tier = min(tier, len(references) - 1)
    else:
        step, tier = -1, len(references) - 1
    judged = await _judge(state, instruction, solution_str, references[tier], criteria)
    reward = _combined_reward(judged)
    if training:
        records = [
            {
                "sample_id": sample_id,
                "step": step,
                "rollout_index": int(extra_info.get("rollout_index", 0) or 0),
                "rollout": solution_str,
                "reference_tier": tier,
                "verdict": j.verdict,
                # The rollout's outcome over all its orders, as a TRL run's rows carry it.
                "outcome": _outcome(reward),
                "reward": reward,
                "total_reward": reward,
                "position": j.policy_position,
                "rationale": j.rationale,
                "judge": f"openai:{settings.judge_model}",
                "latency_s": round(j.latency_s, 4),
                "error": j.error,
                "attempts": j.attempts,
                "prompt_tokens": j.prompt_tokens,
                "completion_tokens": j.completion_tokens,
            }
            for j in judged
        ]
        await _post_or_spool(state, "judgments", {"judgments": records})
        if reward == 1.0:
            outcome = {"sample_id": sample_id, "step": step, "wins": 1, "ties": 0,
                       "losses": 0, "invalid": 0, "advance": True}  # fmt: skip
            await _post_or_spool(state, "outcomes", {"outcomes": [outcome]})
    invalid = reward is None
    return {
        "score": settings.invalid_reward if invalid else reward,
        "judge_invalid": 1.0 if invalid else 0.0,
        "tier": float(tier),
    }
