from __future__ import annotations

import json

import pytest

from rl_engine.judging import OpenAIScorer, parse_score
from rl_engine.testing import ChatCall, FakeOpenAIServer, Fault, transport_to


def make_scorer(server: FakeOpenAIServer, **options: object) -> OpenAIScorer:
    settings: dict[str, object] = {"max_retries": 2, "backoff_base_s": 0.01, "timeout_s": 5.0}
    settings.update(options)
    reasks = {"max_reasks": settings.pop("max_reasks")} if "max_reasks" in settings else {}
    transport = transport_to(server.base_url, "fake-grader", max_tokens=512, **settings)  # type: ignore[arg-type]
    return OpenAIScorer(transport, **reasks)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ('{"score": 7, "reason": "Vivid."}', 7),
        ('Here you go:\n```json\n{"score": 10, "reason": "x"}\n```', 10),
        ('My grade is {"score": 1, "reason": "off topic"} and that is final.', 1),
        ('{"score": 4.0, "reason": "x"}', 4),
    ],
)
def test_it_reads_valid_grades(text: str, score: int) -> None:
    assert parse_score(text)[0] == score


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"score": 0, "reason": "x"}', "outside 1..10"),
        ('{"score": 7.5, "reason": "x"}', "must be an integer"),
        ('{"score": "7", "reason": "x"}', "must be a number"),
        ('{"score": true}', "must be a number"),
        ('{"reason": "no score"}', "must be a number"),
        ("Score: 7/10", "no JSON object"),
        ("", "empty answer"),
    ],
)
def test_it_rejects_invalid_grades_with_a_reason(text: str, reason: str) -> None:
    score, _, error = parse_score(text)
    assert score is None
    assert error is not None and reason in error


def test_it_grades_through_the_endpoint_with_usage() -> None:
    def policy(call: ChatCall) -> str:
        assert "Be concise." in call.user  # the criteria reach the grader
        return json.dumps({"score": 8, "reason": "Clear and complete."})

    with FakeOpenAIServer(latency_s=0.0, policy=policy) as server:
        scorer = make_scorer(server)
        score = scorer.score_sync("Write a memo.", "Memo text.", criteria="Be concise.")
        scorer.close()
    assert score.value == 8 and score.reason == "Clear and complete."
    assert score.error is None and score.attempts == 1
    assert score.usage.prompt_tokens > 0


def test_it_asks_again_after_an_invalid_grade() -> None:
    def policy(call: ChatCall) -> str:
        return "Seven out of ten." if call.index == 0 else '{"score": 7, "reason": "ok"}'

    with FakeOpenAIServer(latency_s=0.0, policy=policy) as server:
        scorer = make_scorer(server)
        score = scorer.score_sync("Write.", "Text.")
        scorer.close()
    assert score.value == 7 and score.attempts == 2


def test_it_gives_none_with_the_reason_after_the_last_try() -> None:
    with FakeOpenAIServer(latency_s=0.0, policy=lambda call: '{"score": 12}') as server:
        scorer = make_scorer(server, max_reasks=1)
        score = scorer.score_sync("Write.", "Text.")
        scorer.close()
    assert score.value is None
    assert score.attempts == 2
    assert score.error is not None and "outside 1..10" in score.error


def test_it_gives_none_when_the_endpoint_keeps_failing() -> None:
    with FakeOpenAIServer(latency_s=0.0, policy=lambda call: Fault.SERVER_ERROR) as server:
        scorer = make_scorer(server, max_retries=1)
        score = scorer.score_sync("Write.", "Text.")
        scorer.close()
    assert score.value is None
    assert score.error is not None and "HTTP 500" in score.error


def test_it_grades_many_concurrently_in_order() -> None:
    def policy(call: ChatCall) -> str:
        number = int(call.user.split("Response ")[1].split(".")[0])
        return json.dumps({"score": number, "reason": "n"})

    with FakeOpenAIServer(latency_s=0.1, policy=policy) as server:
        scorer = make_scorer(server, max_concurrency=5)
        scores = scorer.score_many_sync([("Write.", f"Response {n}.", None) for n in range(1, 11)])
        scorer.close()
        stats = server.stats()
    assert [s.value for s in scores] == list(range(1, 11))
    assert stats.max_in_flight == 5


def test_it_makes_an_offline_heuristic_scorer_that_prefers_the_asked_length() -> None:
    from rl_engine.judging import HeuristicScorer, JudgeSpec, make_scorer

    scorer = make_scorer(JudgeSpec(endpoint="heuristic"))
    assert isinstance(scorer, HeuristicScorer)
    instruction = "Write about 20 words on rivers."
    on_length = " ".join(f"river{chr(97 + i % 26)}" for i in range(20))
    short = "rivers rivers rivers rivers"
    good, bad = scorer.score_many_sync([(instruction, on_length, None), (instruction, short, None)])
    assert good.value is not None and bad.value is not None
    assert 1 <= bad.value < good.value <= 10
    assert good.error is None
