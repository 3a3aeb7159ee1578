"""A curriculum store in one JSON file, for runs without a database that must survive a crash.

Every call takes an exclusive file lock, reads the file, applies the change with the shared
rule (:func:`rl_engine.curriculum.apply_outcome`) and writes the whole file back through a
temporary file and an atomic rename. So a process killed at any moment leaves either the old
or the new state, and several processes (a trainer, a dashboard, judge workers) can share it.
Fine for thousands of samples; the web app's PostgreSQL store is the one for production.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rl_engine.curriculum import StepOutcome, TierState, Transition, apply_outcome
from rl_engine.training.checkpoint import tier_state_from_dict, tier_state_to_dict

_VERSION = 1


class JsonFileStore:
    """A process-safe CurriculumStore kept in ``path`` (created on first use).

    ``num_tiers`` (sample id -> number of references) adds samples the file does not know yet;
    a sample the file already knows with a different number of tiers is an error. ``history``
    lists the applied outcomes (a restore drops those newer than the restored state), and
    ``record_log`` every outcome ever applied, including rolled-back ones.
    """

    def __init__(self, path: str | os.PathLike[str], num_tiers: Mapping[str, int] | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread_lock = threading.Lock()
        with self._locked(write=bool(num_tiers)) as state:
            for sample_id, count in (num_tiers or {}).items():
                known = state["states"].get(sample_id)
                if known is None:
                    state["states"][sample_id] = tier_state_to_dict(TierState.initial(count))
                    state["initial"][sample_id] = count
                elif known["num_tiers"] != count:
                    raise ValueError(
                        f"{self.path}: sample {sample_id!r} has {known['num_tiers']} tiers in the "
                        f"file but {count} references now; use a new store file for new data"
                    )

    @contextmanager
    def _locked(self, write: bool = True) -> Iterator[dict[str, Any]]:
        with self._thread_lock, open(f"{self.path}.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self._read()
                yield state
                if write:
                    self._write(state)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"version": _VERSION, "states": {}, "initial": {}, "history": [], "log": []}
        try:
            payload: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise ValueError(f"{self.path}: not a curriculum store file ({error})") from error
        return payload

    def _write(self, state: dict[str, Any]) -> None:
        handle, staging = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(state, stream)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(staging, self.path)
        finally:
            if os.path.exists(staging):
                os.unlink(staging)

    def read_tiers(self, sample_ids: Sequence[str]) -> dict[str, TierState]:
        with self._locked(write=False) as state:
            missing = [sid for sid in sample_ids if sid not in state["states"]]
            if missing:
                raise KeyError(f"unknown sample ids in the curriculum: {missing[:5]}")
            return {sid: tier_state_from_dict(state["states"][sid]) for sid in sample_ids}

    def record_outcomes(self, outcomes: Sequence[StepOutcome]) -> list[Transition]:
        transitions: list[Transition] = []
        with self._locked() as state:
            missing = [o.sample_id for o in outcomes if o.sample_id not in state["states"]]
            if missing:
                raise KeyError(f"unknown sample ids in the curriculum: {missing[:5]}")
            for outcome in outcomes:
                current = tier_state_from_dict(state["states"][outcome.sample_id])
                new_state, transition = apply_outcome(current, outcome)
                if new_state == current:
                    continue
                state["states"][outcome.sample_id] = tier_state_to_dict(new_state)
                state["history"].append(asdict(outcome))
                state["log"].append(asdict(outcome))
                if transition is not None:
                    transitions.append(transition)
        return transitions

    def snapshot(self) -> dict[str, TierState]:
        with self._locked(write=False) as state:
            return {sid: tier_state_from_dict(s) for sid, s in state["states"].items()}

    def restore(self, snapshot: Mapping[str, TierState]) -> None:
        """Replace the state with ``snapshot`` (samples it lacks go back to tier 0)."""
        with self._locked() as state:
            states = {sid: tier_state_to_dict(s) for sid, s in snapshot.items()}
            for sid, count in state["initial"].items():
                states.setdefault(sid, tier_state_to_dict(TierState.initial(count)))
            state["states"] = states
            state["history"] = [
                o
                for o in state["history"]
                if o["sample_id"] in states and o["step"] <= states[o["sample_id"]]["last_step"]
            ]

    @property
    def history(self) -> list[StepOutcome]:
        """The applied outcomes that the current state stands on, in order."""
        with self._locked(write=False) as state:
            return [StepOutcome(**o) for o in state["history"]]

    @property
    def record_log(self) -> list[StepOutcome]:
        """Every outcome ever applied, including ones a restore rolled back."""
        with self._locked(write=False) as state:
            return [StepOutcome(**o) for o in state["log"]]
