"""The verl reward hook against a live internal API and a fake judge, in this environment.

``test_verl_contract.py`` runs the same hook through verl's own code in a verl virtualenv;
these tests pin its behaviour fast: which reference it judges against, what it stores, how it
advances the curriculum, and that a failed judge call is never a silent loss.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rl_engine.judging import Verdict
from rl_engine.judging import parse_verdict as engine_parse_verdict
from rl_engine.reward import combine_orders as engine_combine_orders
from rl_engine.reward import pairwise_reward as engine_pairwise_reward
from rl_engine.testing.openai_server import ChatCall, FakeOpenAIServer, Fault
from tests.verl_plugin.conftest import load_hook, reading_judge
from tests.webapp.ops.conftest import TOKEN, RunWithCurriculum, make_run
from webapp.studio.models import CurriculumState, CurriculumTransition, Judgment

hook = load_hook()


@pytest.fixture
def setup(
    transactional_db: None, settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> RunWithCurriculum:
    settings.WRITING_RL_INTERNAL_API_TOKEN = TOKEN
    monkeypatch.setenv(hook.TOKEN_ENV, TOKEN)
    monkeypatch.chdir(tmp_path)
    return make_run(tiers=(3, 2))


def ground_truth(setup: RunWithCurriculum, index: int) -> dict[str, Any]:
    instruction = setup.instructions[index]
    refs = [r.text for r in instruction.references.order_by("tier")]
    return {
        "id": str(instruction.pk),
        "prompt": instruction.prompt,
        "target": refs,
        "criteria": None,
    }


def score(
    setup: RunWithCurriculum,
    live_server: Any,
    judge_server: FakeOpenAIServer,
    prompts_file: str,
    index: int,
    rollout: str,
    step: int | None,
    data_source: str = "writing_rl",
    **overrides: Any,
) -> dict[str, float]:
    kwargs = {
        "api_url": live_server.url,
        "run_id": str(setup.run.pk),
        "judge_base_url": judge_server.base_url,
        "judge_model": "judge",
        "prompts_file": prompts_file,
        "max_retries": 0,
        **overrides,
    }
    extra = {"index": index} if step is None else {"index": index, "global_steps": step}
    return asyncio.run(
        hook.compute_score(
            data_source=data_source,
            solution_str=rollout,
            ground_truth=ground_truth(setup, index),
            extra_info=extra,
            **kwargs,
        )
    )


def test_it_rewards_a_win_stores_it_and_moves_the_sample_up_once_per_step(
    setup: RunWithCurriculum, live_server: Any, judge_server: FakeOpenAIServer, prompts_file: str
) -> None:
    args = (setup, live_server, judge_server, prompts_file, 0)
    assert score(*args, "a GOOD story", step=1) == {"score": 1.0, "judge_invalid": 0.0, "tier": 0.0}
    # Another rollout of step 1 is still judged against tier 0, and a second win moves nothing.
    assert score(*args, "another GOOD one", step=1)["tier"] == 0.0
    assert score(*args, "a plain story", step=2) == {
        "score": 0.5,
        "judge_invalid": 0.0,
        "tier": 1.0,
    }

    state = CurriculumState.objects.get(run=setup.run, instruction=setup.instructions[0])
    assert (state.tier, state.last_step) == (1, 1)
    moves = CurriculumTransition.objects.filter(run=setup.run)
    assert [(t.step, t.from_tier, t.to_tier) for t in moves] == [(1, 0, 1)]
    rows = list(Judgment.objects.filter(run=setup.run).order_by("id"))
    assert [(r.step, r.reference_tier, r.verdict, r.reward) for r in rows] == [
        (1, 0, "win", 1.0), (1, 0, "win", 1.0), (2, 1, "tie", 0.5),
    ]  # fmt: skip
    assert rows[0].position == "second" and rows[0].rollout == "a GOOD story"
    assert rows[0].judge == "openai:judge" and "[[B]]" in rows[0].rationale
    # The reference shown to the judge was the tier's text, first (position disadvantage).
    assert judge_server.stats().requests == 3


def test_it_never_turns_a_failed_judgment_into_a_silent_loss(
    setup: RunWithCurriculum, live_server: Any, judge_server: FakeOpenAIServer, prompts_file: str
) -> None:
    result = score(setup, live_server, judge_server, prompts_file, 1, "GARBLE", step=4)
    assert result == {"score": 0.5, "judge_invalid": 1.0, "tier": 0.0}
    row = Judgment.objects.get(run=setup.run)
    assert row.verdict == "invalid" and row.reward is None
    assert "no [[A]], [[B]] or [[C]]" in row.error
    assert row.attempts == 2  # the answer, then one re-ask
    assert (
        CurriculumState.objects.get(run=setup.run, instruction=setup.instructions[1]).last_step
        == -1
    )
    custom = score(setup, live_server, judge_server, prompts_file, 1, "GARBLE", step=5,
                   invalid_reward=0.25)  # fmt: skip
    assert custom["score"] == 0.25


def test_an_outage_shorter_than_the_budget_holds_the_judgment_and_loses_no_verdict(
    setup: RunWithCurriculum, live_server: Any, prompts_file: str
) -> None:
    calls: list[int] = []

    def down_then_up(call: ChatCall) -> str | Fault:
        calls.append(1)
        return Fault.SERVER_ERROR if len(calls) <= 3 else reading_judge(call)

    with FakeOpenAIServer(latency_s=0.0, policy=down_then_up) as server:
        result = score(setup, live_server, server, prompts_file, 0, "a GOOD story", step=1,
                       judge_outage_budget_s=30.0, judge_outage_max_wait_s=0.05)  # fmt: skip
    assert result == {"score": 1.0, "judge_invalid": 0.0, "tier": 0.0}
    assert len(calls) == 4  # three failures waited out, then the verdict
    row = Judgment.objects.get(run=setup.run)
    assert (row.verdict, row.attempts, row.error) == ("win", 4, "")


def test_a_judge_down_past_the_outage_budget_fails_the_job_with_the_reason(
    setup: RunWithCurriculum, live_server: Any, prompts_file: str
) -> None:
    dead = FakeOpenAIServer(latency_s=0.0, policy=reading_judge)
    with dead:
        base_url = dead.base_url  # a port nobody listens on once the server is gone
    started = time.monotonic()
    with pytest.raises(hook.JudgeOutageError, match=r"waiting for judge: .* outage budget"):
        score(setup, live_server, dead, prompts_file, 0, "a GOOD story", step=1,
              judge_base_url=base_url, judge_outage_budget_s=0.3,
              judge_outage_max_wait_s=0.05)  # fmt: skip
    assert time.monotonic() - started < 30
    # Nothing was stored or moved: no silent loss, no half-judged step.
    assert not Judgment.objects.filter(run=setup.run).exists()
    assert not CurriculumTransition.objects.filter(run=setup.run).exists()


def test_it_judges_both_orders_and_calls_a_flip_a_tie(
    setup: RunWithCurriculum, live_server: Any, judge_server: FakeOpenAIServer, prompts_file: str
) -> None:
    result = score(setup, live_server, judge_server, prompts_file, 0, "GOOD", step=1,
                   position="both")  # fmt: skip
    assert result["score"] == 1.0
    rows = Judgment.objects.filter(run=setup.run).order_by("position")
    assert [(r.position, r.verdict) for r in rows] == [("first", "win"), ("second", "win")]


def test_it_judges_validation_rollouts_against_the_best_reference_and_stores_nothing(
    setup: RunWithCurriculum, live_server: Any, judge_server: FakeOpenAIServer, prompts_file: str
) -> None:
    result = score(setup, live_server, judge_server, prompts_file, 0, "plain", step=None,
                   data_source="writing_rl/eval")  # fmt: skip
    assert result == {"score": 0.5, "judge_invalid": 0.0, "tier": 2.0}
    assert Judgment.objects.count() == 0


def test_it_keeps_judgments_the_api_could_not_take(
    setup: RunWithCurriculum, judge_server: FakeOpenAIServer, prompts_file: str, tmp_path: Path
) -> None:
    settings = hook.HookSettings(
        api_url="http://127.0.0.1:9", run_id="5", judge_base_url=judge_server.base_url,
        judge_model="judge", prompts_file=prompts_file, api_retries=1,
    )  # fmt: skip

    async def post() -> None:
        state = hook._state(settings)
        await hook._post_or_spool(state, "judgments", {"judgments": [{"rollout": "kept"}]})

    asyncio.run(post())
    kept = [json.loads(line) for line in (tmp_path / hook.UNSENT_FILE).read_text().splitlines()]
    assert kept == [{"path": "judgments", "run_id": "5", "judgments": [{"rollout": "kept"}]}]


def test_it_fails_loudly_on_a_wrong_token_or_a_missing_step(
    setup: RunWithCurriculum,
    live_server: Any,
    judge_server: FakeOpenAIServer,
    prompts_file: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = (setup, live_server, judge_server, prompts_file, 0)
    with pytest.raises(ValueError, match="global_steps"):
        score(*args, "x", step=None)
    monkeypatch.setenv(hook.TOKEN_ENV, "wrong")
    with pytest.raises(RuntimeError, match="answered 401"):
        score(*args, "x", step=1)


@given(st.text(alphabet="AB[] C.x\n", max_size=30))
def test_it_reads_verdicts_exactly_as_the_engine_does(text: str) -> None:
    engine = engine_parse_verdict(text)
    assert hook.parse_verdict(text) == engine.value
    for position in ("first", "second"):
        assert hook.pairwise_reward(engine.value, position) == engine_pairwise_reward(
            engine, position
        )


@pytest.mark.parametrize("second", ["A", "B", "TIE", "INVALID"])
@pytest.mark.parametrize("first", ["A", "B", "TIE", "INVALID"])
def test_it_combines_both_orders_as_the_engine_does(first: str, second: str) -> None:
    # verdicts of the two calls: the policy shown second (default order), then shown first
    judged = [hook._Judged(second, "second", "", 0.0, 1, None),
              hook._Judged(first, "first", "", 0.0, 1, None)]  # fmt: skip
    expected = engine_combine_orders(
        engine_pairwise_reward(Verdict(second), "second"),
        engine_pairwise_reward(Verdict(first), "first"),
    )
    assert hook._combined_reward(judged) == expected


def test_it_renders_the_engine_prompt_templates(prompts_file: str) -> None:
    from rl_engine.judging.prompts import DEFAULT_PROMPTS
    from rl_engine.judging.types import PairRequest

    templates = hook._Templates.load(prompts_file)
    for criteria in (None, "Be vivid."):
        request = PairRequest("Write.", "first text", "second text", criteria)
        expected = DEFAULT_PROMPTS.for_request(request).render(request)
        assert templates.messages("Write.", "first text", "second text", criteria) == expected
    assert (
        json.loads(Path(prompts_file).read_text())["default"]["user"]
        == DEFAULT_PROMPTS.default.user
    )
