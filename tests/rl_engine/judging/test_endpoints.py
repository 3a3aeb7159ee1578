"""The endpoint registry, the endpoint spec, and the request bodies built from them (checked
against the fake OpenAI-compatible server, which records every body it receives)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rl_engine.judging import JudgeSpec, OpenAIJudge, OpenAIScorer, Verdict, make_judge
from rl_engine.judging.endpoints import (
    GRADE_SCHEMA,
    VERDICT_GRAMMAR,
    EndpointRegistry,
    looks_like_secret,
    parse_endpoints,
    registry_from_env,
)
from rl_engine.judging.factory import make_scorer
from rl_engine.testing import ChatCall, FakeOpenAIServer, registry_for
from rl_engine.testing.policies import expected_tag, tagged_pair
from rl_engine.writers import WriterSpec, WritingTask, make_writer

LAB = {
    "name": "lab-vllm",
    "kind": "openai",
    "base_url": "http://gpu.lab:8000/v1",
    "models": ["qwen-72b", "qwen-7b"],
    "api_key_env": "LAB_KEY",
    "price_per_1k_tokens": 0.002,
    "structured_output": "guided_choice",
}


def test_it_reads_endpoints_from_json_in_the_environment() -> None:
    registry = registry_from_env({"WRITING_RL_ENDPOINTS": json.dumps([LAB])})
    assert registry.names() == ["heuristic", "local", "lab-vllm"]
    endpoint = registry.get("lab-vllm")
    assert endpoint.models == ("qwen-72b", "qwen-7b") and endpoint.price_per_1k_tokens == 0.002
    assert "LAB_KEY" not in json.dumps(endpoint.public())  # researchers see no key variable
    assert registry.default_judge == "heuristic"


def test_it_reads_endpoints_from_a_toml_or_json_file(tmp_path: Path) -> None:
    toml = tmp_path / "endpoints.toml"
    toml.write_text(
        'default_judge = "llama"\n'
        "[[endpoints]]\n"
        'name = "llama"\nbase_url = "http://127.0.0.1:8080/v1"\nmodels = ["smollm2"]\n'
        'structured_output = "grammar"\n',
        encoding="utf-8",
    )
    registry = registry_from_env({"WRITING_RL_ENDPOINTS": str(toml)})
    assert registry.default_judge == "llama"
    assert registry.get("llama").structured_output == "grammar"
    as_json = tmp_path / "endpoints.json"
    as_json.write_text(json.dumps({"endpoints": [LAB]}), encoding="utf-8")
    assert "lab-vllm" in registry_from_env({"WRITING_RL_ENDPOINTS": str(as_json)}).names()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({**LAB, "api_key_env": "SECRET_KEY"}, "holds one of the service's own secrets"),
        ({**LAB, "api_key_env": "WRITING_RL_INTERNAL_API_TOKEN"}, "service's own secrets"),
        ({**LAB, "base_url": "ftp://gpu/v1"}, "must be an http(s) URL"),
        ({**LAB, "base_url": "http://user:pw@gpu/v1"}, "may not carry credentials"),
        ({**LAB, "structured_output": "regex"}, "structured_output must be one of"),
        ({**LAB, "colour": "red"}, "unknown field(s) colour"),
        ({**LAB, "name": "Lab Judge"}, "use lower-case letters"),
        ({**LAB, "name": "heuristic"}, "declared twice (or is built in)"),
        ({**LAB, "extra_body": {"api_key": "sk-abcdefghijklmnop"}}, "may not hold a key"),
        ({**LAB, "price_per_million_prompt_tokens": -1}, "must be a non-negative number"),
        ({**LAB, "price_per_million_completion_tokens": "cheap"}, "must be a non-negative"),
        ({**LAB, "price_per_million_prompt_tokens": 1.0}, "give either price_per_1k_tokens"),
    ],
)
def test_a_bad_declaration_is_refused_naming_the_entry(entry: dict, message: str) -> None:
    with pytest.raises(ValueError) as error:
        registry_from_env({"WRITING_RL_ENDPOINTS": json.dumps([{**LAB, "name": "ok"}, entry])})
    assert message in str(error.value)
    if "declared twice" not in message:
        assert "endpoint #2" in str(error.value)


def test_a_file_that_cannot_be_read_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        parse_endpoints(str(tmp_path / "missing.toml"))
    broken = tmp_path / "broken.json"
    broken.write_text("[{", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.json"):
        parse_endpoints(str(broken))


def test_the_older_judge_variables_declare_one_endpoint_and_the_default() -> None:
    registry = registry_from_env(
        {
            "WRITING_RL_JUDGE_KIND": "openai",
            "WRITING_RL_JUDGE_BASE_URL": "http://vllm:8000/v1",
            "WRITING_RL_JUDGE_MODEL": "qwen-72b",
            "WRITING_RL_JUDGE_API_KEY_ENV": "VLLM_KEY",
        }
    )
    assert registry.default_judge == "judge"
    judge = registry.get("judge")
    assert (judge.base_url, judge.models, judge.api_key_env) == (
        "http://vllm:8000/v1",
        ("qwen-72b",),
        "VLLM_KEY",
    )
    local = registry_from_env({"WRITING_RL_JUDGE_KIND": "local", "WRITING_RL_JUDGE_MODEL": "m"})
    assert (local.default_judge, local.default_model) == ("local", "m")


def test_a_custom_base_url_is_refused_unless_allowed_and_never_gets_a_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAB_KEY", "sk-lab-secret-value")
    closed = registry_from_env({"WRITING_RL_ENDPOINTS": json.dumps([LAB])})
    assert "custom" not in closed.names()
    with pytest.raises(ValueError, match="unknown endpoint 'custom'"):
        closed.resolve(JudgeSpec(endpoint="custom", model="m", base_url="http://evil.test/v1"))
    with pytest.raises(ValueError, match="a custom base_url is only for the 'custom' endpoint"):
        closed.resolve(JudgeSpec(endpoint="lab-vllm", base_url="http://evil.test/v1"))
    open_ = registry_from_env(
        {"WRITING_RL_ENDPOINTS": json.dumps([LAB]), "WRITING_RL_CUSTOM_ENDPOINT_HOSTS": "scratch"}
    )
    with pytest.raises(ValueError, match=r"host 'evil\.test' is not one this deployment allows"):
        open_.resolve(JudgeSpec(endpoint="custom", model="m", base_url="http://evil.test/v1"))
    resolved = open_.resolve(
        JudgeSpec(endpoint="custom", model="m", base_url="http://scratch:9/v1")
    )
    assert (resolved.base_url, resolved.api_key) == ("http://scratch:9/v1", None)
    lab = open_.resolve(JudgeSpec(endpoint="lab-vllm"))
    assert lab.api_key == "sk-lab-secret-value"
    assert "sk-lab-secret-value" not in repr(lab)


def test_a_stored_spec_from_before_the_registry_maps_onto_the_declared_endpoint() -> None:
    registry = registry_from_env({"WRITING_RL_ENDPOINTS": json.dumps([LAB])})
    old = {"kind": "openai", "model": "qwen-7b", "base_url": "http://gpu.lab:8000/v1/",
           "api_key_env": "SECRET_KEY"}  # fmt: skip
    spec = JudgeSpec.from_dict(old, registry)
    assert (spec.endpoint, spec.model) == ("lab-vllm", "qwen-7b")
    assert "api_key_env" not in spec.to_dict()  # the named variable is dropped, not used
    assert JudgeSpec.from_dict({"kind": "heuristic"}).endpoint == "heuristic"
    elsewhere = {**old, "base_url": "http://attacker.test/v1"}
    with pytest.raises(ValueError, match=r"'http://attacker\.test/v1', which is not a declared"):
        JudgeSpec.from_dict(elsewhere, registry)
    writer = WriterSpec.from_dict(
        {
            "name": "w",
            "kind": "openai",
            "model": "qwen-72b",
            "base_url": LAB["base_url"],
            "api_key_env": "OPENAI_API_KEY",
            "max_new_tokens": 64,
        },
        registry,
    )
    assert (writer.endpoint, writer.max_tokens) == ("lab-vllm", 64)


@pytest.mark.parametrize(
    "value",
    ["sk-proj-Abc123def456ghi789", "hf_abcdefghijklmnopqrstuv", "Bearer: abcdefghijkl",
     "Zx9Kq2Lm8Np4Rt6Vw1Ys3Ub5Cd7Ef0Gh2Ij4"],
)  # fmt: skip
def test_what_looks_like_a_key_is_refused_in_every_text_field(value: str) -> None:
    assert looks_like_secret(value)
    for field in ("model", "base_url"):
        with pytest.raises(ValueError, match="looks like an API key") as error:
            JudgeSpec(endpoint="lab", **{field: value})
        assert value not in str(error.value)  # refused, not echoed
    with pytest.raises(ValueError, match="extra_body looks like it holds an API key"):
        JudgeSpec(endpoint="lab", extra_body={"headers": {"x": value}})


@pytest.mark.parametrize(
    "value", ["Qwen/Qwen2.5-72B-Instruct", "smollm2-135m-instruct", "/srv/runs/run-12/ck-000120"]
)
def test_model_names_and_paths_are_not_mistaken_for_keys(value: str) -> None:
    assert not looks_like_secret(value)


# -- request bodies ----------------------------------------------------------------------------


def constrained_policy(call: ChatCall) -> str:
    """Answers as a server honouring the request's constraint would: the tag alone for a
    grammar or a guided choice, a JSON object for a JSON schema, free text otherwise."""
    tag = expected_tag(call)
    if call.constrained in ("grammar", "guided_choice"):
        return f"[[{tag}]]"
    if call.constrained == "response_format":
        return json.dumps({"reason": "Clearer.", "verdict": tag})
    return f"Both are fine. Verdict: [[{tag}]]"


def _judge_once(mode: str, **spec: object) -> tuple[Verdict, dict]:
    with FakeOpenAIServer(latency_s=0.0, policy=constrained_policy) as server:
        registry = registry_for(server.base_url, name="lab", structured_output="none")
        judge = make_judge(JudgeSpec(endpoint="lab", model="m", structured_output=mode, **spec),
                           registry)  # fmt: skip
        assert isinstance(judge, OpenAIJudge)
        (judgment,) = judge.compare_sync([tagged_pair(0, "A")])
        judge.close()
        return judgment.verdict, server.bodies[-1]


def test_a_grammar_constrains_the_verdict_for_llama_cpp() -> None:
    verdict, body = _judge_once("grammar")
    assert body["grammar"] == VERDICT_GRAMMAR
    assert verdict is Verdict.A
    assert not {"guided_choice", "response_format"} & set(body)


def test_guided_choice_lists_the_three_tags_for_vllm() -> None:
    verdict, body = _judge_once("guided_choice")
    assert body["guided_choice"] == ["[[A]]", "[[B]]", "[[C]]"]
    assert verdict is Verdict.A


def test_a_json_schema_asks_for_a_verdict_object_and_it_is_read() -> None:
    verdict, body = _judge_once("json_schema")
    schema = body["response_format"]["json_schema"]["schema"]
    assert body["response_format"]["type"] == "json_schema"
    assert schema["properties"]["verdict"]["enum"] == ["A", "B", "C"]
    assert verdict is Verdict.A  # read from {"reason": ..., "verdict": "A"}


def test_no_structured_output_sends_no_constraint_but_the_seed_and_extra_body() -> None:
    verdict, body = _judge_once("none", seed=7, extra_body={"top_k": 20})
    assert not {"grammar", "guided_choice", "guided_json", "response_format"} & set(body)
    assert (body["seed"], body["top_k"], body["model"]) == (7, 20, "m")
    assert verdict is Verdict.A


def test_the_endpoints_mode_applies_unless_the_spec_sets_one() -> None:
    with FakeOpenAIServer(latency_s=0.0) as server:
        registry = registry_for(
            server.base_url, name="lab", structured_output="grammar", extra_body={"min_p": 0.1}
        )
        judge = make_judge(JudgeSpec(endpoint="lab", model="m"), registry)
        judge.compare_sync([tagged_pair(0, "B")])
        judge.close()  # type: ignore[attr-defined]
        assert server.bodies[-1]["grammar"] == VERDICT_GRAMMAR
        assert server.bodies[-1]["min_p"] == 0.1


@pytest.mark.parametrize(
    ("mode", "field"),
    [("grammar", "grammar"), ("guided_choice", "guided_json"), ("json_schema", "response_format")],
)
def test_the_scorer_asks_for_its_json_grade(mode: str, field: str) -> None:
    with FakeOpenAIServer(latency_s=0.0) as server:
        registry = registry_for(server.base_url, name="lab")
        scorer = make_scorer(JudgeSpec(endpoint="lab", model="m", structured_output=mode), registry)
        assert isinstance(scorer, OpenAIScorer)
        score = scorer.score_sync("Write.", "Text.")
        scorer.close()
        body = server.bodies[-1]
    assert score.value is not None
    assert field in body
    if mode == "grammar":
        assert '"score' in body["grammar"] and '"10"' in body["grammar"]
    elif mode == "guided_choice":
        assert body["guided_json"] == GRADE_SCHEMA
    else:
        assert body["response_format"]["json_schema"]["schema"] == GRADE_SCHEMA


def test_the_writer_sends_its_seed_and_is_never_constrained() -> None:
    with FakeOpenAIServer(latency_s=0.0, policy=lambda call: "Some text.") as server:
        registry = registry_for(server.base_url, name="lab", structured_output="grammar")
        spec = WriterSpec(name="w", endpoint="lab", model="m", seed=11, top_p=0.9)
        [output] = make_writer(spec, registry=registry).write([WritingTask("A poem.")])
        body = server.bodies[-1]
    assert output.text == "Some text."
    assert (body["seed"], body["top_p"]) == (11, 0.9)
    assert "grammar" not in body


def test_an_unreadable_outline_is_written_in_even_sections_and_flagged() -> None:
    def policy(call: ChatCall) -> str:
        return "No plan, sorry." if "break down" in call.user else "A section."

    with FakeOpenAIServer(latency_s=0.0, policy=policy) as server:
        spec = WriterSpec(name="w", endpoint="lab", model="m", plan_then_write=True,
                          plan_min_words=100, section_words=50)  # fmt: skip
        writer = make_writer(spec, registry=registry_for(server.base_url, name="lab"))
        [output] = writer.write([WritingTask("A story.", required_words=100)])
    assert output.plan_fallback is True
    assert [p.words for p in output.plan or []] == [50, 50]


def test_a_price_per_million_prompt_and_completion_tokens_gives_the_cost() -> None:
    priced = {**LAB, "price_per_1k_tokens": None, "price_per_million_prompt_tokens": 0.4,
              "price_per_million_completion_tokens": 1.6}  # fmt: skip
    registry = registry_from_env({"WRITING_RL_ENDPOINTS": json.dumps([priced])})
    assert registry.cost("lab-vllm", 2_000_000, 500_000) == pytest.approx(0.8 + 0.8)
    assert registry.cost("heuristic", 10, 10) is None  # no price declared
    assert registry.cost("gone", 10, 10) is None  # no longer declared
    public = registry.get("lab-vllm").public()
    assert public["price"] == "0.4/M prompt tokens, 1.6/M completion tokens"
    flat = registry_from_env({"WRITING_RL_ENDPOINTS": json.dumps([LAB])})
    assert flat.cost("lab-vllm", 600, 400) == pytest.approx(0.002)


def test_a_writer_counts_the_tokens_and_requests_of_every_call() -> None:
    def policy(call: ChatCall) -> str:
        if "break down" in call.user:
            return "Section 1 - Main point: a - Word count: 60 words\n" * 2
        return "one two three"

    with FakeOpenAIServer(latency_s=0.0, policy=policy) as server:
        spec = WriterSpec(name="w", endpoint="lab", model="m", plan_then_write=True,
                          plan_min_words=100, section_words=50)  # fmt: skip
        writer = make_writer(spec, registry=registry_for(server.base_url, name="lab"))
        long, short = writer.write(
            [WritingTask("A story.", required_words=120), WritingTask("A poem.")]
        )
        requests = server.stats().requests
    assert (long.calls, long.attempts) == (3, 3)  # the outline and two sections
    assert short.attempts == 1 and short.usage.completion_tokens == 3
    assert long.usage.completion_tokens == 22 + 2 * 3  # the outline's 22 words, 2 sections
    assert long.usage.prompt_tokens > 3 * 20
    assert long.attempts + short.attempts == requests


def test_a_judge_on_the_heuristic_endpoint_needs_no_configuration() -> None:
    registry = EndpointRegistry.build()
    assert registry.names() == ["heuristic", "local"]
    judge = make_judge(JudgeSpec(), registry)
    assert judge.compare_sync([tagged_pair(0, "A")])[0].verdict in set(Verdict)
