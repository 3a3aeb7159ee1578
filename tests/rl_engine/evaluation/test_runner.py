"""The evaluation runner on each benchmark kind, with real judges on a local fake endpoint,
the heuristic grader and the tiny model."""

from __future__ import annotations

import json
import re

import pytest

from rl_engine.evaluation.evaluators import GraderScorer, make_evaluators
from rl_engine.evaluation.grading import (
    LONGBENCH_WRITE_QUALITY,
    EndpointGrader,
    HeuristicGrader,
    LocalGrader,
    RubricRequest,
    criterion_rubric,
    parse_rubric_answer,
)
from rl_engine.evaluation.longinput import LongInputItem
from rl_engine.evaluation.runner import (
    Criterion,
    EvalItem,
    EvalSettings,
    Evaluators,
    evaluate,
    generate_responses,
    judge_responses_sync,
)
from rl_engine.judging import HeuristicJudge, JudgeSpec, OpenAIJudge, OpenAIScorer
from rl_engine.judging._aio import run_sync
from rl_engine.judging.transport import ChatTransport, RetryPolicy
from rl_engine.models import generate, tiny_model
from rl_engine.testing import ChatCall, FakeOpenAIServer, Fault, transport_to
from rl_engine.text import length_score


def words(n: int, word: str = "word") -> str:
    return " ".join([word] * n)


# -- WritingBench -------------------------------------------------------------------------------


def test_it_scores_writingbench_criteria_one_at_a_time_and_skips_failed_ones() -> None:
    seen_criteria: list[str] = []

    def policy(call: ChatCall) -> str | Fault:
        match = re.search(r"\[Criteria\]\n(.*?)\n\n", call.user, re.S)
        criterion = match.group(1) if match else ""
        seen_criteria.append(criterion)
        if criterion.startswith("Broken"):
            return Fault.GARBLED
        grade = {"Tone": 8, "Structure": 6, "Depth": 4, "Facts": 10}[criterion.split(":")[0]]
        return json.dumps({"score": grade, "reason": "fake"})

    items = [
        EvalItem("q1", "Write a memo.", domain="Business",
                 criteria=(Criterion("Tone", "formal"), Criterion("Structure", "clear"),
                           Criterion("Broken", "never graded"))),
        EvalItem("q2", "Write an essay.", domain="Academic",
                 criteria=(Criterion("Depth", "deep"), Criterion("Facts", "right"))),
    ]  # fmt: skip
    for item in items:
        item.response = "A response."
    with FakeOpenAIServer(latency_s=0.0, policy=policy) as server:
        scorer = OpenAIScorer(
            transport_to(server.base_url, max_retries=0, max_tokens=512), max_reasks=1
        )
        results, aggregates = judge_responses_sync(
            items,
            generate_responses(items, EvalSettings("writingbench"), None),
            EvalSettings("writingbench"),
            Evaluators(scorer=scorer),
        )
    # One call per criterion (the broken one asked twice: the first answer plus one re-ask).
    assert len(seen_criteria) == 6
    assert {c.split(":")[0] for c in seen_criteria} == {
        "Tone",
        "Structure",
        "Broken",
        "Depth",
        "Facts",
    }
    assert [r.score for r in results] == [70.0, 70.0]  # (8+6)/2 x10, (4+10)/2 x10
    assert results[0].details["invalid_criteria"] == 1
    assert results[0].details["criteria"][2]["score"] is None
    assert results[0].details["criteria"][2]["error"]
    assert aggregates["score"] == pytest.approx(70.0)  # (8+6+4+10)/4 x10
    assert aggregates["criteria_invalid"] == 1
    # One per-domain number: the mean of the domain's item scores (WritingBench's own).
    assert aggregates["domain_scores"] == {"Academic": 70.0, "Business": 70.0}
    assert "per_domain" not in aggregates


def test_it_scores_writingbench_with_the_heuristic_grader_as_scorer() -> None:
    items = [EvalItem("q", "Write about rivers and mountains.", criteria=(Criterion("Topic"),))]
    items[0].response = "Rivers run from mountains to the sea, carving valleys as they go."
    evaluators = make_evaluators(JudgeSpec(endpoint="heuristic"))
    assert isinstance(evaluators.scorer, GraderScorer)
    settings = EvalSettings("writingbench")
    results, aggregates = judge_responses_sync(
        items, generate_responses(items, settings, None), settings, evaluators
    )
    (criterion,) = results[0].details["criteria"]
    assert 1 <= criterion["score"] <= 10
    assert aggregates["score"] == criterion["score"] * 10


