"""Test doubles that behave like the real services (a local OpenAI-compatible server)."""

from rl_engine.testing.endpoints import registry_for, transport_to
from rl_engine.testing.openai_server import (
    ChatCall,
    FakeOpenAIServer,
    Fault,
    ServerProcess,
    ServerStats,
    VerdictPolicy,
    default_policy,
    fixed_policy,
    spawn_server_process,
)

__all__ = [
    "ChatCall",
    "FakeOpenAIServer",
    "Fault",
    "ServerProcess",
    "ServerStats",
    "VerdictPolicy",
    "default_policy",
    "fixed_policy",
    "registry_for",
    "spawn_server_process",
    "transport_to",
]
