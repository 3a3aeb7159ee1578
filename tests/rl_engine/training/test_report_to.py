"""report_to: the trainer's own metrics also go to TensorBoard (event files) or offline W&B,
under the run directory; a choice whose package is missing is refused by name. W&B runs for
real (offline): each training run ends its own W&B run, complete, in its own directory, also
when one process trains run after run as a worker does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rl_engine.curriculum import InMemoryStore
from rl_engine.models import save_tiny_model
from rl_engine.training import InMemoryReporter, TrainConfig, train
from rl_engine.training.config import REPORT_TO, report_to_installed
from rl_engine.training.trl_common import reporting_environment
from tests.rl_engine.training.run_training import instructions


def _config(tmp_path: Path, **changes: object) -> TrainConfig:
    settings: dict[str, object] = {
        "policy": str(tmp_path / "policy"), "num_generations": 2, "prompts_per_step": 2,
        "max_completion_tokens": 4, "kl_beta": 0.0, "max_steps": 2, "checkpoint_every": 0,
        "device": "cpu", "seed": 1, "save_final_model": False,
        "output_dir": str(tmp_path / "run"),
    }  # fmt: skip
    settings.update(changes)
    return TrainConfig(**settings)  # type: ignore[arg-type]


@pytest.mark.skipif(
    not report_to_installed("tensorboard"), reason="tensorboard/tensorboardX not installed"
)
def test_a_tiny_run_with_report_to_tensorboard_writes_an_events_file(tmp_path: Path) -> None:
    save_tiny_model(tmp_path / "policy", seed=0)
    data = instructions()
    config = _config(tmp_path, report_to="tensorboard", logging_dir=str(tmp_path / "tb"))
    store = InMemoryStore({i.sample_id: i.num_tiers for i in data})
    before = os.environ.get("TENSORBOARD_LOGGING_DIR")

    result = train(config, data, store, InMemoryReporter())

    assert result.steps == 2
    events = list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    assert os.environ.get("TENSORBOARD_LOGGING_DIR") == before  # restored
    assert "tensorboard" in REPORT_TO


def test_report_to_defaults_to_none_and_refuses_unknown_or_missing_packages(
    tmp_path: Path,
) -> None:
    assert _config(tmp_path).report_to == "none" and "none" in REPORT_TO
    with pytest.raises(ValueError, match="report_to must be one of none, tensorboard, wandb"):
        _config(tmp_path, report_to="mlflow")
    if report_to_installed("tensorboard"):
        with pytest.raises(ValueError, match="report_to='tensorboard' works with the trl backend"):
            _config(tmp_path, report_to="tensorboard", backend="verl", algorithm="ppo")
    if not report_to_installed("wandb"):
        assert "wandb" not in REPORT_TO
        with pytest.raises(ValueError, match="needs the wandb package, which is not installed"):
            _config(tmp_path, report_to="wandb")


def test_wandb_is_forced_offline_into_the_run_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "online")
    config = _config(tmp_path)
    config.report_to = "wandb"  # past validation: the environment alone is under test
    with reporting_environment(config):
        assert os.environ["WANDB_MODE"] == "offline"
        assert os.environ["WANDB_DIR"] == str(tmp_path / "run" / "wandb")
    assert os.environ["WANDB_MODE"] == "online"


@pytest.mark.skipif(not report_to_installed("wandb"), reason="wandb not installed")
def test_two_runs_in_one_process_each_write_a_complete_offline_wandb_run_of_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wandb

    monkeypatch.setenv("WANDB_MODE", "online")  # forced offline anyway
    save_tiny_model(tmp_path / "policy", seed=0)
    data = instructions()
    for name in ("first", "second"):
        config = _config(tmp_path, report_to="wandb", output_dir=str(tmp_path / name))
        store = InMemoryStore({i.sample_id: i.num_tiers for i in data})
        assert train(config, data, store, InMemoryReporter()).steps == 2
        # Ended with the training, not left open until the process exits.
        assert wandb.run is None
        (log,) = (tmp_path / name / "wandb").rglob("offline-run-*/run-*.wandb")
        written = log.read_bytes()
        # The trainer's metrics are in it (W&B's record log stores the keys as written).
        for key in (b"train/reward", b"train/loss", b"train/global_step"):
            assert key in written, (name, key, len(written))
    assert os.environ["WANDB_MODE"] == "online"
    assert "WANDB_DIR" not in os.environ or os.environ["WANDB_DIR"] != str(tmp_path / "second")
