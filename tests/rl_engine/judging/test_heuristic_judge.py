from __future__ import annotations

import asyncio

from rl_engine.judging import HeuristicJudge, PairRequest, Verdict

STORY = (
    "The lighthouse keeper counted ships each night, and every vessel carried a different "
    "story across the dark water toward the harbour where his daughter waited for news. "
)


def words(n: int) -> str:
    """A text of ``n`` distinct English words (no repeated 4-grams)."""
    return " ".join(f"w{chr(97 + i % 26)}{chr(97 + (i // 26) % 26)}" for i in range(n))


def test_it_prefers_the_response_closer_to_the_requested_length() -> None:
    judge = HeuristicJudge()
    instruction = "Write a story about a lighthouse in about 100 words."
    near, far = words(100), words(30)
    assert judge.compare_sync([PairRequest(instruction, near, far)])[0].verdict is Verdict.A
    assert judge.compare_sync([PairRequest(instruction, far, near)])[0].verdict is Verdict.B


def test_it_reads_chinese_length_requests() -> None:
    judge = HeuristicJudge()
    instruction = "请写一篇关于灯塔的文章，200字。"
    right = "".join(chr(0x4E00 + i) for i in range(200))
    short = "".join(chr(0x4E00 + i) for i in range(40))
    (judgment,) = judge.compare_sync([PairRequest(instruction, short, right)])
    assert judgment.verdict is Verdict.B
    assert judgment.raw["B"]["required_words"] == 200


def test_it_prefers_less_repetition_when_no_length_is_asked() -> None:
    judge = HeuristicJudge()
    repetitive = "the ship came home " * 30
    (judgment,) = judge.compare_sync([PairRequest("Write about a ship.", repetitive, STORY)])
    assert judgment.verdict is Verdict.B
    assert judgment.raw["A"]["length_score"] is None
    assert judgment.raw["A"]["repetition_rate"] > 0.5


def test_it_calls_a_tie_within_the_margin() -> None:
    judge = HeuristicJudge(tie_margin=5.0)
    instruction = "Write about 100 words on tea."
    (judgment,) = judge.compare_sync([PairRequest(instruction, words(100), words(98))])
    assert judgment.verdict is Verdict.TIE
    strict = HeuristicJudge(tie_margin=0.0)
    (judgment,) = strict.compare_sync([PairRequest(instruction, words(100), words(98))])
    assert judgment.verdict is Verdict.A


def test_it_is_deterministic_and_says_it_is_not_an_llm_judge() -> None:
    judge = HeuristicJudge()
    pairs = [
        PairRequest("Write 50 words.", words(50), "the the the the the the the"),
        PairRequest("Write a poem.", STORY, STORY),
    ]
    first = judge.compare_sync(pairs)
    second = asyncio.run(HeuristicJudge().compare(pairs))
    assert [(j.verdict, j.raw) for j in first] == [(j.verdict, j.raw) for j in second]
    assert first[1].verdict is Verdict.TIE  # identical responses
    assert "not an LLM judge" in first[0].rationale
