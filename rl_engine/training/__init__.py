"""Training: Writing-RL on TRL (GRPO, RLOO, Reference-SFT), resumable, reporting as it goes.

``train(config, instructions, store, reporter, resume_from=None)`` dispatches on
``config.backend``. A backend is a module under ``rl_engine.training`` named
``<backend>_backend`` exposing ``train_<backend>(config, instructions, store, reporter,
resume_from) -> TrainResult``; ``"trl"`` lives here, ``"verl"`` (PPO with a GAE critic, Ray +
vLLM) plugs in as ``rl_engine/training/verl_backend.py`` with ``train_verl``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence

from rl_engine.curriculum import CurriculumStore
from rl_engine.training.config import TrainConfig
from rl_engine.training.reporter import InMemoryReporter, Reporter
from rl_engine.training.reward_fn import JudgeOutageError, JudgeOutagePolicy
from rl_engine.training.types import (
    CheckpointInfo,
    JudgeWait,
    JudgmentRecord,
    StepMetrics,
    TrainingInstruction,
    TrainResult,
)

__all__ = [
    "BackendUnavailableError",
    "CheckpointInfo",
    "InMemoryReporter",
    "JudgeOutageError",
    "JudgeOutagePolicy",
    "JudgeWait",
    "JudgmentRecord",
    "Reporter",
    "StepMetrics",
    "TrainConfig",
    "TrainResult",
    "TrainingInstruction",
    "backend_entry_point",
    "train",
]

BackendFn = Callable[..., TrainResult]


class BackendUnavailableError(NotImplementedError):
    """The configured backend's module is not there (yet) or cannot be imported."""


def backend_entry_point(backend: str) -> BackendFn:
    """The ``train_<backend>`` function of ``rl_engine.training.<backend>_backend``."""
    module_name = f"rl_engine.training.{backend}_backend"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise BackendUnavailableError(
                f"backend {backend!r} needs {error.name!r}, which is not installed "
                f"(for verl: `pip install -e .[verl]`)"
            ) from error
        raise BackendUnavailableError(
            f"backend {backend!r} is not available: {module_name.replace('.', '/')}.py does not "
            "exist yet (the verl backend arrives with the deployment work; use backend='trl' — "
            "PPO with a GAE critic needs verl, GRPO/RLOO/SFT run on 'trl')"
        ) from error
    entry = getattr(module, f"train_{backend}", None)
    if entry is None:
        raise BackendUnavailableError(f"{module_name} defines no train_{backend}() function")
    return entry


def train(
    config: TrainConfig,
    instructions: Sequence[TrainingInstruction],
    store: CurriculumStore,
    reporter: Reporter,
    resume_from: str | os.PathLike[str] | bool | None = None,
) -> TrainResult:
    """Train ``config.policy`` on ``instructions`` and report through ``reporter``.

    ``store`` holds the curriculum (one entry per sample id with as many tiers as references).
    ``resume_from``: a checkpoint directory, a run directory (its newest complete checkpoint),
    or True / "latest" for the newest in ``config.output_dir`` (a fresh start if none).
    Resuming restores weights, optimizer, scheduler, RNG and step, and rolls ``store`` back to
    the checkpoint's tiers. Returns how the run ended; the final model is in
    ``result.model_dir``. ``reporter.should_stop()`` ends the run within one step, after a
    checkpoint.
    """
    return backend_entry_point(config.backend)(config, instructions, store, reporter, resume_from)
