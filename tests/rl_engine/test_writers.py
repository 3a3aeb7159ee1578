"""Writers against a local fake OpenAI endpoint and a tiny local model."""

from __future__ import annotations

import re

import pytest

from rl_engine.models import tiny_model
from rl_engine.testing import registry_for
from rl_engine.testing.openai_server import ChatCall, FakeOpenAIServer, Fault
from rl_engine.writers import (
    LocalWriter,
    Writer,
    WriterSpec,
    WritingTask,
    make_writer,
    parse_plan,
)


def writing_policy(call: ChatCall) -> str | Fault:
    if "break down" in call.user:
        return (
            "Here is the plan.\n"
            "Section 1 - Main point: The harbour at dawn - Word count: 400 words\n"
            "Section 2 - Main point: [The storm arrives] - Word count: 1,100 words\n"
            "Section 3 - Main point: Quiet after the storm - Word count: 500 words\n"
        )
    match = re.search(r"Now write section (\d+) of (\d+)", call.user)
    if match:
        return f"<section {match.group(1)} written; saw previous: {'written so far' in call.user}>"
    return "A direct answer."


@pytest.fixture
def server() -> FakeOpenAIServer:
    with FakeOpenAIServer(latency_s=0.01, policy=writing_policy) as fake:
        yield fake


def spec(server: FakeOpenAIServer, **changes: object) -> WriterSpec:
    fields: dict[str, object] = {
        "name": "gpt", "endpoint": "fake", "model": "m",
        "plan_then_write": True, "plan_min_words": 1000, "max_retries": 0,
    }  # fmt: skip
    fields.update(changes)
    return WriterSpec(**fields)  # type: ignore[arg-type]


def writer_for(server: FakeOpenAIServer, **changes: object) -> Writer:
    return make_writer(spec(server, **changes), registry=registry_for(server.base_url))


def test_it_parses_an_outline() -> None:
    plan = parse_plan(writing_policy(ChatCall(0, "m", [{"role": "user", "content": "break down"}])))  # type: ignore[arg-type]
    assert [(p.point, p.words) for p in plan] == [
        ("The harbour at dawn", 400), ("The storm arrives", 1100), ("Quiet after the storm", 500)
    ]  # fmt: skip


def test_it_writes_short_tasks_directly_and_long_ones_section_by_section(server) -> None:
    writer = writer_for(server)
    short, long = writer.write(
        [WritingTask("A haiku.", 17), WritingTask("A 2000-word story.", required_words=2000)]
    )
    assert (short.text, short.calls, short.plan) == ("A direct answer.", 1, None)
    assert long.text == (
        "<section 1 written; saw previous: False>\n\n"
        "<section 2 written; saw previous: True>\n\n"
        "<section 3 written; saw previous: True>"
    )
    assert long.calls == 4 and [p.words for p in long.plan or []] == [400, 1100, 500]
    assert server.stats().requests == 5


def test_it_writes_sections_in_parallel_without_the_text_so_far(server) -> None:
    writer = writer_for(server, parallel_sections=True)
    [output] = writer.write([WritingTask("A 2000-word story.", required_words=2000)])
    assert output.text is not None and "saw previous: True" not in output.text
    assert output.text.count("<section") == 3


def test_it_reports_a_failed_generation_instead_of_empty_text() -> None:
    with FakeOpenAIServer(latency_s=0.01, policy=lambda call: Fault.SERVER_ERROR) as failing:
        [output] = writer_for(failing).write([WritingTask("A poem.")])
    assert output.text is None and output.error and "500" in output.error


def test_it_writes_with_a_local_model() -> None:
    model, tokenizer = tiny_model(seed=0)
    writer = LocalWriter(
        WriterSpec(name="tiny", max_tokens=4, temperature=0.0, plan_then_write=True,
                   plan_min_words=100, section_words=50),
        model=model, tokenizer=tokenizer,
    )  # fmt: skip
    direct, planned = writer.write([WritingTask("Hi."), WritingTask("Story.", required_words=100)])
    assert direct.calls == 1 and (direct.text is None) == (direct.error is not None)
    # A tiny random model writes no readable outline: the plan falls back to even parts.
    assert planned.plan is not None and [p.words for p in planned.plan] == [50, 50]
    # Either both sections were written, or the first came back empty and is reported.
    assert (planned.calls, planned.error) in {(3, None), (2, "empty generation")}
    assert (planned.text is None) == (planned.error is not None)
