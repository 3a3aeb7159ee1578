"""What a checkpoint holds beyond the trainer's own files, and how a resume finds one.

The TRL/transformers trainer writes ``<run>/checkpoint-<step>/`` with the weights, optimizer,
LR scheduler, RNG states and trainer state. After it finishes, this module adds:

- ``writing_rl_config.json``: the run's TrainConfig;
- ``curriculum.json``: every sample's tier state after ``step`` steps (``store.snapshot()``).

``curriculum.json`` is written last, through a temporary file and an atomic rename, so its
presence marks a complete checkpoint: a process killed while saving leaves a directory without
it, which :func:`latest_checkpoint` skips.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from rl_engine.curriculum import TierState

CURRICULUM_FILE = "curriculum.json"
CONFIG_FILE = "writing_rl_config.json"
_CHECKPOINT_DIR = re.compile(r"^checkpoint-(\d+)$")


def _write_json_atomic(path: Path, payload: Any) -> None:
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(payload, stream, indent=1, sort_keys=True)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.unlink(staging)


def tier_state_to_dict(state: TierState) -> dict[str, Any]:
    return {
        "tier": state.tier,
        "num_tiers": state.num_tiers,
        "mastered": state.mastered,
        "last_step": state.last_step,
    }


def tier_state_from_dict(payload: Mapping[str, Any]) -> TierState:
    return TierState(
        tier=int(payload["tier"]),
        num_tiers=int(payload["num_tiers"]),
        mastered=bool(payload["mastered"]),
        last_step=int(payload["last_step"]),
    )


def write_checkpoint_extras(
    checkpoint_dir: str | os.PathLike[str],
    *,
    step: int,
    config: Mapping[str, Any],
    snapshot: Mapping[str, TierState],
) -> Path:
    """Add the run config and the curriculum snapshot to a trainer checkpoint directory."""
    target = Path(checkpoint_dir)
    if not target.is_dir():
        raise FileNotFoundError(f"checkpoint directory {target} does not exist")
    _write_json_atomic(target / CONFIG_FILE, dict(config))
    _write_json_atomic(
        target / CURRICULUM_FILE,
        {
            "step": step,
            "tiers": {sid: tier_state_to_dict(state) for sid, state in sorted(snapshot.items())},
        },
    )
    return target


def read_curriculum(checkpoint_dir: str | os.PathLike[str]) -> tuple[int, dict[str, TierState]]:
    """The step and the tier states saved in a checkpoint; a clear error when it is incomplete."""
    path = Path(checkpoint_dir) / CURRICULUM_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: {Path(checkpoint_dir)} is not a complete Writing-RL checkpoint "
            "(the process may have died while saving); resume from an earlier checkpoint"
        )
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        tiers = {sid: tier_state_from_dict(state) for sid, state in payload["tiers"].items()}
        return int(payload["step"]), tiers
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: unreadable curriculum snapshot ({error})") from error


def read_config(checkpoint_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(checkpoint_dir) / CONFIG_FILE
    payload = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(payload, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return payload


def checkpoint_step(path: str | os.PathLike[str]) -> int | None:
    match = _CHECKPOINT_DIR.match(Path(path).name)
    return int(match.group(1)) if match else None


def complete_checkpoints(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(run_dir)
    if not root.is_dir():
        return []
    found = [
        (step, child)
        for child in root.iterdir()
        if child.is_dir()
        and (step := checkpoint_step(child)) is not None
        and (child / CURRICULUM_FILE).is_file()
    ]
    return [path for _, path in sorted(found)]


def rotate_checkpoints(
    run_dir: str | os.PathLike[str], keep: int | None, pinned: Collection[int] = ()
) -> list[int]:
    """Delete the oldest ``checkpoint-<step>`` directories so that ``keep`` unpinned ones remain;
    pinned steps (used by an evaluation or an annotation campaign) are never deleted and do not
    count against ``keep``. The newest checkpoint is always kept (a resume needs it). Returns
    the deleted steps, oldest first. ``keep=None`` keeps everything.
    """
    if keep is None:
        return []
    if keep < 1:
        raise ValueError(f"keep must be at least 1 (or None), got {keep}")
    root = Path(run_dir)
    if not root.is_dir():
        return []
    found = sorted(
        (step, child)
        for child in root.iterdir()
        if child.is_dir() and (step := checkpoint_step(child)) is not None
    )
    unpinned = [(step, path) for step, path in found[:-1] if step not in set(pinned)]
    newest_kept = keep - 1  # the newest checkpoint is kept outside this list
    doomed = unpinned[: max(len(unpinned) - newest_kept, 0)]
    removed = []
    for step, path in doomed:
        shutil.rmtree(path, ignore_errors=True)
        removed.append(step)
    return removed


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    checkpoints = complete_checkpoints(run_dir)
    return checkpoints[-1] if checkpoints else None


def resolve_resume(
    resume_from: str | os.PathLike[str] | bool | None, run_dir: str | os.PathLike[str]
) -> Path | None:
    """Turn ``train(resume_from=...)`` into a checkpoint directory.

    None / False: a fresh run. True or ``"latest"``: the newest complete checkpoint in
    ``run_dir`` (None when there is none yet, so a restarted job simply starts). A path: that
    checkpoint directory, or the newest complete checkpoint of that run directory.
    """
    if resume_from is None or resume_from is False:
        return None
    if resume_from is True or resume_from == "latest":
        return latest_checkpoint(run_dir)
    path = Path(resume_from)
    if checkpoint_step(path) is None and path.is_dir():
        latest = latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(f"no complete checkpoint-<step> directory in {path}")
        return latest
    read_curriculum(path)  # raises with what is wrong
    return path
