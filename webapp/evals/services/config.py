"""Evaluation settings and judge specs, checked before anything is stored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields as dataclass_fields
from typing import Any

from django.conf import settings as django_settings

from rl_engine.evaluation.runner import EvalSettings
from rl_engine.judging.types import JudgeSpec


class EvalConfigError(ValueError):
    """The evaluation cannot be created as asked; the message says what to change."""


def default_judge() -> JudgeSpec:
    """The studio's default judge, from settings (``WRITING_RL_JUDGE_*``)."""
    kind = django_settings.WRITING_RL_JUDGE_KIND
    return JudgeSpec(
        kind=kind,
        model=django_settings.WRITING_RL_JUDGE_MODEL,
        base_url=django_settings.WRITING_RL_JUDGE_BASE_URL,
        api_key_env=django_settings.WRITING_RL_JUDGE_API_KEY_ENV,
    )


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
        return JudgeSpec.from_dict(values)
    except (TypeError, ValueError) as error:
        raise EvalConfigError(f"judge: {error}") from error
