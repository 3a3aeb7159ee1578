"""A step whose judge gives no verdicts is held and judged again; past the budget the run ends.

Real HTTP against the fake OpenAI-compatible server (or a port nobody listens on); the waits
run on a fake clock, so the tests take the time of their requests only.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from rl_engine.curriculum import InMemoryStore, ReferenceScheduler
from rl_engine.judging import OpenAIJudge
from rl_engine.reward import PairwiseReward
from rl_engine.testing import FakeOpenAIServer, fixed_policy, transport_to
from rl_engine.training import (
    InMemoryReporter,
    JudgeOutageError,
    JudgeOutagePolicy,
    JudgeWait,
    TrainingInstruction,
)
from rl_engine.training.reward_fn import PairwiseRewardFunction


class FakeClock:
    """``sleep`` advances ``now``; ``on_sleep`` runs at each sleep (to end an outage)."""

    def __init__(self, on_sleep: Callable[[float], None] | None = None) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self.on_sleep = on_sleep

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(seconds)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reward_fn(
    base_url: str, clock: FakeClock, reporter: InMemoryReporter, **policy: float
) -> tuple[PairwiseRewardFunction, InMemoryStore, OpenAIJudge]:
    instructions = {
        "a": TrainingInstruction("a", "Write.", ["ref a0", "ref a1"]),
        "b": TrainingInstruction("b", "Write.", ["ref b0", "ref b1"]),
    }
    store = InMemoryStore({"a": 2, "b": 2})
    judge = OpenAIJudge(transport_to(base_url, "judge", timeout_s=5, max_retries=0), max_reasks=0)
    function = PairwiseRewardFunction(
        instructions,
        ReferenceScheduler(store),
        PairwiseReward(judge),
        reporter,
        outage=JudgeOutagePolicy(**policy),
        sleep=clock.sleep,
        clock=clock,
    )
    return function, store, judge


def test_a_dead_endpoint_fails_the_step_with_the_reason_after_the_budget() -> None:
    clock, reporter = FakeClock(), InMemoryReporter()
    function, store, judge = reward_fn(f"http://127.0.0.1:{free_port()}", clock, reporter,
                                       budget_s=30.0)  # fmt: skip
    with pytest.raises(JudgeOutageError) as caught:
        function.score_step(1, ["a", "b"], ["one", "two"])
    judge.close()
    message = str(caught.value)
    assert "step 1: the judge gave no usable verdict for 2 of 2 rollouts (100%" in message
    assert "through 3 retries over 30 s (outage budget 30 s)" in message
    assert "last error:" in message and "keeps its last checkpoint" in message
    # Backoff 5, 10, then the rest of the budget; the wait was shown, then cleared.
    assert clock.slept == [1.0] * 5 + [1.0] * 10 + [1.0] * 15
    waits = reporter.judge_waits
    assert [w.retries for w in waits if w is not None] == [0, 1, 2]
    assert waits[-1] is None and isinstance(waits[0], JudgeWait)
    assert waits[0].invalid_rate == 1.0 and waits[0].budget_s == 30.0 and waits[0].last_error
    # Nothing of the step was recorded: it will run again on resume.
    assert reporter.judgments == [] and store.snapshot()["a"].last_step == -1


def test_a_judge_that_never_gives_a_verdict_fails_with_its_error() -> None:
    clock, reporter = FakeClock(), InMemoryReporter()
    with FakeOpenAIServer(latency_s=0.0, policy=fixed_policy("Both are fine.")) as server:
        function, _, judge = reward_fn(server.base_url, clock, reporter, budget_s=12.0)
        with pytest.raises(JudgeOutageError, match=r"no \[\[A\]\]/\[\[B\]\]/\[\[C\]\] verdict"):
            function.score_step(3, ["a", "b"], ["one", "two"])
        judge.close()
        # The first try and two re-judgings (after 5 s and 7 s), each of both rollouts.
        assert server.stats().requests == 6


def test_an_outage_shorter_than_the_budget_loses_no_step() -> None:
    port = free_port()
    servers: list[FakeOpenAIServer] = []

    def end_outage(_: float) -> None:
        if not servers:  # the endpoint comes back during the first wait
            servers.append(
                FakeOpenAIServer(latency_s=0.0, port=port, policy=fixed_policy("[[B]]")).start()
            )

    clock, reporter = FakeClock(end_outage), InMemoryReporter()
    function, store, judge = reward_fn(f"http://127.0.0.1:{port}", clock, reporter, budget_s=60.0)
    try:
        rewards = function.score_step(1, ["a", "b", "a"], ["one", "two", "three"])
    finally:
        judge.close()
        for server in servers:
            server.stop()
    assert rewards == [1.0, 1.0, 1.0]
    assert clock.now == 5.0  # one wait of the first backoff
    assert [j.outcome for j in reporter.judgments] == ["win"] * 3
    assert reporter.judge_waits[0] is not None and reporter.judge_waits[-1] is None
    stats = function.pop_stats(1)
    assert stats is not None and stats.judge_retries == 1 and stats.invalid_rate == 0.0
    # The step was recorded once, with its wins: both samples moved up.
    assert {sid: s.tier for sid, s in store.snapshot().items()} == {"a": 1, "b": 1}


def test_a_stop_asked_for_ends_the_wait() -> None:
    with FakeOpenAIServer(latency_s=0.0, policy=fixed_policy("Both are fine.")) as server:
        clock, reporter = FakeClock(), InMemoryReporter()
        function, _, judge = reward_fn(server.base_url, clock, reporter, max_invalid_rate=1.0)
        # A step without any verdict is held even at max_invalid_rate=1; a cancel ends it.
        reporter.stop()
        with pytest.raises(JudgeOutageError, match="stopped while waiting for the judge"):
            function.score_step(1, ["a"], ["one"])
        judge.close()
    assert clock.slept == []


def test_the_policy_checks_its_settings() -> None:
    with pytest.raises(ValueError, match="max_invalid_rate"):
        JudgeOutagePolicy(max_invalid_rate=1.5)
    with pytest.raises(ValueError, match="budget cannot be negative"):
        JudgeOutagePolicy(budget_s=-1)


def test_a_step_under_the_invalid_limit_is_not_held() -> None:
    answers = iter(["[[B]]", "no tag", "[[A]]", "[[C]]"])
    with FakeOpenAIServer(latency_s=0.0, capacity=1, policy=lambda call: next(answers)) as server:
        clock, reporter = FakeClock(), InMemoryReporter()
        function, _, judge = reward_fn(server.base_url, clock, reporter, max_invalid_rate=0.25)
        rewards = function.score_step(1, ["a", "b", "a", "b"], ["1", "2", "3", "4"])
        judge.close()
    assert sorted(rewards, key=str) == sorted([1.0, None, 0.0, 0.5], key=str)
    assert clock.slept == [] and reporter.judge_waits == []
