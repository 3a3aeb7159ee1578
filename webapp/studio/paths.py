"""Where the files a researcher names may live on the workers.

A policy (or a local judge or writer model) is a registered name (``smollm2-135m-instruct``)
or a checkpoint directory under one of ``WRITING_RL_MODEL_ROOTS`` or under the runs directory
(``WRITING_RL_RUNS_DIR``: later runs start from earlier runs' checkpoints). A judge cache file
lies under the runs directory. Anything else (``/etc``, another user's home, ``..`` tricks) is
refused with a message naming the field; the web app checks when a run is created and the
worker checks again when it starts, so a config edited in the database gets no further.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings

from rl_engine.models import KNOWN_MODELS


class PathNotAllowed(ValueError):
    """``field`` names a file outside the configured roots."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def model_roots() -> list[Path]:
    roots = [Path(p) for p in getattr(settings, "WRITING_RL_MODEL_ROOTS", [])]
    roots.append(Path(settings.WRITING_RL_RUNS_DIR))
    return [Path(os.path.realpath(root)) for root in roots]


def _inside(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def check_model(value: str, field: str) -> str:
    """``value`` if it is a registered model name or a path under the model roots."""
    text = (value or "").strip()
    if not text or text.lower() in KNOWN_MODELS:
        return text
    if "\x00" in text:
        raise PathNotAllowed(field, "contains a NUL character")
    real = Path(os.path.realpath(Path(text).expanduser()))
    roots = model_roots()
    if not _inside(real, roots):
        raise PathNotAllowed(
            field,
            f"{text!r} is neither a known model ({', '.join(KNOWN_MODELS)}) nor a checkpoint "
            f"directory under the model roots ({', '.join(map(str, roots))}; "
            "WRITING_RL_MODEL_ROOTS, WRITING_RL_RUNS_DIR)",
        )
    return text


def check_run_file(value: str | None, field: str) -> str | None:
    """``value`` if it is empty or a file path under the runs directory."""
    if not value:
        return value
    if "\x00" in value:
        raise PathNotAllowed(field, "contains a NUL character")
    runs = Path(os.path.realpath(settings.WRITING_RL_RUNS_DIR))
    real = Path(os.path.realpath(Path(value).expanduser()))
    if not _inside(real, [runs]) or real == runs:
        raise PathNotAllowed(
            field, f"{value!r} must be a file under the runs directory {runs} (WRITING_RL_RUNS_DIR)"
        )
    return value


def check_train_config(config: Any) -> None:
    """The policy, a local judge's model and the judge cache of a ``TrainConfig``."""
    check_model(config.policy, "policy")
    judge = config.judge
    if getattr(judge, "kind", "") == "local" and judge.model:
        check_model(judge.model, "judge_model")
    check_run_file(getattr(judge, "cache_path", None), "judge_cache_path")
