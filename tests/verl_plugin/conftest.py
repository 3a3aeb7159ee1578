"""Loading the verl reward hook the way verl does, and a judge that reads the responses."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from rl_engine.testing.openai_server import ChatCall, FakeOpenAIServer
from rl_engine.training.verl_backend import HOOK_SOURCE, judge_prompts

_SECTION = re.compile(
    r"\[The start of assistant (A|B)'s response\]\n(.*?)\n\[The end of assistant \1's response\]",
    re.S,
)


def load_hook() -> ModuleType:
    """Like verl's ``load_extern_object``: a spec from the file path, executed without being
    registered in ``sys.modules``."""
    spec = importlib.util.spec_from_file_location("custom_module_test", HOOK_SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reading_judge(call: ChatCall) -> str:
    """The response containing GOOD wins; GARBLE anywhere gives no verdict; else a tie."""
    sections = dict(_SECTION.findall(call.user))
    if "GARBLE" in call.user:
        return "Both are Adequate, hard to say."
    for side in ("A", "B"):
        if "GOOD" in sections.get(side, ""):
            return f"Assistant {side} is better. [[{side}]]"
    return "Equally good. [[C]]"


@pytest.fixture
def judge_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(latency_s=0.0, capacity=64, policy=reading_judge) as server:
        yield server


@pytest.fixture
def prompts_file(tmp_path: Path) -> str:
    path = tmp_path / "judge_prompts.json"
    path.write_text(json.dumps(judge_prompts()))
    return str(path)
