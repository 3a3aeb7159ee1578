from __future__ import annotations

from pathlib import Path

import pytest

from rl_engine.judging import (
    CachedJudge,
    HeuristicJudge,
    JudgeSpec,
    OpenAIJudge,
    SQLiteJudgmentCache,
    Verdict,
    make_judge,
    make_scorer,
)
from rl_engine.testing import ChatCall, FakeOpenAIServer
from rl_engine.testing.policies import tagged_pair


def test_it_builds_an_openai_judge_with_the_key_from_the_named_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    received: list[str | None] = []

    def policy(call: ChatCall) -> str:
        received.append(call.headers.get("authorization"))
        return "[[A]]"

    monkeypatch.setenv("STUDIO_JUDGE_KEY", "sk-secret")
    with FakeOpenAIServer(latency_s=0.0, policy=policy) as server:
        spec = JudgeSpec(
            kind="openai",
            model="fake",
            base_url=server.base_url,
            api_key_env="STUDIO_JUDGE_KEY",
            max_concurrency=4,
        )
        judge = make_judge(spec)
        assert isinstance(judge, OpenAIJudge)
        assert judge.transport.authorization == "Bearer sk-secret"
        assert judge.compare_sync([tagged_pair(0, "A")])[0].verdict is Verdict.A
        judge.close()
    assert received == ["Bearer sk-secret"]
    assert "sk-secret" not in str(spec.to_dict())


def test_hedging_is_on_unless_the_spec_turns_it_off() -> None:
    base = {"kind": "openai", "model": "fake", "base_url": "http://127.0.0.1:9/v1"}
    judges = [make_judge(JudgeSpec.from_dict(base)), make_judge(JudgeSpec(**base, hedge=False))]
    scorer = make_scorer(JudgeSpec(**base, hedge=False))
    assert [j.transport.hedge for j in judges if isinstance(j, OpenAIJudge)] == [True, False]
    assert scorer.transport.hedge is False  # type: ignore[union-attr]
    for judge in judges:
        judge.close()  # type: ignore[union-attr]


def test_it_wraps_the_judge_in_a_cache_when_a_path_is_given(tmp_path: Path) -> None:
    spec = JudgeSpec(kind="heuristic", cache_path=str(tmp_path / "cache.sqlite"), tie_margin=1.0)
    judge = make_judge(spec)
    assert isinstance(judge, CachedJudge)
    assert isinstance(judge.cache, SQLiteJudgmentCache)
    assert isinstance(judge.judge, HeuristicJudge) and judge.judge.tie_margin == 1.0


def test_a_spec_round_trips_through_a_dict() -> None:
    spec = JudgeSpec(kind="openai", model="qwen-plus", base_url="https://example.test/v1")
    assert JudgeSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"kind": "oracle"}, "kind must be one of"),
        ({"kind": "openai"}, "model is required"),
        ({"kind": "heuristic", "max_concurrency": 0}, "max_concurrency must be at least 1"),
        ({"kind": "heuristic", "timeout_s": 0}, "timeout_s must be positive"),
        ({"kind": "heuristic", "colour": "red"}, "unknown JudgeSpec field(s): colour"),
        ({"model": "x"}, "'kind' is required"),
    ],
)
def test_it_rejects_a_bad_spec_naming_the_field(payload: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as error:
        JudgeSpec.from_dict(payload)
    assert message in str(error.value)


def test_a_scorer_needs_an_openai_or_heuristic_spec() -> None:
    with pytest.raises(ValueError, match="needs an 'openai' or 'heuristic' JudgeSpec"):
        make_scorer(JudgeSpec(kind="local", model="/models/judge"))
