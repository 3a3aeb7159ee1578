"""What a spec a researcher wrote may reach on the workers: files and model endpoints.

A policy (or a local judge or writer model) is a registered name (``smollm2-135m-instruct``)
or a checkpoint directory under one of ``WRITING_RL_MODEL_ROOTS`` or under the runs directory
(``WRITING_RL_RUNS_DIR``: later runs start from earlier runs' checkpoints). A judge cache file
lies under the runs directory. Anything else (``/etc``, another user's home, ``..`` tricks) is
refused with a message naming the field; the web app checks when a run is created and the
worker checks again when it starts, so a config edited in the database gets no further.

:func:`resolve_checked` (and :func:`checked_judge` / :func:`checked_writer` for a stored
dict) is the one checked resolver every background job passes a stored endpoint spec through
before it builds a transport or loads a model: the endpoint is looked up by NAME in the
deployment's registry at that moment (an unknown name, a model the endpoint does not list, a
base URL or key variable smuggled into the stored spec are refused), a local model must pass
:func:`check_model` and a judge cache :func:`check_run_file`. Jobs call it for everything
they will use before their first write, so a refused job fails with the reason
(:class:`ConfigRefused`) and has written nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings

from rl_engine.judging.endpoints import (
    EndpointRegistry,
    EndpointSpec,
    ResolvedEndpoint,
    default_registry,
)
from rl_engine.judging.types import JudgeSpec
from rl_engine.models import KNOWN_MODELS
from rl_engine.writers import WriterSpec

Spec = TypeVar("Spec", bound=EndpointSpec)


class ConfigRefused(ValueError):
    """``field`` of a spec may not be used as it stands (at form time or at use time)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PathNotAllowed(ConfigRefused):
    """``field`` names a file outside the configured roots."""


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


def resolve_checked(
    spec: EndpointSpec, field: str, registry: EndpointRegistry | None = None
) -> ResolvedEndpoint:
    """What ``spec`` may call, resolved by its endpoint's name in the deployment's registry
    now, with a local model checked against the model roots and a judge cache against the
    runs directory; :class:`ConfigRefused` (naming ``field``) otherwise."""
    try:
        resolved = (registry or default_registry()).resolve(spec)
    except ValueError as error:
        raise ConfigRefused(field, str(error)) from None
    if resolved.kind == "local":
        check_model(resolved.model, f"{field}_model")
    check_run_file(getattr(spec, "cache_path", None), f"{field}_cache_path")
    return resolved


def _checked(
    spec_cls: type[Spec], payload: Any, field: str, registry: EndpointRegistry | None
) -> Spec:
    if isinstance(payload, spec_cls):
        spec = payload
    else:
        if not isinstance(payload, dict):
            raise ConfigRefused(field, f"a stored spec must be an object, got {payload!r:.80}")
        try:
            spec = spec_cls.from_dict(payload, registry)  # type: ignore[attr-defined]
        except (TypeError, ValueError) as error:
            raise ConfigRefused(field, str(error)) from None
    resolve_checked(spec, field, registry)
    return spec


def checked_judge(
    payload: Any, field: str = "judge", registry: EndpointRegistry | None = None
) -> JudgeSpec:
    """A stored judge or scorer spec (a dict, or a JudgeSpec) that may be used now."""
    return _checked(JudgeSpec, payload, field, registry)


def checked_writer(
    payload: Any, field: str = "writer", registry: EndpointRegistry | None = None
) -> WriterSpec:
    """A stored writer spec (a dict, or a WriterSpec) that may be used now."""
    return _checked(WriterSpec, payload, field, registry)


def check_train_config(config: Any) -> None:
    """The policy, the judge (its endpoint, a local judge's model, its cache) and the folder
    ``report_to`` writes into (``logging_dir``, under the runs directory) of a
    ``TrainConfig``."""
    check_model(config.policy, "policy")
    check_run_file(getattr(config, "logging_dir", None), "logging_dir")
    resolve_checked(config.judge, "judge")
