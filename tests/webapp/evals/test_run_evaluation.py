"""Evaluate a run: one launch over checkpoints plus the base policy, the same items for every
system, per-checkpoint curves and the paper's table with intervals; checkpoints in use pinned."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from tests.webapp.evals.factories import (
    add_results,
    make_checkpoint,
    make_dataset,
    make_instruction,
    make_run,
)
from webapp.evals.models import EvalRun, RunEvaluation
from webapp.evals.run_evaluations import resolve_checkpoints, run_evaluation_create
from webapp.evals.services.config import EvalConfigError
from webapp.studio.models import Checkpoint
from webapp.studio.services.reporter import DjangoReporter

pytestmark = pytest.mark.django_db


@pytest.fixture
def trained_run():
    dataset = make_dataset("essays")
    for n in range(3):
        make_instruction(dataset, split="train", required_words=100)
        make_instruction(dataset, prompt=f"Write {n + 1}00 words.", required_words=100 * (n + 1))
    run = make_run(dataset, config={"policy": "tiny-base"}, status="succeeded", current_step=30)
    for step in (10, 20, 30):
        make_checkpoint(run, step)
    Checkpoint.objects.filter(run=run, step=20).update(deleted=True)  # rotated away
    return run


def test_it_resolves_checkpoints_still_on_disk(trained_run) -> None:
    assert [c.step for c in resolve_checkpoints(trained_run, "all")] == [10, 30]
    assert [c.step for c in resolve_checkpoints(trained_run, "last")] == [30]
    assert [c.step for c in resolve_checkpoints(trained_run, "30,10")] == [10, 30]
    assert resolve_checkpoints(trained_run, "none") == []
    with pytest.raises(
        EvalConfigError, match=r"no checkpoint at step\(s\) 20 on disk \(available: 10, 30\)"
    ):
        resolve_checkpoints(trained_run, "20")
    with pytest.raises(EvalConfigError, match="all, last, none or steps"):
        resolve_checkpoints(trained_run, "latest")


def test_one_launch_evaluates_every_system_on_the_same_items(trained_run) -> None:
    evaluation = run_evaluation_create(
        run=trained_run, benchmarks=["longbench_write", "writingbench"], checkpoints="all",
        judge={"kind": "heuristic"}, settings={"max_new_tokens": 8}, enqueue=False,
    )  # fmt: skip
    members = list(evaluation.members.order_by("id"))
    assert len(members) == 2 * 3  # two benchmarks x (base, step 10, step 30)
    assert evaluation.steps == [10, 30] and evaluation.base_policy == "tiny-base"
    assert {(m.dataset_id, m.split, m.limit) for m in members} == {
        (trained_run.dataset_id, "eval", None)
    }  # the held-out split by default, the same for every system
    systems = {(m.benchmark, m.system_label) for m in members}
    assert ("writingbench", "tiny-base") in systems
    assert ("longbench_write", f"run {trained_run.pk} · step 30") in systems
    with pytest.raises(EvalConfigError, match="choose at least one benchmark"):
        run_evaluation_create(run=trained_run, benchmarks=[], enqueue=False)
    with pytest.raises(EvalConfigError, match="nothing to evaluate"):
        run_evaluation_create(
            run=trained_run, benchmarks=["writingbench"], checkpoints="none",
            include_base=False, enqueue=False,
        )  # fmt: skip
    assert RunEvaluation.objects.count() == 1  # the refused launches created nothing


def test_checkpoints_in_use_are_pinned_and_deleted_ones_marked(trained_run) -> None:
    reporter = DjangoReporter(trained_run)
    assert reporter.pinned_steps() == set()
    run_evaluation_create(
        run=trained_run, benchmarks=["longbench_write"], checkpoints="10", enqueue=False
    )
    assert reporter.pinned_steps() == {10}
    reporter.on_checkpoints_removed([30])
    assert list(Checkpoint.objects.filter(run=trained_run, deleted=True).order_by("step")
                .values_list("step", flat=True)) == [20, 30]  # fmt: skip


def finish(evaluation: RunEvaluation) -> None:
    """Mark the members succeeded with item results: S_l per item rises with the step."""
    for member in evaluation.members.select_related("checkpoint"):
        step = member.checkpoint.step if member.checkpoint else 0
        s_l = [40.0 + step, 60.0 + step, 50.0 + step]
        mean = sum(s_l) / 3
        member.status = EvalRun.Status.SUCCEEDED
        member.aggregates = {"score": mean, "S_l": mean, "S_q": 50.0, "S_bar": (mean + 50) / 2,
                             "items": 3, "errors": 0,
                             "buckets": [{"bucket": "[0, 500)", "count": 3, "S_l": mean,
                                          "S_q": 50.0, "S_bar": (mean + 50) / 2}]}  # fmt: skip
        member.save()
        add_results(member, [(100 * (i + 1), 90, v, "") for i, v in enumerate(s_l)])
        for result, value in zip(member.results.order_by("id"), s_l, strict=True):
            result.details = {"length_score": value, "quality_score": 50.0}
            result.save()


def test_the_pages_launch_it_and_show_curves_and_the_table(
    staff_client: Client, trained_run, django_capture_on_commit_callbacks
) -> None:
    html = staff_client.get(f"/studio/runs/{trained_run.pk}/").content.decode()
    assert f"/evals/runs/{trained_run.pk}/evaluate/" in html
    html = staff_client.get(f"/evals/runs/{trained_run.pk}/evaluate/").content.decode()
    assert "step 10" in html and "step 30" in html and "step 20" not in html  # deleted: not offered
    form = {"benchmarks": ["longbench_write"], "checkpoints": ["10", "30"], "include_base": "on",
            "dataset": trained_run.dataset_id, "split": "eval", "max_new_tokens": 8,
            "judge_endpoint": "heuristic"}  # fmt: skip
    with django_capture_on_commit_callbacks() as callbacks:
        response = staff_client.post(f"/evals/runs/{trained_run.pk}/evaluate/", form)
    evaluation = RunEvaluation.objects.get()
    assert response["Location"] == f"/evals/run-evaluations/{evaluation.pk}/"
    assert len(callbacks) == 3 and evaluation.members.count() == 3
    html = staff_client.get(response["Location"]).content.decode()
    assert "0 / 3" in html and 'hx-trigger="every 2s"' in html
    finish(evaluation)
    html = staff_client.get(response["Location"]).content.decode()
    assert 'data-testid="checkpoint-curves"' in html and "<polyline" in html
    assert "(30, 80)" in html  # step 30: S̄ of the item scores = mean S_l 80 (the score)
    assert "base · tiny-base" in html and "step 10" in html
    assert "S_l [0, 500)" in html  # LongBench-Write by length bucket
    assert 'class="muted interval">[' in html and "N=3" in html
    url = f"/evals/run-evaluations/{evaluation.pk}/table.csv"
    body = b"".join(staff_client.get(url).streaming_content).decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][0] == "system" and "LongBench-Write S_l low" in rows[0]
    assert [r[0] for r in rows[1:]] == ["base · tiny-base", "step 10", "step 30"]
    response = staff_client.get(f"/evals/run-evaluations/{evaluation.pk}/", HTTP_HX_REQUEST="true")
    assert response.status_code == 286  # everything finished: polling stops


def test_the_command_launches_it_and_names_bad_input(trained_run) -> None:
    out = io.StringIO()
    call_command("evaluate_run", str(trained_run.pk), "--benchmarks", "longbench_write",
                 "--checkpoints", "last", "--judge-kind", "heuristic", stdout=out)  # fmt: skip
    evaluation = RunEvaluation.objects.get()
    assert "queued 2 evaluation(s)" in out.getvalue() and evaluation.steps == [30]
    with pytest.raises(CommandError, match="no checkpoint at step"):
        call_command("evaluate_run", str(trained_run.pk), "--benchmarks", "writingbench",
                     "--checkpoints", "20")  # fmt: skip
    with pytest.raises(CommandError, match="unknown benchmark"):
        call_command("evaluate_run", str(trained_run.pk), "--benchmarks", "essays")


def test_the_studio_rotation_keeps_pinned_checkpoints(trained_run, tmp_path) -> None:
    from rl_engine.training import CheckpointInfo

    run_dir = tmp_path / "run"
    for step in (10, 20, 30):
        folder = run_dir / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / "curriculum.json").write_text("{}")
        Checkpoint.objects.filter(run=trained_run, step=step).update(
            path=str(folder), deleted=False
        )
    run_evaluation_create(
        run=trained_run, benchmarks=["longbench_write"], checkpoints="10", enqueue=False
    )
    attempt = tmp_path / "attempt" / "checkpoint-40"
    attempt.mkdir(parents=True)
    (attempt / "curriculum.json").write_text("{}")
    reporter = DjangoReporter(trained_run, run_dir=str(run_dir), keep_checkpoints=1)
    reporter.on_checkpoint(CheckpointInfo(step=40, path=str(attempt)))
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint-10", "checkpoint-40"]
    deleted = Checkpoint.objects.filter(run=trained_run, deleted=True)
    assert sorted(deleted.values_list("step", flat=True)) == [20, 30]
    assert [c.step for c in resolve_checkpoints(trained_run, "all")] == [10, 40]


def test_the_launch_page_offers_the_declared_judge_endpoints(
    staff_client: Client, trained_run
) -> None:
    html = staff_client.get(f"/evals/runs/{trained_run.pk}/evaluate/").content.decode()
    assert 'name="judge_endpoint"' in html and '<option value="heuristic"' in html
    assert "api_key_env" not in html
