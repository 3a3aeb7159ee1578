"""Long-input (LongBench v2-style) benchmark files: import, errors, and an evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from webapp.evals.models import EvalRun, LongInputBenchmark, LongInputQuestion
from webapp.evals.services.eval_runs import eval_run_create
from webapp.evals.services.execution import eval_run_execute
from webapp.evals.services.long_input import BenchmarkFileError, long_input_import

# Evaluations report progress from a worker thread (its own database connection), as they do
# in a Celery task: the test's data must be committed, or SQLite's write lock held by the
# test's open transaction blocks that thread.
pytestmark = pytest.mark.django_db(transaction=True)


def question(n: int, **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "_id": f"q{n}", "domain": "Single-Document QA", "difficulty": "hard",
        "length": "short", "question": f"Which word opens document {n}?",
        "choice_A": "Alpha", "choice_B": "Beta", "choice_C": "Gamma", "choice_D": "Delta",
        "answer": "A", "context": "Alpha " + "filler " * 400 + "Omega",
    }  # fmt: skip
    row.update(overrides)
    return row


def jsonl(*rows: dict[str, object]) -> list[str]:
    return [json.dumps(row) + "\n" for row in rows]


def test_it_imports_a_longbench_v2_file() -> None:
    benchmark = long_input_import(
        name="lb2", lines=jsonl(question(1), question(2, difficulty="easy")), filename="lb2.jsonl"
    )
    questions = list(benchmark.questions.order_by("id"))
    assert [q.external_id for q in questions] == ["q1", "q2"]
    assert questions[0].choices == ["Alpha", "Beta", "Gamma", "Delta"]
    assert questions[1].difficulty == "easy"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json\n", r"lb2.jsonl:2: not valid JSON"),
        (json.dumps(question(2, answer="E")) + "\n", r"lb2.jsonl:2: .*answer must be A-D"),
        (json.dumps(question(2, length="huge")) + "\n", r"lb2.jsonl:2: .*length must be short"),
        (json.dumps({k: v for k, v in question(2).items() if k != "choice_C"}) + "\n",
         r"lb2.jsonl:2: field 'choice_C' is missing"),
        (json.dumps(question(1)) + "\n", r"lb2.jsonl:2: field 'item_id' 'q1' repeats line 1"),
    ],
)  # fmt: skip
def test_it_refuses_a_bad_line_naming_file_line_and_field(bad: str, message: str) -> None:
    with pytest.raises(BenchmarkFileError, match=message):
        long_input_import(name="lb2", lines=[*jsonl(question(1)), bad], filename="lb2.jsonl")
    assert LongInputBenchmark.objects.count() == 0
    assert LongInputQuestion.objects.count() == 0


def test_it_evaluates_a_model_on_long_input_questions(tiny_policy: Path) -> None:
    benchmark = long_input_import(
        name="lb2", lines=jsonl(question(1), question(2, length="long")), filename="lb2.jsonl"
    )
    eval_run = eval_run_create(
        benchmark="longbench_v2", system_kind="base_model", base_model=str(tiny_policy),
        long_input=benchmark, settings={"max_new_tokens": 8, "context_tokens": 256},
        judge={"kind": "heuristic"}, enqueue=False,
    )  # fmt: skip
    eval_run = eval_run_execute(eval_run.pk)
    assert eval_run.status == EvalRun.Status.SUCCEEDED, eval_run.error
    results = list(eval_run.results.order_by("id"))
    assert len(results) == 2
    for result in results:
        assert result.question is not None and result.instruction is None
        assert result.truncated_tokens > 0  # 400 words of filler do not fit 256 tokens
        # The tiny model writes token soup: no "The correct answer is (X)", so wrong, not lost.
        assert result.details["predicted"] is None and result.score == 0.0
    aggregates = eval_run.aggregates
    assert aggregates["accuracy"] == 0.0 and aggregates["invalid"] == 2
    assert aggregates["truncated"] == 2
    assert set(aggregates["by_length"]) == {"short", "long"}


def test_the_upload_page_imports_and_reports_errors(staff_client: Client) -> None:
    good = SimpleUploadedFile("good.jsonl", "".join(jsonl(question(1))).encode())
    response = staff_client.post("/evals/long-input/", {"name": "", "file": good}, follow=True)
    assert response.status_code == 200
    assert "Imported 1 questions as &#x27;good.jsonl&#x27;" in response.content.decode()
    bad = SimpleUploadedFile("bad.jsonl", b'{"_id": "x"}\n')
    response = staff_client.post("/evals/long-input/", {"name": "other", "file": bad})
    assert response.status_code == 400
    assert "bad.jsonl:1: field" in response.content.decode()
    assert LongInputBenchmark.objects.count() == 1
