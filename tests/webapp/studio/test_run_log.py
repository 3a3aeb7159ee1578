"""A run's own log: one file per attempt, fenced by the lease, redacted, tailed on the run
page; and report_to=tensorboard writing its events under the run directory."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import User
from django.test import Client

from rl_engine.models import save_tiny_model
from tests.webapp.studio.factories import make_dataset, make_instruction
from tests.webapp.studio.test_runs import tiny_config
from webapp.studio.models import Run
from webapp.studio.roles import grant_researcher
from webapp.studio.services.run_execution import run_execute
from webapp.studio.services.run_log import run_log_capture, run_log_path
from webapp.studio.services.runs import run_claim, run_create

SECRET = "s3cr3t-value-for-the-log-0123"
log = logging.getLogger("webapp.studio.tests.run_log")


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("policy") / "tiny", seed=0)


@pytest.fixture
def researcher_client(client: Client, db: None) -> Client:
    client.force_login(grant_researcher(User.objects.create_user("r", password="pw-r-12345")))
    return client


def test_the_log_takes_the_runs_threads_redacted_until_the_lease_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WRITING_RL_TEST_API_KEY", SECRET)
    lease = SimpleNamespace(token=4, lost=threading.Event())
    with run_log_capture(7, tmp_path, lease) as path:
        log.warning("calling https://user:%s@judge.example/v1 with key %s", "pw123456789", SECRET)

        def heartbeat() -> None:
            log.warning("from the heartbeat")

        def other_task() -> None:
            log.warning("another task's line")

        for target, name in ((heartbeat, "heartbeat-run-7"), (other_task, "worker-2")):
            thread = threading.Thread(target=target, name=name)
            thread.start()
            thread.join()
        lease.lost.set()  # taken over: this attempt writes no more
        log.warning("after the takeover")
    log.warning("after the run")

    assert path == run_log_path(tmp_path, 4) == tmp_path / "logs" / "attempt-4.log"
    text = path.read_text()
    assert "https://user:********@judge.example/v1 with key ********" in text
    assert SECRET not in text and "pw123456789" not in text
    assert "from the heartbeat" in text
    assert "another task's line" not in text
    assert "after the takeover" not in text and "after the run" not in text


@pytest.mark.django_db
def test_the_run_page_tails_the_holding_attempts_log_escaped_and_redacted(
    researcher_client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WRITING_RL_TEST_API_KEY", SECRET)
    run = Run.objects.create(
        name="logged", dataset=make_dataset(), status=Run.Status.RUNNING, epoch=2,
        output_dir=str(tmp_path), claimed_by="w:1:t",
    )  # fmt: skip
    run_log_path(tmp_path, 1).parent.mkdir(parents=True)
    run_log_path(tmp_path, 1).write_text("a line of the taken-over attempt\n")
    lines = [f"line {n}" for n in range(150)] + [f"<script>alert(1)</script> {SECRET}"]
    run_log_path(tmp_path, 2).write_text("\n".join(lines) + "\n")

    page = researcher_client.get(f"/studio/runs/{run.pk}/").content.decode()
    assert f'hx-get="/studio/runs/{run.pk}/log/"' in page and "load, every 3s" in page

    response = researcher_client.get(f"/studio/runs/{run.pk}/log/", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200  # still running: keep polling
    assert 'hx-trigger="every 3s"' in body  # the fragment polls; it does not load itself
    assert "line 50\n" not in body and "line 51\n" in body and "line 149\n" in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt; ********" in body
    assert "<script>alert" not in body and SECRET not in body
    assert "taken-over attempt" not in body

    run.status = Run.Status.SUCCEEDED
    run.save()
    ended = researcher_client.get(f"/studio/runs/{run.pk}/log/", HTTP_HX_REQUEST="true")
    assert ended.status_code == 286  # htmx stops polling a finished run's log
    # ...and the fragment it swaps in asks for nothing more (a "load" trigger there would
    # fetch it again on every swap, without end).
    assert "hx-get" not in ended.content.decode() and "hx-trigger" not in ended.content.decode()
    finished_page = researcher_client.get(f"/studio/runs/{run.pk}/").content.decode()
    assert 'hx-trigger="load"' in finished_page and "every 3s" not in finished_page


# Committed rows: the run's heartbeat thread (its own connection) beats while it trains.
@pytest.mark.django_db(transaction=True)
def test_a_tiny_run_writes_its_log_and_tensorboard_events_under_its_directory(
    settings, tmp_path: Path, policy: Path, researcher_client: Client, monkeypatch
) -> None:
    monkeypatch.setenv("WRITING_RL_HEARTBEAT_S", "1")
    settings.WRITING_RL_RUNS_DIR = tmp_path
    dataset = make_dataset()
    for _ in range(2):
        make_instruction(dataset, references=2)
    config = tiny_config(policy, report_to="tensorboard", checkpoint_every=2)
    run = run_create(name="tb", dataset=dataset, config=config, enqueue=False)
    assert run_claim(run.pk, worker="me")
    outcome = run_execute(run.pk, worker="me")
    run.refresh_from_db()
    assert outcome["status"] == "succeeded", run.error

    run_dir = Path(run.output_dir)
    assert run.config["logging_dir"] == str(run_dir / "tensorboard")
    assert list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    text = run_log_path(run_dir, run.epoch).read_text()
    assert f"run {run.pk}: step 1/2" in text and f"run {run.pk}: step 2/2" in text
    assert f"run {run.pk}: checkpoint at step 2 saved" in text
    assert "recording it succeeded" in text

    page = researcher_client.get(f"/studio/runs/{run.pk}/").content.decode()
    assert ">report_to</th><td><code>tensorboard</code>" in page
    tail = researcher_client.get(f"/studio/runs/{run.pk}/log/").content.decode()
    assert f"run {run.pk}: step 2/2" in tail
