"""A run's files under fencing: every attempt writes into its own folder, and only the worker
holding the run's lease promotes what it wrote into the run's folder.

``<run dir>/checkpoint-<step>/`` and ``<run dir>/final/`` are the run's files. An attempt (one
claim of the run, epoch ``n``) trains with ``<run dir>/.attempts/epoch-<n>/`` as the trainer's
output folder; each complete checkpoint it saves is moved into the run folder by one
``rename`` inside the fenced transaction that records the checkpoint (so a worker that was
taken over can neither add nor overwrite a checkpoint), and the final weights are moved the
same way when the run finishes.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

from rl_engine.training.checkpoint import checkpoint_step, complete_checkpoints

log = logging.getLogger(__name__)

ATTEMPTS_DIR = ".attempts"


def attempt_dir(run_dir: str | os.PathLike[str], token: int) -> Path:
    """The folder attempt ``token`` (the lease's epoch) trains into."""
    return Path(run_dir) / ATTEMPTS_DIR / f"epoch-{token}"


def promote(source: str | os.PathLike[str], run_dir: str | os.PathLike[str]) -> Path:
    """Move ``source`` (an attempt's ``checkpoint-<n>`` or ``final``) into the run folder,
    replacing an older copy of the same name; returns the new path. Call it while holding the
    lease (inside ``Lease.fenced()``)."""
    source = Path(source)
    target = Path(run_dir) / source.name
    if source.resolve() == target.resolve():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    trash = None
    if target.exists():
        trash = target.parent / ATTEMPTS_DIR / f".replaced-{source.name}-{uuid.uuid4().hex[:8]}"
        trash.parent.mkdir(parents=True, exist_ok=True)
        os.replace(target, trash)
    os.replace(source, target)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
    return target


def rotate(run_dir: str | os.PathLike[str], keep: int | None, *, protect: set[str]) -> list[Path]:
    """Delete the oldest complete checkpoints beyond the ``keep`` newest, never one whose path
    is in ``protect``; returns what was deleted."""
    if not keep:
        return []
    checkpoints = complete_checkpoints(run_dir)
    deleted = []
    for path in checkpoints[: max(len(checkpoints) - keep, 0)]:
        if str(path) in protect or checkpoint_step(path) is None:
            continue
        shutil.rmtree(path, ignore_errors=True)
        deleted.append(path)
    return deleted


def attempts_clean(run_dir: str | os.PathLike[str]) -> None:
    """Remove every attempt's leftovers (after the run finished)."""
    shutil.rmtree(Path(run_dir) / ATTEMPTS_DIR, ignore_errors=True)
