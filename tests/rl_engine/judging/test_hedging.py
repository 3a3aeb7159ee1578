"""Hedged requests: a slow request gets a second copy on an idle slot, the first answer wins.

Against the real local HTTP server; each test controls which request hangs."""

from __future__ import annotations

import asyncio
import re
import threading
import time

import pytest

from rl_engine.judging import OpenAIJudge, Verdict
from rl_engine.judging.transport import ChatTransport
from rl_engine.testing import ChatCall, FakeOpenAIServer, Fault, fixed_policy
from rl_engine.testing.policies import echo_policy, tagged_pair
from tests.rl_engine.judging.test_openai_judge import make_judge as make_any_judge

_NUMBER = re.compile(r"number (\d+)\.")


def pair_number(call: ChatCall) -> int:
    match = _NUMBER.search(call.user)
    assert match is not None, call.user
    return int(match.group(1))


def make_judge(server: FakeOpenAIServer, **options: object) -> OpenAIJudge:
    """The judge tests' judge, hedging after a fixed 0.1 s."""
    return make_any_judge(
        server, **{"max_concurrency": 4, "max_retries": 2, "hedge_after_s": 0.1, **options}
    )


def wait_until_idle(server: FakeOpenAIServer, within_s: float = 2.0) -> int:
    """Requests the server still holds once the client's abandoned ones have closed."""
    deadline = time.monotonic() + within_s
    while server.stats().in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    return server.stats().in_flight


def first_request_hangs(call: ChatCall) -> str | Fault:
    return Fault.TIMEOUT if call.index == 0 else echo_policy(call)


def test_a_hung_request_is_hedged_and_the_hedge_answers() -> None:
    with FakeOpenAIServer(latency_s=0.05, hang_s=30.0, policy=first_request_hangs) as server:
        judge = make_judge(server)
        started = time.perf_counter()
        (judgment,) = judge.compare_sync([tagged_pair(0, "B")])
        elapsed = time.perf_counter() - started
        stats = judge.transport.stats
        latencies = sorted(judge.transport._latencies)
        judge.close()
        # The hung copy was abandoned: its connection closed, so the server let it go.
        assert wait_until_idle(server) == 0
    # The adaptive delay's window keeps the slow copy (as "at least this long"), not only the
    # fast hedge: otherwise every hedge would pull the delay down.
    assert len(latencies) == 2 and latencies[0] < latencies[1] and latencies[1] >= 0.1
    assert judgment.verdict is Verdict.B and judgment.error is None
    assert judgment.attempts == 2  # both copies are counted (and may both be billed)
    assert (stats.requests, stats.hedges, stats.hedge_wins) == (2, 1, 1)
    assert 0.15 <= elapsed < 1.0  # hedge after 0.1 s + 0.05 s latency, not the 5 s timeout


def test_without_hedging_a_hung_request_holds_the_pair_until_its_timeout() -> None:
    with FakeOpenAIServer(latency_s=0.05, hang_s=30.0, policy=first_request_hangs) as server:
        judge = make_judge(server, hedge=False, timeout_s=0.6)
        started = time.perf_counter()
        (judgment,) = judge.compare_sync([tagged_pair(0, "A")])
        elapsed = time.perf_counter() - started
        stats = judge.transport.stats
        judge.close()
    assert judgment.verdict is Verdict.A
    assert elapsed >= 0.6
    assert (stats.requests, stats.hedges, stats.retries) == (2, 0, 1)


def test_when_the_first_copy_answers_first_the_hedge_is_abandoned() -> None:
    # The first request answers after 0.3 s, the hedge (sent at 0.1 s) would after 0.5 s.
    def latency(call: ChatCall) -> float:
        return 0.3 if call.index == 0 else 0.5

    with FakeOpenAIServer(policy=echo_policy, latency_for=latency) as server:
        judge = make_judge(server)
        started = time.perf_counter()
        (judgment,) = judge.compare_sync([tagged_pair(0, "C")])
        elapsed = time.perf_counter() - started
        stats = judge.transport.stats
        judge.close()
    assert judgment.verdict is Verdict.TIE
    assert (stats.requests, stats.hedges, stats.hedge_wins) == (2, 1, 0)
    # Not held until the hedge's answer at 0.6 s (the slack is for a loaded machine).
    assert 0.3 <= elapsed < 0.6


