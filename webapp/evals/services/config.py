"""Evaluation settings and judge specs, checked before anything is stored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields as dataclass_fields
from typing import Any

from rl_engine.evaluation.runner import EvalSettings
from rl_engine.judging.endpoints import default_registry
from rl_engine.judging.types import JudgeSpec
from webapp.studio.paths import ConfigRefused, check_model, checked_judge


class EvalConfigError(ValueError):
    """The evaluation cannot be created as asked; the message says what to change."""


def default_judge() -> JudgeSpec:
    """The deployment's default judge: ``default_judge`` in ``WRITING_RL_ENDPOINTS``, or the
    endpoint the older ``WRITING_RL_JUDGE_KIND/BASE_URL/MODEL`` declare."""
    registry = default_registry()
    return JudgeSpec(endpoint=registry.default_judge, model=registry.default_model)


def build_settings(benchmark: str, values: Mapping[str, Any] | None) -> EvalSettings:
    known = {f.name for f in dataclass_fields(EvalSettings)} - {"kind"}
    payload = dict(values or {})
    payload.pop("kind", None)
    unknown = sorted(set(payload) - known)
    if unknown:
        raise EvalConfigError(f"unknown evaluation setting(s): {', '.join(unknown)}")
    try:
        return EvalSettings(kind=benchmark, **payload)
    except (TypeError, ValueError) as error:
        raise EvalConfigError(str(error)) from error


def build_judge(values: Mapping[str, Any] | JudgeSpec | None) -> JudgeSpec:
    if values is None:
        return default_judge()
    if isinstance(values, JudgeSpec):
        return values
    try:
        # A declared endpoint and one of its models, a local judge under the model roots, a
        # cache under the runs directory: checked now (by the form, and again by the worker).
        return checked_judge(values)
    except ConfigRefused as error:
        raise EvalConfigError(str(error)) from None


def check_system_model(eval_run: Any) -> str:
    """The model an evaluation's system loads (its checkpoint's directory or its base model),
    checked against the model roots now; EvalConfigError otherwise."""
    if eval_run.system_kind == "checkpoint":
        if eval_run.checkpoint is None:
            raise EvalConfigError("checkpoint: the evaluated checkpoint is gone")
        value, field = eval_run.checkpoint.path, "checkpoint"
    else:
        value, field = eval_run.base_model, "base_model"
    try:
        return check_model(value, field)
    except ConfigRefused as error:
        raise EvalConfigError(str(error)) from None
