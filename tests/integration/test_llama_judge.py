"""Against llama.cpp's server with SmolLM2-135M-Instruct: structured verdicts, the judge check
catching its position bias, a dead endpoint, a 20 s outage mid-run, and stored token counts.

Opt-in for now (see ``tests/integration/llama.py``): the tests that need the server skip
without it. The judge is a declared endpoint (``WRITING_RL_ENDPOINTS``), as a deployment would
declare it, with llama.cpp's grammar as its structured output.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from rl_engine.judging import JudgeSpec, PairRequest, Verdict
from rl_engine.judging.factory import make_judge
from rl_engine.models import save_tiny_model
from rl_engine.testing.endpoints import registry_for
from tests.integration.llama import MODEL, LlamaServer, free_port
from tests.webapp.studio.factories import make_dataset, make_instruction
from tests.webapp.studio.test_runs import tiny_config
from webapp.studio.models import Judgment, Run
from webapp.studio.services.judge_check import judge_check_run
from webapp.studio.services.run_execution import run_execute
from webapp.studio.services.runs import run_claim, run_create

STORIES = [
    ("Write two sentences about a lighthouse keeper.",
     "The keeper climbed the tower each night and lit the lamp for ships he never met. "
     "When the storm came, his light was the only star the sailors could see.",
     "lighthouse lighthouse lighthouse."),
    ("Write two sentences about a city garden.",
     "Between the bus depot and the laundromat, tomatoes climbed a fence of old bed frames. "
     "Neighbours who never spoke now argued kindly about watering.",
     "garden is garden garden."),
    ("Write two sentences about the first snow.",
     "The first snow fell without a sound and erased the footpaths by morning. "
     "Children pressed their faces to the glass as if the world had been rewritten.",
     "snow snow cold."),
    ("Write two sentences about an old bicycle.",
     "The bicycle's bell still rang clear though its paint had flaked to rust. "
     "Every summer it carried a different grandchild down the same hill.",
     "bike old bike."),
]  # fmt: skip


ENDPOINT = "llama"
# SmolLM2 on 2 shared CPU cores answers a judge prompt in seconds when the machine is quiet,
# in minutes under load: a call may take this long before it counts as failed.
CALL_TIMEOUT_S = 300


def record(name: str, numbers: dict[str, Any]) -> None:
    """Keep what a test measured in ``<var>/integration/<name>.json`` (the database is rolled
    back after the test; this file is not)."""
    folder = Path(django_settings.VAR_DIR) / "integration"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(numbers, indent=2, default=str))


def grammar_judge_spec(**changes: Any) -> dict[str, Any]:
    """The run's judge: SmolLM2 on the declared llama.cpp endpoint, with llama.cpp's grammar,
    one attempt per call (the run's outage handling does the waiting)."""
    spec = {"endpoint": ENDPOINT, "model": MODEL, "structured_output": "grammar",
            "max_retries": 1, "hedge": False, "timeout_s": CALL_TIMEOUT_S, "max_tokens": 8,
            "max_concurrency": 2}  # fmt: skip
    spec.update(changes)
    return spec


def declare(monkeypatch: pytest.MonkeyPatch, server_url: str) -> None:
    """The deployment declares the llama.cpp server as the endpoint ``llama``."""
    monkeypatch.setenv(
        "WRITING_RL_ENDPOINTS",
        json.dumps([{"name": ENDPOINT, "base_url": server_url, "models": [MODEL],
                     "structured_output": "grammar"}]),
    )  # fmt: skip


def grammar_judge(server: LlamaServer) -> Any:
    registry = registry_for(
        server.base_url, name=ENDPOINT, models=(MODEL,), structured_output="grammar"
    )
    return make_judge(JudgeSpec.from_dict(grammar_judge_spec()), registry)


def tiered_dataset():
    dataset = make_dataset()
    for prompt, good, bad in STORIES:
        instruction = make_instruction(dataset, prompt=prompt)
        instruction.references.create(writer="weak", text=bad, tier=0)
        instruction.references.create(writer="strong", text=good, tier=1)
    return dataset


def test_with_a_grammar_every_verdict_parses_and_tokens_are_counted(
    llama_server: LlamaServer,
) -> None:
    judge = grammar_judge(llama_server)
    requests = [PairRequest(p, good, bad) for p, good, bad in STORIES]
    judgments = judge.compare_sync(requests)
    record("grammar_verdicts", {"judgments": [
        {"verdict": j.verdict.value, "error": j.error, "raw": j.raw, "attempts": j.attempts,
         "latency_s": j.latency_s, **dataclasses.asdict(j.usage)} for j in judgments
    ]})  # fmt: skip
    assert [j.error for j in judgments] == [None] * len(requests)
    assert all(j.verdict is not Verdict.INVALID for j in judgments)
    assert all(j.usage.prompt_tokens > 50 and j.usage.completion_tokens > 0 for j in judgments)


@pytest.mark.django_db
def test_the_judge_check_flags_smollm2s_position_bias(
    llama_server: LlamaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    declare(monkeypatch, llama_server.base_url)
    judge = grammar_judge(llama_server)
    dataset = tiered_dataset()
    check = judge_check_run(
        dataset=dataset,
        spec=JudgeSpec.from_dict(grammar_judge_spec()),
        judge=judge,
        n=len(STORIES),
    )
    report = check.report
    record("judge_check", {"passed": check.passed, **report})
    assert report["parse_rate"] == 1.0  # the grammar makes every answer a verdict
    assert not check.passed
    assert report["position_consistency"] < 0.6
    assert any("position consistency" in reason for reason in report["reasons"])
    assert report["prompt_tokens_per_judgment"] > 50 and report["latency_mean_s"] > 0


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("policy") / "tiny", seed=0)


def launch(settings: Any, tmp_path: Path, policy: Path, server_url: str,
           judge: dict[str, Any], wrap_reporter: Any = None, **changes: Any) -> Run:  # fmt: skip
    settings.WRITING_RL_RUNS_DIR = tmp_path
    config = tiny_config(policy, judge=judge, **changes)
    with pytest.MonkeyPatch.context() as patch:
        declare(patch, server_url)
        run = run_create(name="llama", dataset=tiered_dataset(), config=config, enqueue=False)
        assert run_claim(run.pk, worker="me")
        run_execute(run.pk, worker="me", wrap_reporter=wrap_reporter)
    run.refresh_from_db()
    return run


# A run's heartbeat thread beats on its own connection, which sees only committed rows.
@pytest.mark.django_db(transaction=True)
def test_a_run_whose_endpoint_is_dead_fails_with_the_reason(
    settings: Any, tmp_path: Path, tiny_policy: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    refused = launch(settings, tmp_path / "a", tiny_policy, dead,
                     grammar_judge_spec(max_retries=0), judge_check_pairs=2)  # fmt: skip
    assert refused.status == Run.Status.FAILED
    assert refused.error.startswith("refused by the judge check")
    assert "parse rate 0%" in refused.error and "connect" in refused.error.lower()
    # Without the check, the trainer's outage budget ends it with the reason.
    unchecked = launch(settings, tmp_path / "b", tiny_policy, dead,
                       grammar_judge_spec(max_retries=0), judge_check_pairs=0,
                       judge_outage_budget_s=0)  # fmt: skip
    assert unchecked.status == Run.Status.FAILED
    assert unchecked.error.startswith("waiting for judge: step 1")
    assert not Judgment.objects.filter(run=unchecked).exclude(verdict="invalid").exists()


class KillAfterFirstStep:
    """A reporter wrapper that stops the server after step 1 and starts it again 20 s later."""

    def __init__(self, inner: Any, server: LlamaServer) -> None:
        self.inner, self.server = inner, server
        self.restarter: threading.Thread | None = None
        self.down_s = 20.0

    def on_step(self, metrics: Any) -> None:
        self.inner.on_step(metrics)
        if metrics.step == 1 and self.restarter is None:
            self.server.stop()
            timer = threading.Timer(self.down_s, self.server.start)
            timer.start()
            self.restarter = timer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.django_db(transaction=True)
def test_a_20_s_outage_mid_run_loses_no_step_and_tokens_are_stored(
    settings: Any,
    tmp_path: Path,
    tiny_policy: Path,
    llama_server: LlamaServer,
) -> None:
    wrappers: list[KillAfterFirstStep] = []

    def wrap(reporter: Any) -> KillAfterFirstStep:
        wrappers.append(KillAfterFirstStep(reporter, llama_server))
        return wrappers[-1]

    run = launch(settings, tmp_path, tiny_policy, llama_server.base_url, grammar_judge_spec(),
                 wrap_reporter=wrap, max_steps=3, judge_check_pairs=0,
                 judge_outage_budget_s=180)  # fmt: skip
    (wrapper,) = wrappers
    assert wrapper.restarter is not None
    wrapper.restarter.join(timeout=300)
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert run.current_step == 3
    rows = Judgment.objects.filter(run=run)
    steps = sorted(set(rows.values_list("step", flat=True)))
    assert steps == [1, 2, 3]
    # Every rollout of every step got a verdict in the end: nothing was lost to the outage.
    assert not rows.filter(verdict="invalid").exists()
    assert rows.count() == 3 * 4
    held = run.step_metrics.get(step=2).metrics
    record("outage_run", {
        "steps": {m.step: m.metrics for m in run.step_metrics.order_by("step")},
        "judgments": list(rows.values("step", "verdict", "order_verdict", "prompt_tokens",
                                      "completion_tokens", "attempts")),
    })  # fmt: skip
    assert held["judge_retries"] >= 1
    # Token counts and attempts reach the database.
    assert all(r.prompt_tokens > 50 and r.completion_tokens > 0 for r in rows)
    assert all(r.attempts >= 1 for r in rows)
