"""Endpoints for tests: a registry declaring a (fake) server, and a transport straight to it."""

from __future__ import annotations

from typing import Any

from rl_engine.judging.endpoints import Endpoint, EndpointRegistry
from rl_engine.judging.transport import ChatTransport, RetryPolicy

__all__ = ["registry_for", "transport_to"]


def registry_for(
    base_url: str,
    *,
    name: str = "fake",
    models: tuple[str, ...] = (),
    api_key_env: str = "",
    structured_output: str = "none",
    custom_hosts: tuple[str, ...] = (),
    **endpoint: Any,
) -> EndpointRegistry:
    """A registry declaring one OpenAI-compatible endpoint ``name`` at ``base_url``."""
    declared = Endpoint(
        name,
        kind="openai",
        base_url=base_url,
        models=models,
        api_key_env=api_key_env,
        structured_output=structured_output,
        **endpoint,
    )
    return EndpointRegistry.build([declared], custom_hosts=custom_hosts)


def transport_to(
    base_url: str,
    model: str = "fake",
    *,
    max_retries: int = 5,
    backoff_base_s: float = 0.5,
    backoff_cap_s: float = 30.0,
    **settings: Any,
) -> ChatTransport:
    """A transport to ``base_url`` with the retry policy spelled out as keywords."""
    retry = RetryPolicy(max_retries=max_retries, base_s=backoff_base_s, cap_s=backoff_cap_s)
    return ChatTransport(base_url, model, retry=retry, **settings)