# -- LongBench-Write ----------------------------------------------------------------------------


def quality_policy(call: ChatCall) -> str | Fault:
    if "[The start of the response]\nbroken" in call.user:
        return "I refuse to give numbers."
    answer = {
        "Relevance": 5, "Accuracy": 4, "Coherence": 3, "Clarity": 3,
        "Breadth_and_Depth": 2, "reading experience": 1, "reason": "fake",
    }  # fmt: skip
    return "Here is my grade:\n```json\n" + json.dumps(answer) + "\n```"


def test_it_scores_longbench_write_length_and_six_dimension_quality() -> None:
    items = [
        EvalItem("a", "Write 100 words.", required_words=100, response=words(100)),
        EvalItem("b", "Write 300 words.", required_words=300, response=words(100)),  # a third
        EvalItem("c", "Write 100 words.", required_words=100, response=words(400)),  # x4
        EvalItem("d", "Write 600 words.", required_words=600, response="broken " + words(599)),
    ]
    settings = EvalSettings("longbench_write")
    with FakeOpenAIServer(latency_s=0.0, policy=quality_policy) as server:
        transport = ChatTransport(server.base_url, "fake", retry=RetryPolicy(max_retries=0))
        grader = EndpointGrader(transport, max_reasks=1)
        results, aggregates = judge_responses_sync(
            items, generate_responses(items, settings, None), settings, Evaluators(grader=grader)
        )
        requests = server.stats().requests
    assert requests == 3 + 2  # three valid answers, the broken one asked twice
    quality = ((5 - 1) + (4 - 1) + 2 + 2 + 1 + 0) * 25 / 6  # 50.0
    assert [r.details["length_score"] for r in results] == [100.0, 0.0, 0.0, 100.0]
    assert [r.details["quality_score"] for r in results[:3]] == [quality] * 3
    assert results[0].score == (100 + quality) / 2
    assert results[3].score is None and "quality judgment failed" in (results[3].error or "")
    assert aggregates["S_l"] == pytest.approx(50.0)  # every item counts for length
    assert aggregates["S_q"] == pytest.approx(quality)  # the failed one is left out
    assert aggregates["S_bar"] == pytest.approx((50.0 + quality) / 2)
    assert aggregates["quality_invalid"] == 1
    first_bucket = aggregates["buckets"][0]
    assert first_bucket["bucket"] == "[0, 500)" and first_bucket["count"] == 3
    assert aggregates["buckets"][1]["count"] == 1  # 600 words required
    assert aggregates["buckets"][-1]["bucket"] == "overall"


def test_it_gives_an_empty_response_zero_length_score_and_handles_cjk() -> None:
    items = [
        EvalItem("empty", "Write 200 words.", required_words=200, response=""),
        EvalItem("cjk", "写一百字。", required_words=100, response="写" * 250),
    ]
    settings = EvalSettings("longbench_write")
    results, _ = judge_responses_sync(
        items,
        generate_responses(items, settings, None),
        settings,
        Evaluators(grader=HeuristicGrader()),
    )
    assert results[0].details["length_score"] == 0.0
    assert results[0].details["dimensions"] == dict.fromkeys(LONGBENCH_WRITE_QUALITY.keys, 1)
    assert results[1].produced_words == 250
    assert results[1].details["length_score"] == pytest.approx(length_score(100, 250)) == 50.0


# -- creative ----------------------------------------------------------------------------------


