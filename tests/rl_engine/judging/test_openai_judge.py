"""OpenAIJudge against a real local HTTP server (rl_engine.testing.FakeOpenAIServer)."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from rl_engine.judging import OpenAIJudge, PairRequest, Verdict
from rl_engine.judging.openai_judge import REASK_MESSAGE
from rl_engine.testing import ChatCall, FakeOpenAIServer, Fault, transport_to
from rl_engine.testing.policies import echo_policy, expected_tag, tagged_pair


def make_judge(server: FakeOpenAIServer, **options: object) -> OpenAIJudge:
    settings: dict[str, object] = {
        "max_concurrency": 8,
        "timeout_s": 5.0,
        "max_retries": 3,
        "backoff_base_s": 0.01,
        "seed": 0,
        "hedge": True,
    }
    settings.update(options)
    reasks = {"max_reasks": settings.pop("max_reasks")} if "max_reasks" in settings else {}
    transport = transport_to(server.base_url, "fake-judge", api_key="sk-test", **settings)
    return OpenAIJudge(transport, **reasks)  # type: ignore[arg-type]


def test_it_returns_the_judges_verdicts_in_request_order() -> None:
    tags = ["A", "B", "C", "B", "A", "C", "A", "A", "B", "C"] * 3
    # Later requests answer sooner, so completion order is the reverse of request order.
    with FakeOpenAIServer(
        policy=echo_policy, latency_for=lambda call: 0.002 * (30 - call.index % 30)
    ) as server:
        judge = make_judge(server, max_concurrency=30)
        judgments = judge.compare_sync([tagged_pair(i, tag) for i, tag in enumerate(tags)])
        judge.close()
    expected = {"A": Verdict.A, "B": Verdict.B, "C": Verdict.TIE}
    assert [j.verdict for j in judgments] == [expected[tag] for tag in tags]
    assert all(j.attempts == 1 and j.error is None and not j.cached for j in judgments)
    assert judgments[0].judge == "openai:fake-judge"
    assert "After All" in judgments[0].rationale


def test_it_never_has_more_requests_in_flight_than_its_bound() -> None:
    with FakeOpenAIServer(latency_s=0.1, capacity=100) as server:
        judge = make_judge(server, max_concurrency=3)
        judgments = asyncio.run(judge.compare([tagged_pair(i, "A") for i in range(12)]))
        stats = server.stats()
    assert len(judgments) == 12
    assert stats.requests == 12
    assert stats.max_in_flight == 3  # reached, never exceeded


def test_it_retries_a_429_after_the_retry_after_it_was_given() -> None:
    def policy(call: ChatCall) -> str | Fault:
        return Fault.RATE_LIMIT if call.index == 0 else echo_policy(call)

    with FakeOpenAIServer(latency_s=0.0, retry_after_s=0.4, policy=policy) as server:
        judge = make_judge(server)
        started = time.perf_counter()
        (judgment,) = judge.compare_sync([tagged_pair(0, "B")])
        elapsed = time.perf_counter() - started
        judge.close()
        stats = server.stats()
    assert judgment.verdict is Verdict.B
    assert judgment.attempts == 2
    assert elapsed >= 0.4
    assert stats.statuses[429] == 1 and stats.statuses[200] == 1


def test_it_recovers_from_an_endpoint_over_capacity() -> None:
    with FakeOpenAIServer(
        latency_s=0.02, capacity=2, retry_after_s=0.05, policy=echo_policy
    ) as server:
        judge = make_judge(server, max_concurrency=6, max_retries=20)
        judgments = judge.compare_sync([tagged_pair(i, "A") for i in range(12)])
        judge.close()
        stats = server.stats()
    assert [j.verdict for j in judgments] == [Verdict.A] * 12
    assert stats.statuses[429] > 0
    assert stats.max_in_flight <= 2
    assert sum(j.attempts for j in judgments) == stats.requests


def test_it_retries_server_errors_with_backoff() -> None:
    def policy(call: ChatCall) -> str | Fault:
        return Fault.SERVER_ERROR if call.index < 2 else echo_policy(call)

    with FakeOpenAIServer(latency_s=0.0, policy=policy) as server:
        judge = make_judge(server)
        (judgment,) = judge.compare_sync([tagged_pair(0, "A")])
        judge.close()
    assert judgment.verdict is Verdict.A
    assert judgment.attempts == 3


def test_it_gives_invalid_with_the_reason_when_retries_run_out() -> None:
    with FakeOpenAIServer(latency_s=0.0, policy=lambda call: Fault.SERVER_ERROR) as server:
        judge = make_judge(server, max_retries=2)
        (judgment,) = judge.compare_sync([tagged_pair(0, "A")])
        judge.close()
        stats = server.stats()
    assert judgment.verdict is Verdict.INVALID
    assert judgment.attempts == 3 == stats.requests
    assert judgment.error is not None
    assert "HTTP 500" in judgment.error and "after 3 tries" in judgment.error


def test_it_times_out_a_hanging_request_and_asks_again() -> None:
    def policy(call: ChatCall) -> str | Fault:
        return Fault.TIMEOUT if call.index == 0 else echo_policy(call)

    with FakeOpenAIServer(latency_s=0.0, hang_s=10.0, policy=policy) as server:
        judge = make_judge(server, timeout_s=0.3)
        started = time.perf_counter()
        (judgment,) = judge.compare_sync([tagged_pair(0, "C")])
        elapsed = time.perf_counter() - started
        judge.close()
    assert judgment.verdict is Verdict.TIE
    assert judgment.attempts == 2
    assert 0.3 <= elapsed < 3.0


def test_it_reports_a_timeout_as_the_reason_when_every_try_hangs() -> None:
    with FakeOpenAIServer(hang_s=10.0, policy=lambda call: Fault.TIMEOUT) as server:
        judge = make_judge(server, timeout_s=0.2, max_retries=1)
        (judgment,) = judge.compare_sync([tagged_pair(0, "C")])
        judge.close()
    assert judgment.verdict is Verdict.INVALID
    assert judgment.error is not None and "timed out after 0.2 s" in judgment.error


def test_it_asks_again_when_the_answer_has_no_verdict() -> None:
    calls: list[ChatCall] = []

    def policy(call: ChatCall) -> str | Fault:
        calls.append(call)
        return Fault.GARBLED if call.index == 0 else "[[B]]"

    with FakeOpenAIServer(latency_s=0.0, policy=policy) as server:
        judge = make_judge(server)
        (judgment,) = judge.compare_sync([tagged_pair(0, "B")])
        judge.close()
    assert judgment.verdict is Verdict.B
    assert judgment.attempts == 2
    follow_up = calls[1].messages
    assert follow_up[-2]["role"] == "assistant" and follow_up[-1]["content"] == REASK_MESSAGE
    assert len(judgment.raw["answers"]) == 2


def test_it_gives_invalid_after_the_last_reask_never_reading_stray_letters() -> None:
    with FakeOpenAIServer(latency_s=0.0, policy=lambda call: Fault.GARBLED) as server:
        judge = make_judge(server, max_reasks=2)
        (judgment,) = judge.compare_sync([tagged_pair(0, "A")])
        judge.close()
    # The garbled answer is full of capital A's; it must not count as a verdict for A.
    assert judgment.verdict is Verdict.INVALID
    assert judgment.attempts == 3
    assert judgment.error is not None and "no [[A]]/[[B]]/[[C]] verdict in 3" in judgment.error
    assert "Assistant A" in judgment.rationale


def test_it_keeps_the_token_usage_the_endpoint_reports() -> None:
    def policy(call: ChatCall) -> str | Fault:
        return Fault.GARBLED if call.index == 0 else echo_policy(call)

    with FakeOpenAIServer(latency_s=0.0, policy=policy) as server:
        judge = make_judge(server)
        judgments = judge.compare_sync([tagged_pair(i, "A") for i in range(3)])
        judge.close()
        stats = server.stats()
    assert all(j.usage.prompt_tokens > 0 and j.usage.completion_tokens > 0 for j in judgments)
    assert sum(j.usage.prompt_tokens for j in judgments) == stats.prompt_tokens
    assert sum(j.usage.completion_tokens for j in judgments) == stats.completion_tokens
    # The re-asked pair paid for both of its requests.
    assert max(j.usage.prompt_tokens for j in judgments) > min(
        j.usage.prompt_tokens for j in judgments
    )


def test_it_uses_the_criteria_template_when_a_pair_has_criteria() -> None:
    seen: list[str] = []

    def policy(call: ChatCall) -> str:
        seen.append(call.user)
        return "[[A]]"

    with FakeOpenAIServer(latency_s=0.0, policy=policy) as server:
        judge = make_judge(server)
        judge.compare_sync([PairRequest("Write.", "x", "y", criteria="Uses exactly 3 lines.")])
        judge.compare_sync([PairRequest("Write.", "x", "y")])
        judge.close()
    assert "Uses exactly 3 lines." in seen[0] and "[Criteria" in seen[0]
    assert "[Criteria" not in seen[1]


def test_it_reports_an_unreachable_endpoint_as_invalid() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    judge = OpenAIJudge(
        transport_to(
            f"http://127.0.0.1:{port}/v1", "fake", max_retries=1, backoff_base_s=0.01, timeout_s=2
        )
    )
    (judgment,) = judge.compare_sync([tagged_pair(0, "A")])
    judge.close()
    assert judgment.verdict is Verdict.INVALID
    assert judgment.error is not None and "connection error" in judgment.error
    assert judgment.attempts == 2


def test_it_works_from_async_code_and_sync_code_alike() -> None:
    with FakeOpenAIServer(latency_s=0.0, policy=echo_policy) as server:
        judge = make_judge(server)

        async def judge_twice() -> list[Verdict]:
            async with judge:
                first = await judge.compare([tagged_pair(0, "A")])
                second = await judge.compare([tagged_pair(1, "B")])
            return [first[0].verdict, second[0].verdict]

        assert asyncio.run(judge_twice()) == [Verdict.A, Verdict.B]
        assert judge.compare_sync([tagged_pair(2, "C")])[0].verdict is Verdict.TIE
        assert judge.compare_sync([tagged_pair(3, "A")])[0].verdict is Verdict.A
        judge.close()


@pytest.mark.parametrize("bad", [{"max_reasks": -1}, {"max_retries": -1}, {"max_concurrency": 0}])
def test_it_rejects_impossible_settings(bad: dict[str, int]) -> None:
    reasks = bad.pop("max_reasks", 0)
    with pytest.raises(ValueError):
        OpenAIJudge(transport_to("http://127.0.0.1:1/v1", "fake", **bad), max_reasks=reasks)


def test_the_policy_helper_reads_the_expected_tag() -> None:
    call = ChatCall(0, "m", [{"role": "user", "content": tagged_pair(0, "B").first}])
    with pytest.raises(ValueError):
        expected_tag(call)  # no "assistant A" section: the helper refuses to guess
