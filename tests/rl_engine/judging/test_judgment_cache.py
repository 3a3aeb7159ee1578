from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from rl_engine.judging import (
    CachedJudge,
    InMemoryJudgmentCache,
    OpenAIJudge,
    PairRequest,
    SQLiteJudgmentCache,
    Verdict,
    judgment_key,
)
from rl_engine.testing import FakeOpenAIServer, Fault, transport_to
from rl_engine.testing.policies import echo_policy, tagged_pair


def openai_judge(server: FakeOpenAIServer, **options: object) -> OpenAIJudge:
    transport = transport_to(
        server.base_url, "fake", max_retries=0, backoff_base_s=0.01, hedge=True, **options
    )
    return OpenAIJudge(transport, max_reasks=0)


def test_it_serves_a_repeated_judgment_without_a_request(tmp_path: Path) -> None:
    pairs = [tagged_pair(i, "ABC"[i % 3]) for i in range(6)]
    with FakeOpenAIServer(latency_s=0.0, policy=echo_policy) as server:
        inner = openai_judge(server)
        judge = CachedJudge(inner, SQLiteJudgmentCache(tmp_path / "judgments.sqlite"))
        fresh = judge.compare_sync(pairs)
        requests_after_first = server.stats().requests
        again = asyncio.run(judge.compare(pairs))
        requests_after_second = server.stats().requests
        inner.close()
    assert requests_after_first == 6
    assert requests_after_second == 6  # no HTTP request the second time
    assert [j.verdict for j in again] == [j.verdict for j in fresh]
    assert all(j.cached and j.attempts == 0 for j in again)
    assert not any(j.cached for j in fresh)
    assert again[0].rationale == fresh[0].rationale and again[0].usage == fresh[0].usage


def test_it_treats_the_swapped_order_as_a_new_question() -> None:
    pair = PairRequest("Write.", "first text", "second text")
    swapped = PairRequest("Write.", "second text", "first text")
    assert judgment_key("judge", "template", pair) != judgment_key("judge", "template", swapped)
    assert judgment_key("judge", "t1", pair) != judgment_key("judge", "t2", pair)
    assert judgment_key("judge-1", "t", pair) != judgment_key("judge-2", "t", pair)
    with_criteria = PairRequest("Write.", "first text", "second text", criteria="Short.")
    assert judgment_key("j", "t", pair) != judgment_key("j", "t", with_criteria)

    with FakeOpenAIServer(latency_s=0.0, policy=lambda call: "[[A]]") as server:
        inner = openai_judge(server)
        judge = CachedJudge(inner, InMemoryJudgmentCache())
        judge.compare_sync([pair])
        (judgment,) = judge.compare_sync([swapped])
        inner.close()
        assert server.stats().requests == 2
    assert not judgment.cached


def test_it_never_caches_an_invalid_judgment() -> None:
    with FakeOpenAIServer(latency_s=0.0, policy=lambda call: Fault.GARBLED) as server:
        inner = openai_judge(server)
        cache = InMemoryJudgmentCache()
        judge = CachedJudge(inner, cache)
        first = judge.compare_sync([tagged_pair(0, "A")])
        second = judge.compare_sync([tagged_pair(0, "A")])
        inner.close()
        assert server.stats().requests == 2  # asked again: a failure is not an answer
    assert first[0].verdict is Verdict.INVALID and second[0].verdict is Verdict.INVALID
    assert len(cache) == 0


def test_it_only_sends_the_missing_pairs(tmp_path: Path) -> None:
    with FakeOpenAIServer(latency_s=0.0, policy=echo_policy) as server:
        inner = openai_judge(server)
        judge = CachedJudge(inner, SQLiteJudgmentCache(tmp_path / "c.sqlite"))
        judge.compare_sync([tagged_pair(1, "A"), tagged_pair(3, "A")])
        mixed = judge.compare_sync([tagged_pair(i, "BAAA"[i]) for i in range(4)])
        inner.close()
        assert server.stats().requests == 4
    assert [j.cached for j in mixed] == [False, True, False, True]
    assert [j.verdict for j in mixed] == [Verdict.B, Verdict.A, Verdict.A, Verdict.A]


def test_the_sqlite_cache_is_shared_with_another_process(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    with FakeOpenAIServer(latency_s=0.0, policy=echo_policy) as server:
        inner = openai_judge(server)
        judge = CachedJudge(inner, SQLiteJudgmentCache(path))
        judge.compare_sync([tagged_pair(i, "C") for i in range(3)])
        keys = judge.keys([tagged_pair(i, "C") for i in range(3)])
        inner.close()
    script = (
        "import sys; from rl_engine.judging import SQLiteJudgmentCache as C; "
        "hits = C(sys.argv[1]).get_many(sys.argv[2:]); "
        "print(sorted(j.verdict.value for j in hits.values()))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(path), *keys],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "['TIE', 'TIE', 'TIE']"


@pytest.mark.parametrize("cache_kind", ["memory", "sqlite"])
def test_both_caches_round_trip_a_judgment(cache_kind: str, tmp_path: Path) -> None:
    from rl_engine.judging import HeuristicJudge

    cache = (
        InMemoryJudgmentCache()
        if cache_kind == "memory"
        else SQLiteJudgmentCache(tmp_path / "r.sqlite")
    )
    judge = CachedJudge(HeuristicJudge(), cache)
    pair = PairRequest("Write 20 words.", "one two three", "alpha beta gamma delta")
    (fresh,) = judge.compare_sync([pair])
    (cached,) = judge.compare_sync([pair])
    assert cached.cached and cached.verdict is fresh.verdict and cached.raw == fresh.raw