def test_it_scores_creative_pieces_over_iterations_with_a_bootstrap_interval() -> None:
    model, tokenizer = tiny_model(seed=1)
    criteria = (
        Criterion("Imagery"),
        Criterion("Coherence"),
        Criterion("Purple prose", negative=True),
    )
    items = [
        EvalItem(f"p{i}", f"Write a poem about {topic}.", criteria=criteria)
        for i, topic in enumerate(["rain", "salt", "wolves"])
    ]
    settings = EvalSettings(
        "creative", max_new_tokens=12, iterations=2, temperature=1.0, bootstrap=200
    )
    report = evaluate(items, settings, Evaluators(grader=HeuristicGrader()), model=model,
                      tokenizer=tokenizer)  # fmt: skip
    assert len(report.results) == 6
    assert sorted((r.item_id, r.iteration) for r in report.results) == [
        (f"p{i}", it) for i in range(3) for it in range(2)
    ]
    for result in report.results:
        assert set(result.details["criteria"]) == {"Imagery", "Coherence", "Purple prose"}
        assert result.details["negative"] == ["Purple prose"]
        values = result.details["criteria"]
        expected = (values["Imagery"] + values["Coherence"] + 20 - values["Purple prose"]) / 3 * 5
        assert result.score == pytest.approx(expected)
    aggregates = report.aggregates
    assert aggregates["pieces"] == 6
    assert aggregates["low"] <= aggregates["score"] <= aggregates["high"]
    assert report.generation_s > 0


def test_it_refuses_several_iterations_with_greedy_decoding() -> None:
    with pytest.raises(ValueError, match="temperature"):
        EvalSettings("creative", iterations=3, temperature=0.0)


# -- LongBench v2 -------------------------------------------------------------------------------


CLASSES = [("easy", "short"), ("hard", "long"), ("hard", "long")]


def test_it_answers_long_input_questions_truncating_the_context_from_the_middle() -> None:
    _model, tokenizer = tiny_model()
    context = "START " + words(3000, "filler") + " END"
    items = [
        EvalItem(
            f"m{i}", "", domain="Single-document QA",
            long_input=LongInputItem(
                f"m{i}", context, "Which word ends it?", ("END", "START", "filler", "none"),
                answer="A", difficulty=difficulty, length=length,
            ),
        )
        for i, (difficulty, length) in enumerate(CLASSES)
    ]  # fmt: skip
    prompts_seen: list[str] = []
    answers = iter(["The correct answer is (A)", "The correct answer is (B)", "I do not know"])

    def generator(prompts: list[str]) -> list[str]:
        prompts_seen.extend(prompts)
        return [next(answers) for _ in prompts]

    settings = EvalSettings("longbench_v2", context_tokens=512, max_new_tokens=64, batch_size=2)
    report = evaluate(items, settings, Evaluators(), generator=generator, tokenizer=tokenizer)
    assert len(prompts_seen) == 3
    for prompt in prompts_seen:
        assert "START" in prompt and "END" in prompt  # both ends kept, the middle cut
        assert len(tokenizer.encode(prompt, add_special_tokens=False)) <= 512 - 64
    assert all(r.details["truncated_tokens"] > 2500 for r in report.results)
    assert [r.score for r in report.results] == [100.0, 0.0, 0.0]
    assert report.results[2].error and "counted as wrong" in report.results[2].error
    aggregates = report.aggregates
    assert aggregates["accuracy"] == pytest.approx(1 / 3)
    assert aggregates["invalid"] == 1 and aggregates["truncated"] == 3
    assert aggregates["by_difficulty"] == {"easy": 100.0, "hard": 0.0}
    assert aggregates["by_length"] == {"long": 0.0, "short": 100.0}
    assert aggregates["extraction"] == "official"


def test_the_lenient_extraction_is_an_explicit_setting_recorded_with_the_scores() -> None:
    responses = ["the correct answer is (a)", "The correct answer is (A)"]
    items = [
        EvalItem(
            f"m{i}", "", response=text,
            long_input=LongInputItem(
                f"m{i}", "A short context.", "Which?", ("a", "b", "c", "d"),
                answer="A", difficulty="easy", length="short",
            ),
        )
        for i, text in enumerate(responses)
    ]  # fmt: skip
    scores = {}
    for extraction in ("official", "lenient"):
        settings = EvalSettings("longbench_v2", extraction=extraction)
        _results, aggregates = judge_responses_sync(
            items, generate_responses(items, settings, None), settings, Evaluators()
        )
        assert aggregates["extraction"] == extraction
        scores[extraction] = aggregates["score"]
    # pred.py is case-sensitive: the lowercase statement is invalid there.
    assert scores == {"official": 50.0, "lenient": 100.0}
    with pytest.raises(ValueError, match="extraction must be one of official, lenient"):
        EvalSettings("longbench_v2", extraction="fuzzy")


# -- pairwise -----------------------------------------------------------------------------------


