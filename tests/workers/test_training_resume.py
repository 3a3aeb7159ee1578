"""A training process killed mid-run: the run is taken over and resumed from its checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from rl_engine.models import save_tiny_model
from tests.conftest import ROOT, database_url_for_subprocess
from tests.webapp.studio.factories import make_dataset, make_instruction
from tests.webapp.studio.test_runs import tiny_config
from webapp.studio.models import Checkpoint, CurriculumState, Judgment, Run, StepMetric
from webapp.studio.services.leases import STALE_AFTER
from webapp.studio.services.run_execution import run_execute
from webapp.studio.services.runs import run_claim

STEPS = 3


@pytest.mark.django_db(transaction=True)
def test_it_resumes_a_run_whose_worker_was_killed(tmp_path: Path) -> None:
    policy = save_tiny_model(tmp_path / "policy", seed=0)
    dataset = make_dataset()
    for _ in range(2):
        make_instruction(dataset, references=3)
    config = tmp_path / "run.json"
    config.write_text(json.dumps(tiny_config(policy, max_steps=STEPS)))
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "WRITING_RL_VAR_DIR": str(settings.VAR_DIR),
        "WRITING_RL_RUNS_DIR": str(tmp_path / "runs"),
    }
    log = tmp_path / "launch.log"
    with log.open("wb") as output:
        doomed = subprocess.Popen(
            [sys.executable, "manage.py", "launch_run", "--config", str(config),
             "--dataset", dataset.name, "--sync"],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not Checkpoint.objects.exists():
            assert doomed.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        doomed.send_signal(signal.SIGKILL)  # the worker is lost, without any warning
        doomed.wait(timeout=30)
    finally:
        if doomed.poll() is None:
            doomed.kill()
    run = Run.objects.get()
    assert run.status == Run.Status.RUNNING and run.current_step < STEPS
    # While its heartbeat is fresh nobody may take it; once stale, a new worker can.
    assert run_claim(run.pk, worker="rescuer") is None
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - 2 * STALE_AFTER)
    assert run_claim(run.pk, worker="rescuer") is not None

    outcome = run_execute(run.pk, worker="rescuer")
    run.refresh_from_db()
    assert outcome["status"] == "succeeded", run.error
    assert outcome["resumed_from"] is not None and "checkpoint-" in outcome["resumed_from"]
    assert (run.attempts, run.current_step, run.claimed_by) == (2, STEPS, "rescuer")
    # Every step exactly once, whatever the killed process had written after its checkpoint.
    assert list(StepMetric.objects.filter(run=run).values_list("step", flat=True)) == list(
        range(1, STEPS + 1)
    )
    assert Judgment.objects.filter(run=run).count() == STEPS * 4
    for state in CurriculumState.objects.filter(run=run):
        assert (state.last_step, state.attempts) == (STEPS, STEPS)
        assert state.wins + state.ties + state.losses + state.invalid == STEPS * 2
