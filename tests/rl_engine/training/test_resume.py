"""Kill a training process mid-run, resume it, and compare with an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from rl_engine.models import save_tiny_model
from rl_engine.training.checkpoint import read_curriculum
from rl_engine.training.file_store import JsonFileStore
from tests.rl_engine.training import run_training

ROOT = Path(__file__).resolve().parents[3]
MAX_STEPS = 4


@pytest.fixture
def one_thread() -> Iterator[None]:
    # The killed run computes in a subprocess with one thread; same arithmetic here.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _events(run_dir: Path, kind: str) -> list[object]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [e["payload"] for e in map(json.loads, lines) if e["kind"] == kind]


def _run_in_process(run_dir: Path, store: Path, policy: Path, *extra: str) -> dict[str, object]:
    run_training.main(
        [str(run_dir), str(store), str(policy), "--max-steps", str(MAX_STEPS), *extra]
    )
    result: dict[str, object] = json.loads((run_dir / "result.json").read_text())
    return result


def test_it_resumes_after_sigkill_like_an_uninterrupted_run(
    tmp_path: Path, one_thread: None
) -> None:
    policy = save_tiny_model(tmp_path / "policy", seed=0)
    killed_dir, killed_store = tmp_path / "killed", tmp_path / "killed.json"
    killed_dir.mkdir()
    log = (tmp_path / "killed.log").open("wb")
    doomed = subprocess.Popen(
        [
            sys.executable, "-m", "tests.rl_engine.training.run_training",
            str(killed_dir), str(killed_store), str(policy),
            "--max-steps", str(MAX_STEPS), "--hang-at-step", "3",
        ],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        # The uninterrupted run, while the other process gets going.
        uninterrupted = _run_in_process(tmp_path / "whole", tmp_path / "whole.json", policy)
        deadline = time.monotonic() + 120
        while not (killed_dir / "events.jsonl").exists() or not _events(killed_dir, "hanging"):
            assert doomed.poll() is None, (tmp_path / "killed.log").read_text()
            assert time.monotonic() < deadline, "the run never reached step 3"
            time.sleep(0.05)
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=30)
    assert doomed.returncode == -signal.SIGKILL
    assert [c["step"] for c in _events(killed_dir, "checkpoint")] == [2]  # type: ignore[index]
    assert not (killed_dir / "result.json").exists()
    # Step 3 reached the store before the kill, after the checkpoint: it must be rolled back.
    assert {o.step for o in JsonFileStore(killed_store).record_log} == {1, 2, 3}

    resumed = _run_in_process(killed_dir, killed_store, policy, "--resume")

    assert resumed["steps"] == uninterrupted["steps"] == MAX_STEPS
    assert resumed["resumed_from"] == str(killed_dir / "checkpoint-2")
    [resume] = _events(killed_dir, "resume")
    assert resume["step"] == 2  # type: ignore[index]
    # The tiers at the checkpoint are the uninterrupted run's tiers after step 2.
    assert read_curriculum(killed_dir / "checkpoint-2") == read_curriculum(
        tmp_path / "whole" / "checkpoint-2"
    )

    killed, whole = JsonFileStore(killed_store), JsonFileStore(tmp_path / "whole.json")
    # Step 3 was recorded twice in the log (before the kill, after the resume)...
    log_steps = [(o.sample_id, o.step) for o in killed.record_log]
    assert any(log_steps.count(key) == 2 for key in log_steps if key[1] == 3)
    # ...but counts once: one record per (sample, step), as in the uninterrupted run.
    history = [(o.sample_id, o.step) for o in killed.history]
    assert len(history) == len(set(history))
    assert sorted(history) == sorted((o.sample_id, o.step) for o in whole.history)

    # On CPU with one thread the runs are deterministic: same outcomes, same final tiers.
    def by_step(outcomes: list) -> list:  # type: ignore[type-arg]
        return sorted(outcomes, key=lambda o: (o.step, o.sample_id))

    assert by_step(killed.history) == by_step(whole.history)
    assert resumed["final_tiers"] == uninterrupted["final_tiers"]
    assert killed.snapshot() == whole.snapshot()
    steps = [s["step"] for s in _events(killed_dir, "step")]  # type: ignore[index]
    assert steps == [1, 2, 3, 3, 4]  # step 3 reported by the lost run and again