def test_a_hedge_only_takes_a_slot_no_pair_is_waiting_for() -> None:
    # Two slots, three pairs. Pair 0's first request hangs; every other request takes 0.3 s.
    # At 0.1 s pair 0 is due a hedge, but pair 2 is waiting for a slot: pair 2 gets the slot
    # pair 1 frees at 0.3 s, and the hedge the one pair 2 frees at 0.6 s.
    order: list[int] = []
    lock = threading.Lock()

    def policy(call: ChatCall) -> str | Fault:
        with lock:
            number = pair_number(call)
            first_for_pair_0 = number == 0 and 0 not in order
            order.append(number)
        return Fault.TIMEOUT if first_for_pair_0 else echo_policy(call)

    with FakeOpenAIServer(latency_s=0.3, hang_s=30.0, policy=policy) as server:
        judge = make_judge(server, max_concurrency=2)
        started = time.perf_counter()
        judgments = judge.compare_sync([tagged_pair(i, "A") for i in range(3)])
        elapsed = time.perf_counter() - started
        stats = judge.transport.stats
        judge.close()
    assert [j.verdict for j in judgments] == [Verdict.A] * 3
    # Pairs 0 and 1 start together (either may reach the server first); the hedge went last.
    assert sorted(order[:2]) == [0, 1] and order[2:] == [2, 0]
    assert stats.hedges == 1 and stats.hedge_wins == 1
    assert 0.9 <= elapsed < 2.0  # hedge sent at 0.6 s, answered at 0.9 s; timeout is 5 s


def test_when_both_copies_fail_the_pair_is_retried_and_both_are_counted() -> None:
    def policy(call: ChatCall) -> str | Fault:
        return Fault.TIMEOUT if call.index < 2 else echo_policy(call)

    with FakeOpenAIServer(latency_s=0.0, hang_s=30.0, policy=policy) as server:
        judge = make_judge(server, timeout_s=0.3)
        (judgment,) = judge.compare_sync([tagged_pair(0, "B")])
        stats = judge.transport.stats
        judge.close()
        assert wait_until_idle(server) == 0
    assert judgment.verdict is Verdict.B
    assert judgment.attempts == 3  # round 1: request + hedge, both timed out; round 2: one
    assert (stats.requests, stats.hedges, stats.retries) == (3, 1, 1)


def test_a_call_cancelled_mid_hedge_gives_back_every_slot() -> None:
    async def scenario(base_url: str) -> int:
        judge = OpenAIJudge(
            ChatTransport(
                base_url,
                "fake-judge",
                max_concurrency=2,
                timeout_s=10.0,
                hedge=True,
                hedge_after_s=0.05,
            )
        )
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(judge.compare([tagged_pair(0, "A")]), timeout=0.3)
        await asyncio.sleep(0.2)  # the abandoned requests' slots come back after a grace
        slots = judge.transport._state().slots
        free = [slots.acquire_nowait(), slots.acquire_nowait()]
        await judge.aclose()
        assert judge.transport.stats.hedges == 1
        return sum(slot is not None for slot in free)

    with FakeOpenAIServer(hang_s=30.0, policy=lambda call: Fault.TIMEOUT) as server:
        assert asyncio.run(scenario(server.base_url)) == 2
        assert wait_until_idle(server) == 0


def test_the_adaptive_delay_is_the_95th_percentile_of_recent_answers() -> None:
    # 40 answers, one at a time, taking 0, 4, ..., 76 ms (twice each).
    def latency(call: ChatCall) -> float:
        return 0.004 * (call.index % 20)

    with FakeOpenAIServer(policy=fixed_policy("[[A]]"), latency_for=latency) as server:
        transport = ChatTransport(server.base_url, "fake", max_concurrency=1, hedge=True)
        prompt = [{"role": "user", "content": "Which is better?"}]

        async def ask(times: int) -> list[float | None]:
            delays = []
            for _ in range(times):
                await transport.complete(prompt)
                delays.append(transport._current_hedge_delay())
            await transport.aclose()
            return delays

        delays = asyncio.run(ask(40))
    assert delays[:19] == [None] * 19  # too few answers to estimate from
    # Re-estimated at the 20th and 36th answers; the top 5% of those took 68-76 ms.
    assert delays[19] is not None and delays[19] == delays[34] != delays[35]
    final = delays[-1]
    # The top 5%, not the median (~40 ms); the upper bound leaves room for a loaded machine.
    assert final is not None and 0.065 <= final < 0.3
    assert transport.stats.hedges == 0  # one slot: never an idle one to hedge on


def test_it_refuses_a_hedge_delay_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="hedge_after_s must be positive"):
        ChatTransport("http://127.0.0.1:9/v1", "fake", hedge=True, hedge_after_s=0.0)
