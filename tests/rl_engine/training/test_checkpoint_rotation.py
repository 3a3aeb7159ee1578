"""Checkpoint rotation keeps checkpoints that evaluations or campaigns use (pinned)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rl_engine.training.callbacks import ReportingCallback
from rl_engine.training.checkpoint import rotate_checkpoints


def make(run_dir: Path, *steps: int) -> None:
    for step in steps:
        (run_dir / f"checkpoint-{step}").mkdir(parents=True)
        (run_dir / f"checkpoint-{step}" / "weights").write_text("w")


def left(run_dir: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in run_dir.glob("checkpoint-*"))


def test_it_keeps_the_newest_and_every_pinned_checkpoint(tmp_path: Path) -> None:
    make(tmp_path, 10, 20, 30, 40, 50)
    (tmp_path / "final").mkdir()
    assert rotate_checkpoints(tmp_path, keep=2, pinned={10}) == [20, 30]
    assert left(tmp_path) == [10, 40, 50]  # 10 pinned, 40 and 50 the newest two
    assert (tmp_path / "final").is_dir()
    # A pinned newest checkpoint does not count twice; keep=1 keeps just the newest unpinned.
    assert rotate_checkpoints(tmp_path, keep=1, pinned={10, 50}) == [40]
    assert left(tmp_path) == [10, 50]
    assert rotate_checkpoints(tmp_path, keep=None) == []
    assert rotate_checkpoints(tmp_path / "absent", keep=1) == []
    with pytest.raises(ValueError, match="keep must be at least 1"):
        rotate_checkpoints(tmp_path, keep=0)


class PinningReporter:
    def __init__(self, pinned: set[int] | None) -> None:
        self.pinned = pinned
        self.removed: list[int] = []

    def pinned_steps(self) -> set[int] | None:
        return self.pinned

    def on_checkpoints_removed(self, steps: list[int]) -> None:
        self.removed.extend(steps)


def test_the_training_callback_asks_the_reporter_what_is_pinned(tmp_path: Path) -> None:
    make(tmp_path, 1, 2, 3, 4)
    callback = ReportingCallback.__new__(ReportingCallback)
    reporter = PinningReporter({1})
    callback.reporter = reporter  # type: ignore[assignment]
    callback.config_dict = {"keep_checkpoints": 1}
    assert callback.rotate(tmp_path) == [2, 3]
    assert reporter.removed == [2, 3] and left(tmp_path) == [1, 4]
    callback.config_dict = {"keep_checkpoints": None}
    make(tmp_path, 5)
    assert callback.rotate(tmp_path) == [] and left(tmp_path) == [1, 4, 5]
    reporter.pinned = None  # the reporter cannot tell: nothing is deleted
    callback.config_dict = {"keep_checkpoints": 1}
    assert callback.rotate(tmp_path) == [] and left(tmp_path) == [1, 4, 5]