def test_it_judges_both_orders_and_counts_a_flip_as_a_tie() -> None:
    def policy(call: ChatCall) -> str:
        # Prefers the response that says "good", unless both or neither do: then the first.
        first = call.user.split("[The start of assistant B's response]")[0]
        second = call.user.split("[The start of assistant B's response]")[1]
        if "good" in first and "good" not in second:
            return "A is better. [[A]]"
        if "good" in second and "good" not in first:
            return "B is better. [[B]]"
        return "Hard to say, the first. [[A]]"

    items = [
        EvalItem("w", "Write.", baseline="plain baseline text", response="a good answer"),
        EvalItem("l", "Write.", baseline="a good baseline", response="plain answer"),
        EvalItem("t", "Write.", baseline="plain baseline", response="plain answer here"),
    ]
    settings = EvalSettings("pairwise")
    with FakeOpenAIServer(latency_s=0.0, policy=policy) as server:
        judge = OpenAIJudge(transport_to(server.base_url, max_retries=0))
        results, aggregates = judge_responses_sync(
            items, generate_responses(items, settings, None), settings, Evaluators(judge=judge)
        )
        assert server.stats().requests == 6
    assert [r.details["outcome"] for r in results] == ["win", "loss", "tie"]
    assert [r.score for r in results] == [100.0, 0.0, 50.0]
    assert (aggregates["wins"], aggregates["ties"], aggregates["losses"]) == (1, 1, 1)
    assert aggregates["adjusted_win_rate"] == pytest.approx(0.5)
    assert 0 < aggregates["length_controlled_win_rate"] < 1


def test_it_leaves_invalid_pairwise_verdicts_out_of_the_win_rate() -> None:
    items = [
        EvalItem("x", "Write.", baseline="base", response="resp"),
        EvalItem("y", "Write.", baseline="base", response="resp two"),
    ]
    settings = EvalSettings("pairwise")
    with FakeOpenAIServer(latency_s=0.0, policy=lambda call: Fault.GARBLED) as server:
        judge = OpenAIJudge(transport_to(server.base_url, max_retries=0), max_reasks=0)
        results, aggregates = judge_responses_sync(
            items, generate_responses(items, settings, None), settings, Evaluators(judge=judge)
        )
    assert [r.score for r in results] == [None, None]
    assert all(r.error for r in results)
    assert aggregates["invalid"] == 2
    assert aggregates["adjusted_win_rate"] is None and aggregates["score"] is None


def test_it_runs_pairwise_with_the_heuristic_judge() -> None:
    items = [EvalItem("h", "Write about the sea.", baseline="sea sea sea sea sea sea sea sea")]
    settings = EvalSettings("pairwise")
    results, aggregates = judge_responses_sync(
        items,
        generate_responses(
            items, settings, lambda prompts: ["The sea is wide and grey."] * len(prompts)
        ),
        settings,
        Evaluators(judge=HeuristicJudge()),
    )
    assert results[0].details["outcome"] in {"win", "tie", "loss"}
    assert aggregates["wins"] + aggregates["ties"] + aggregates["losses"] == 1


# -- generation with the engine, graders -------------------------------------------------------


def test_it_generates_with_the_engine_generate_on_the_tiny_model() -> None:
    model, tokenizer = tiny_model()
    items = [EvalItem(f"i{i}", f"Write {n} words about tea.", required_words=n)
             for i, n in enumerate([50, 120, 700])]  # fmt: skip
    settings = EvalSettings("longbench_write", max_new_tokens=10, batch_size=2)
    phases: list[tuple[str, int, int]] = []
    report = evaluate(
        items, settings, Evaluators(grader=HeuristicGrader()), model=model, tokenizer=tokenizer,
        progress=lambda phase, done, total: phases.append((phase, done, total)),
    )  # fmt: skip
    expected = generate(model, tokenizer, [i.prompt for i in items], max_new_tokens=10)
    assert [r.response for r in report.results] == expected
    assert phases == [("generation", 2, 3), ("generation", 3, 3), ("judging", 3, 3)]
    assert report.aggregates["items"] == 3
    assert report.generation_s > 0 and report.judging_s >= 0


def test_it_needs_a_generator_for_items_without_responses() -> None:
    with pytest.raises(ValueError, match="no generator"):
        generate_responses([EvalItem("a", "Write.")], EvalSettings("pairwise"), None)


