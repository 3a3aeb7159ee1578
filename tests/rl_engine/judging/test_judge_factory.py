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
from rl_engine.testing import ChatCall, FakeOpenAIServer, registry_for
from rl_engine.testing.policies import tagged_pair


def test_it_builds_an_openai_judge_with_the_key_the_endpoint_declares(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    received: list[str | None] = []

    def policy(call: ChatCall) -> str:
        received.append(call.headers.get("authorization"))
        return "[[A]]"

    monkeypatch.setenv("STUDIO_JUDGE_KEY", "sk-secret")
    with FakeOpenAIServer(latency_s=0.0, policy=policy) as server:
        registry = registry_for(server.base_url, name="lab", api_key_env="STUDIO_JUDGE_KEY")
        spec = JudgeSpec(endpoint="lab", model="fake", max_concurrency=4)
        judge = make_judge(spec, registry)
        assert isinstance(judge, OpenAIJudge)
        assert judge.transport.authorization == "Bearer sk-secret"
        assert judge.compare_sync([tagged_pair(0, "A")])[0].verdict is Verdict.A
        judge.close()
    assert received == ["Bearer sk-secret"]
    assert "sk-secret" not in str(spec.to_dict())
    assert "STUDIO_JUDGE_KEY" not in str(spec.to_dict())


def test_hedging_is_on_unless_the_spec_turns_it_off() -> None:
    registry = registry_for("http://127.0.0.1:9/v1", name="lab")
    base = {"endpoint": "lab", "model": "fake"}
    judges = [
        make_judge(JudgeSpec.from_dict(base), registry),
        make_judge(JudgeSpec(**base, hedge=False), registry),
    ]
    scorer = make_scorer(JudgeSpec(**base, hedge=False), registry)
    assert [j.transport.hedge for j in judges if isinstance(j, OpenAIJudge)] == [True, False]
    assert scorer.transport.hedge is False  # type: ignore[union-attr]
    for judge in judges:
        judge.close()  # type: ignore[union-attr]


def test_it_wraps_the_judge_in_a_cache_when_a_path_is_given(tmp_path: Path) -> None:
    spec = JudgeSpec(
        endpoint="heuristic", cache_path=str(tmp_path / "cache.sqlite"), tie_margin=1.0
    )
    judge = make_judge(spec)
    assert isinstance(judge, CachedJudge)
    assert isinstance(judge.cache, SQLiteJudgmentCache)
    assert isinstance(judge.judge, HeuristicJudge) and judge.judge.tie_margin == 1.0


def test_a_spec_round_trips_through_a_dict() -> None:
    spec = JudgeSpec(endpoint="lab", model="qwen-plus", structured_output="grammar")
    assert JudgeSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"kind": "oracle"}, "unknown kind 'oracle'"),
        ({"endpoint": "Not A Name"}, "JudgeSpec.endpoint must name a declared endpoint"),
        ({"max_concurrency": 0}, "max_concurrency must be at least 1"),
        ({"timeout_s": 0}, "timeout_s must be positive"),
        ({"colour": "red"}, "unknown JudgeSpec field(s): colour"),
        ({"endpoint": "x", "api_key_env": "SECRET_KEY"}, "unknown JudgeSpec field(s): api_key_env"),
        ({"structured_output": "regex"}, "structured_output must be one of"),
        ({"extra_body": {"model": "other"}}, "extra_body may not set model"),
    ],
)
def test_it_rejects_a_bad_spec_naming_the_field(payload: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as error:
        JudgeSpec.from_dict(payload)
    assert message in str(error.value)


def test_the_model_must_be_one_the_endpoint_lists() -> None:
    registry = registry_for("http://127.0.0.1:9/v1", name="lab", models=("qwen-plus", "qwen-max"))
    assert registry.resolve(JudgeSpec(endpoint="lab")).model == "qwen-plus"
    with pytest.raises(ValueError, match="model 'gpt-4o' is not one of them"):
        make_judge(JudgeSpec(endpoint="lab", model="gpt-4o"), registry)
    with pytest.raises(ValueError, match="needs a model"):
        make_judge(JudgeSpec(endpoint="local"), registry)
    with pytest.raises(ValueError, match="unknown endpoint 'elsewhere'"):
        make_judge(JudgeSpec(endpoint="elsewhere", model="m"), registry)


def test_a_scorer_needs_an_openai_or_heuristic_endpoint() -> None:
    with pytest.raises(ValueError, match="needs an OpenAI-compatible or the 'heuristic' endpoint"):
        make_scorer(JudgeSpec(endpoint="local", model="/models/judge"))
