"""The job lifecycle's fencing and sending: a worker whose lease was taken over writes nothing
(progress, results, judgments, curriculum outcomes, checkpoints, its end); a send that fails
leaves the row for the sweep, which marks and audits a row only after its send succeeded."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from rl_engine.curriculum import StepOutcome
from rl_engine.training import CheckpointInfo, JudgmentRecord, StepMetrics
from tests.webapp.studio.factories import make_curriculum, make_dataset, make_instruction, make_run
from tests.webapp.studio.test_runs import tiny_config
from webapp.studio.models import (
    AuditLog,
    Checkpoint,
    CurriculumState,
    Judgment,
    PipelineJob,
    Reference,
    Run,
    StepMetric,
)
from webapp.studio.services import run_files
from webapp.studio.services.curriculum_store import DjangoCurriculumStore
from webapp.studio.services.leases import (
    QUEUED_GRACE,
    STALE_AFTER,
    UNSENT_GRACE,
    LeaseLost,
)
from webapp.studio.services.pipeline import job_create, job_execute, job_finish, job_progress
from webapp.studio.services.reporter import DjangoReporter
from webapp.studio.services.runs import run_claim, run_finish, runs_recover_stale
from webapp.studio.tasks import train_run

pytestmark = pytest.mark.django_db


def go_stale(model: Any, pk: int) -> None:
    model.objects.filter(pk=pk).update(heartbeat_at=timezone.now() - 2 * STALE_AFTER)


def taken_over_run() -> tuple[Run, Any, Any, dict[str, str]]:
    """A run claimed by ``old``, lost (heartbeat stale) and claimed by ``new``."""
    run = make_run()
    ids = make_curriculum(run, {"a": 3, "b": 3})
    old = run_claim(run.pk, worker="old")
    assert old is not None and old.token == 1
    go_stale(Run, run.pk)
    new = run_claim(run.pk, worker="new")
    assert new is not None and new.token == 2 and new.attempts == 2
    return run, old, new, ids


def test_a_takeover_bumps_the_epoch_and_fences_every_write_of_the_old_holder() -> None:
    run, old, new, _ = taken_over_run()
    with pytest.raises(LeaseLost):
        old.update(current_step=7)
    with pytest.raises(LeaseLost), old.fenced():
        pytest.fail("the fenced block must not run")  # pragma: no cover
    assert not old.beat()
    with pytest.raises(LeaseLost):
        old.check()
    assert not run_finish(run_id=run.pk, status=Run.Status.SUCCEEDED, lease=old)
    # The holder's writes go through.
    new.update(current_step=3)
    assert new.beat()
    run.refresh_from_db()
    assert (run.status, run.current_step, run.epoch, run.claimed_by) == ("running", 3, 2, "new")
    assert run_finish(run_id=run.pk, status=Run.Status.SUCCEEDED, lease=new)
    assert not new.beat()  # finished: nothing holds it any more


def test_a_taken_over_reporter_records_nothing_and_stops() -> None:
    run, old, new, ids = taken_over_run()
    stale = DjangoReporter(run, total_steps=4, lease=old)
    live = DjangoReporter(run, total_steps=4, lease=new)
    record = JudgmentRecord(
        sample_id=ids["a"], step=1, rollout_index=0, rollout="text", reference_tier=0,
        verdict="A", reward=1.0, total_reward=1.0, position="first", rationale="", judge="j",
    )  # fmt: skip
    for report in (
        lambda: stale.on_judgments([record]),
        lambda: stale.on_step(StepMetrics(step=1, algorithm="grpo")),
        lambda: stale.on_checkpoint(CheckpointInfo(step=1, path="/nowhere", tiers={})),
        stale.should_stop,
    ):
        with pytest.raises(LeaseLost):
            report()
    assert not Judgment.objects.exists() and not StepMetric.objects.exists()
    assert not Checkpoint.objects.exists()
    live.on_judgments([record])
    live.on_step(StepMetrics(step=1, algorithm="grpo"))
    assert Judgment.objects.count() == 1 and Run.objects.get(pk=run.pk).current_step == 1


def test_a_taken_over_curriculum_store_records_no_outcome() -> None:
    run, old, new, ids = taken_over_run()
    outcome = StepOutcome(ids["a"], step=1, wins=2, ties=0, losses=0, invalid=0, advance=True)
    with pytest.raises(LeaseLost):
        DjangoCurriculumStore(run, lease=old).record_outcomes([outcome])
    assert CurriculumState.objects.get(run=run, instruction_id=ids["a"]).wins == 0
    moves = DjangoCurriculumStore(run, lease=new).record_outcomes([outcome])
    assert [(m.from_tier, m.to_tier) for m in moves] == [(0, 1)]


def test_checkpoints_are_promoted_from_the_attempt_folder_only_by_the_holder(
    tmp_path: Path,
) -> None:
    run, old, new, _ = taken_over_run()
    run_dir = tmp_path / "run"
    for lease, text in ((old, "old"), (new, "new")):
        saved = run_files.attempt_dir(run_dir, lease.token) / "checkpoint-2"
        saved.mkdir(parents=True)
        (saved / "weights").write_text(text)
        reporter = DjangoReporter(run, total_steps=4, lease=lease, run_dir=str(run_dir))
        info = CheckpointInfo(step=2, path=str(saved), tiers={})
        if lease is old:
            with pytest.raises(LeaseLost):
                reporter.on_checkpoint(info)
        else:
            reporter.on_checkpoint(info)
    assert (run_dir / "checkpoint-2" / "weights").read_text() == "new"
    assert Checkpoint.objects.get(run=run).path == str(run_dir / "checkpoint-2")
    # The old attempt's copy stayed in its own folder.
    assert (run_files.attempt_dir(run_dir, 1) / "checkpoint-2" / "weights").read_text() == "old"


def test_a_taken_over_pipeline_job_stores_no_result_and_no_progress() -> None:
    from tests.webapp.studio.test_selection_and_pipeline import scored_instruction

    dataset = make_dataset()
    scored_instruction(dataset, None, {"b": 2, "a": 1})
    job = job_create(kind="order_tiers", dataset=dataset, params={}, enqueue=False)
    from webapp.studio.services.pipeline import job_claim

    old = job_claim(job.pk, worker="old")
    go_stale(PipelineJob, job.pk)
    new = job_claim(job.pk, worker="new")
    assert old is not None and new is not None
    with pytest.raises(LeaseLost):
        job_progress(job.pk, 0.5, "half", lease=old)
    with pytest.raises(LeaseLost):
        job_execute(PipelineJob.objects.get(pk=job.pk), old)
    assert not Reference.objects.filter(tier__isnull=False).exists()
    assert not job_finish(job.pk, status="succeeded", result={"x": 1}, lease=old)
    result = job_execute(PipelineJob.objects.get(pk=job.pk), new)
    assert job_finish(job.pk, status="succeeded", result=result, lease=new)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.result == result and job.message == ""


def test_a_resumed_selection_job_reuses_its_selection() -> None:
    from tests.webapp.studio.test_selection_and_pipeline import scored_instruction
    from webapp.studio.models import Selection
    from webapp.studio.services.pipeline import job_claim

    dataset = make_dataset()
    for i in range(3):
        scored_instruction(dataset, 2.0 + i, {"w": 8})
    params = {"strategy": "margin", "k": 2, "policy": "pi"}
    job = job_create(kind="select", dataset=dataset, params=params, enqueue=False)
    first = job_claim(job.pk, worker="first")
    assert first is not None
    made = job_execute(PipelineJob.objects.get(pk=job.pk), first)["selection"]
    go_stale(PipelineJob, job.pk)  # lost before recording its end
    second = job_claim(job.pk, worker="second")
    again = job_execute(PipelineJob.objects.get(pk=job.pk), second)
    assert again["selection"] == made and Selection.objects.count() == 1


# -- sending -----------------------------------------------------------------------------------


class Broker:
    """Stands in for ``train_run.apply_async``: records sends, or refuses them while down."""

    def __init__(self) -> None:
        self.up = True
        self.sent: list[int] = []

    def __call__(self, args: list[int], task_id: str | None = None) -> None:
        if not self.up:
            raise ConnectionError("broker unreachable")
        self.sent.append(args[0])


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Broker:
    fake = Broker()
    monkeypatch.setattr(train_run, "apply_async", fake)
    return fake


def test_a_run_created_while_the_broker_is_down_is_sent_by_the_first_sweep_after(
    broker: Broker,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
    tmp_path: Path,
) -> None:
    from rl_engine.models import save_tiny_model
    from webapp.studio.services.runs import run_create

    tiny_policy = save_tiny_model(tmp_path / "policy", seed=0)

    settings.WRITING_RL_RUNS_DIR = tmp_path
    dataset = make_dataset()
    make_instruction(dataset, references=2)
    broker.up = False
    with django_capture_on_commit_callbacks(execute=True):
        run = run_create(name="r", dataset=dataset, config=tiny_config(tiny_policy))
    run.refresh_from_db()
    assert run.status == "queued" and run.enqueued_at is None  # saved, not sent
    later = timezone.now() + UNSENT_GRACE * 2
    failed = runs_recover_stale(now=later)
    assert (failed.resent, failed.failed) == ([], [run.pk])
    assert not AuditLog.objects.exists()  # nothing was sent, nothing is claimed to be
    broker.up = True
    sweep = runs_recover_stale(now=later)
    assert sweep.resent == [run.pk] and broker.sent == [run.pk]
    run.refresh_from_db()
    assert run.enqueued_at is not None
    assert AuditLog.objects.get(run=run).action == "run_resend"
    assert runs_recover_stale(now=later).resent == []  # sent: left alone


def test_a_queued_run_whose_message_may_be_lost_is_sent_again_after_the_grace(
    broker: Broker,
) -> None:
    run = make_run(enqueued_at=timezone.now())
    assert runs_recover_stale().resent == []
    assert runs_recover_stale(now=timezone.now() + QUEUED_GRACE + timedelta(seconds=1)).resent == [
        run.pk
    ]
    assert broker.sent == [run.pk]


def test_a_failed_send_of_a_lost_run_is_retried_on_the_next_pass(broker: Broker) -> None:
    run = make_run(status=Run.Status.RUNNING, claimed_by="gone", enqueued_at=timezone.now())
    go_stale(Run, run.pk)
    broker.up = False
    assert runs_recover_stale().failed == [run.pk]
    run.refresh_from_db()
    assert run.requeued_at is None and not AuditLog.objects.exists()
    broker.up = True
    assert runs_recover_stale().requeued == [run.pk]
    assert AuditLog.objects.get(run=run).action == "run_requeue"
    assert runs_recover_stale().requeued == []  # once per loss


def test_one_kind_failing_does_not_skip_the_others(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from webapp.ops import tasks as system

    run = make_run(status=Run.Status.RUNNING, claimed_by="gone", enqueued_at=timezone.now())
    go_stale(Run, run.pk)

    monkeypatch.setattr(
        PipelineJob.objects,
        "select_for_update",
        lambda **_: (_ for _ in ()).throw(RuntimeError("database hiccup")),
    )
    report = system.recover_lost_work()
    assert report["run"]["requeued"] == [run.pk]
    assert "pipeline job" not in report  # its sweep failed (logged); the runs' still ran


def test_a_resume_recounts_the_counters_and_drops_transitions_past_the_checkpoint(
    tmp_path: Path,
) -> None:
    from rl_engine.curriculum import TierState
    from rl_engine.training.checkpoint import write_checkpoint_extras
    from webapp.studio.models import CurriculumTransition
    from webapp.studio.services.run_execution import run_roll_back_to_checkpoint

    run = make_run()
    ids = make_curriculum(run, {"a": 3})
    instruction = int(ids["a"])
    checkpoint = tmp_path / "checkpoint-2"
    checkpoint.mkdir()
    snapshot = {ids["a"]: TierState(tier=1, num_tiers=3, mastered=False, last_step=2)}
    write_checkpoint_extras(checkpoint, step=2, config={}, snapshot=snapshot)
    for step, verdict in ((1, "win"), (2, "tie"), (3, "win")):
        Judgment.objects.create(run=run, instruction_id=instruction, step=step, verdict=verdict)
    for step in (1, 3):
        CurriculumTransition.objects.create(
            run=run, instruction_id=instruction, step=step, from_tier=0, to_tier=1
        )
    # The lost worker recorded step 3's outcome (and more than the judgments show).
    CurriculumState.objects.filter(run=run).update(wins=5, ties=1, attempts=4)
    store = DjangoCurriculumStore(run)
    assert run_roll_back_to_checkpoint(run.pk, str(tmp_path), store) == 2
    state = CurriculumState.objects.get(run=run)
    assert (state.wins, state.ties, state.attempts) == (1, 1, 2)
    assert list(CurriculumTransition.objects.filter(run=run).values_list("step", flat=True)) == [1]


def test_a_resume_counts_rollouts_once_when_both_orders_were_judged(tmp_path: Path) -> None:
    from rl_engine.curriculum import TierState
    from rl_engine.training.checkpoint import write_checkpoint_extras
    from webapp.studio.services.run_execution import run_roll_back_to_checkpoint

    run = make_run()
    Run.objects.filter(pk=run.pk).update(config={**run.config, "reward_position": "both"})
    ids = make_curriculum(run, {"a": 3})
    checkpoint = tmp_path / "checkpoint-1"
    checkpoint.mkdir()
    snapshot = {ids["a"]: TierState(tier=1, num_tiers=3, mastered=False, last_step=1)}
    write_checkpoint_extras(checkpoint, step=1, config={}, snapshot=snapshot)
    # Two rollouts of step 1, each judged in both orders: a win and a flip (a tie).
    for outcome, letters in (("win", "BA"), ("tie", "AA")):
        for position, letter in zip(("second", "first"), letters, strict=True):
            Judgment.objects.create(
                run=run,
                instruction_id=int(ids["a"]),
                step=1,
                verdict=outcome,
                order_verdict=letter,
                position=position,
            )
    run_roll_back_to_checkpoint(run.pk, str(tmp_path), DjangoCurriculumStore(run))
    state = CurriculumState.objects.get(run=run)
    assert (state.wins, state.ties, state.losses, state.attempts) == (1, 1, 0, 1)