def test_the_local_grader_reads_the_scale_from_next_token_probabilities() -> None:
    model, tokenizer = tiny_model()
    grader = LocalGrader(model, tokenizer, batch_size=4)
    (grade,) = grader.grade_sync([RubricRequest("Write.", "Some text.", LONGBENCH_WRITE_QUALITY)])
    assert grade.values is not None
    assert set(grade.values) == set(LONGBENCH_WRITE_QUALITY.keys)
    assert all(1 <= v <= 5 for v in grade.values.values())
    assert all(abs(sum(p) - 1) < 1e-3 for p in grade.raw.values())
    with pytest.raises(ValueError, match="one token"):
        grader.grade_sync([RubricRequest("Write.", "Text.", criterion_rubric("Tone", ""))])


def test_it_parses_rubric_answers_strictly() -> None:
    rubric = LONGBENCH_WRITE_QUALITY
    full = {k: 3 for k in rubric.keys}
    values, _ = parse_rubric_answer("noise " + json.dumps(full), rubric)
    assert values == full
    with pytest.raises(ValueError, match="missing dimension"):
        parse_rubric_answer(json.dumps({"relevance": 3}), rubric)
    with pytest.raises(ValueError, match="from 1 to 5"):
        parse_rubric_answer(json.dumps({**full, "clarity": 6}), rubric)
    with pytest.raises(ValueError, match="no JSON"):
        parse_rubric_answer("five out of five", rubric)


def test_the_endpoint_grader_reports_a_failed_call_as_an_error_not_a_zero() -> None:
    with FakeOpenAIServer(latency_s=0.0, policy=lambda call: Fault.SERVER_ERROR) as server:
        transport = ChatTransport(
            server.base_url, "fake", retry=RetryPolicy(max_retries=1, base_s=0.01)
        )
        grader = EndpointGrader(transport)
        (grade,) = run_sync(
            grader.grade([RubricRequest("Write.", "Text.", LONGBENCH_WRITE_QUALITY)])
        )
    assert grade.values is None
    assert grade.error and "500" in grade.error
    assert grade.attempts == 2


def test_the_local_grader_gives_the_same_grade_batched_with_its_cache_as_alone() -> None:
    import torch

    model, tokenizer = tiny_model(seed=3)
    with torch.no_grad():  # sharper weights, so a wrong position or mask changes the grade
        for parameter in model.parameters():
            parameter.mul_(6.0)
    grader = LocalGrader(model, tokenizer, batch_size=4)
    requests = [
        RubricRequest("Write.", "Short.", LONGBENCH_WRITE_QUALITY),
        RubricRequest("Write a long letter.", words(60, "letter"), LONGBENCH_WRITE_QUALITY),
    ]
    batched = grader.grade_sync(requests)
    alone = [grader.grade_sync([r])[0] for r in requests]
    for together, single in zip(batched, alone, strict=True):
        assert together.values == single.values
        for key in LONGBENCH_WRITE_QUALITY.keys:
            assert together.raw[key] == pytest.approx(single.raw[key], abs=2e-4)
    # Each cached step equals a plain forward over the whole text written so far.
    request, grade = requests[1], batched[1]
    options = grader._option_ids(LONGBENCH_WRITE_QUALITY)
    ids = grader._prompt_ids(request)
    for index, dimension in enumerate(LONGBENCH_WRITE_QUALITY.dimensions):
        if index:
            ids += grader._label_ids(dimension)
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
        expected = torch.softmax(logits[options].float(), dim=-1).tolist()
        assert grade.raw[dimension.key] == pytest.approx(expected, abs=2e-4), dimension.key
        ids += tokenizer.encode(str(grade.values[dimension.key]), add_special_tokens=False)


def test_it_reports_judging_progress_as_chunks_of_judge_calls_come_back() -> None:
    criteria = tuple(Criterion(f"c{n}") for n in range(7))
    items = [EvalItem(f"q{i}", "Write.", criteria=criteria, response="Text.") for i in range(10)]
    settings = EvalSettings("writingbench")
    seen: list[tuple[str, int, int]] = []
    _results, aggregates = judge_responses_sync(
        items,
        generate_responses(items, settings, None),
        settings,
        make_evaluators(JudgeSpec(endpoint="heuristic")),
        progress=lambda phase, done, total: seen.append((phase, done, total)),
    )
    assert seen == [("judging", 64, 70), ("judging", 70, 70)]  # 70 criterion calls
    assert aggregates["criteria_scored"] == 70
