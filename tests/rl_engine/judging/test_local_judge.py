"""LocalJudge on a tiny random-init Llama with the SmolLM2 tokenizer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import torch

from rl_engine.judging import LocalJudge, PairRequest, Verdict
from rl_engine.models import tiny_model

PAIRS = [
    PairRequest("Write a haiku.", "Leaves fall softly down", "Autumn wind, cold rain, a crow"),
    PairRequest("Describe the sea in 20 words.", "Blue.", "Vast grey water under low clouds."),
    PairRequest(
        "Tell a story.",
        "Once upon a time a fox found a key in the snow and followed its tracks home.",
        "No.",
        criteria="Has a beginning, a middle and an end.",
    ),
    PairRequest("Say hi.", "hi", "hello there, friend"),
    PairRequest("List three fruits.", "apple, pear, plum", "banana"),
]


@pytest.fixture(scope="module")
def model_and_tokenizer() -> tuple[Any, Any]:
    return tiny_model(seed=0)


def test_it_reads_the_letter_probabilities_of_the_next_token(
    model_and_tokenizer: tuple[Any, Any],
) -> None:
    model, tokenizer = model_and_tokenizer
    judge = LocalJudge(model, tokenizer, batch_size=1)
    (judgment,) = judge.compare_sync(PAIRS[:1])
    # The same number computed by hand: full softmax of the last position's logits.
    ids = tokenizer(judge.prompt(PAIRS[0]), return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        logits = model(**ids).logits[0, -1].float()
    full = torch.softmax(logits, dim=-1)
    assert float(full.sum()) == pytest.approx(1.0, abs=1e-4)
    letter_ids = [tokenizer.encode(x, add_special_tokens=False)[0] for x in "ABC"]
    assert judgment.raw["p_A"] == pytest.approx(float(full[letter_ids[0]]), rel=1e-4)
    assert judgment.raw["p_C"] == pytest.approx(float(full[letter_ids[2]]), rel=1e-4)
    mass = judgment.raw["p_A"] + judgment.raw["p_B"] + judgment.raw["p_C"]
    assert 0.0 < mass <= 1.0
    assert judgment.raw["mass"] == pytest.approx(mass)


def test_batched_judgments_equal_one_by_one(model_and_tokenizer: tuple[Any, Any]) -> None:
    model, tokenizer = model_and_tokenizer
    one_by_one = LocalJudge(model, tokenizer, batch_size=1).compare_sync(PAIRS)
    batched = LocalJudge(model, tokenizer, batch_size=4).compare_sync(PAIRS)
    assert len(batched) == len(PAIRS)
    for single, batch in zip(one_by_one, batched, strict=True):
        for letter in ("p_A", "p_B", "p_C"):
            assert batch.raw[letter] == pytest.approx(single.raw[letter], rel=1e-3)
        assert batch.verdict is single.verdict
    assert tokenizer.padding_side == "left"  # whatever it was, the judge restores it


def test_async_compare_matches_sync(model_and_tokenizer: tuple[Any, Any]) -> None:
    model, tokenizer = model_and_tokenizer
    judge = LocalJudge(model, tokenizer, batch_size=8)
    via_async = asyncio.run(judge.compare(PAIRS[:2]))
    via_sync = judge.compare_sync(PAIRS[:2])
    for a, s in zip(via_async, via_sync, strict=True):
        assert a.verdict is s.verdict
        assert [a.raw[k] for k in ("p_A", "p_B", "p_C")] == pytest.approx(
            [s.raw[k] for k in ("p_A", "p_B", "p_C")], rel=1e-5
        )


def test_it_restores_the_tokenizers_padding_side(model_and_tokenizer: tuple[Any, Any]) -> None:
    model, tokenizer = model_and_tokenizer
    saved = tokenizer.padding_side
    tokenizer.padding_side = "right"
    try:
        LocalJudge(model, tokenizer, batch_size=2).compare_sync(PAIRS[:2])
        assert tokenizer.padding_side == "right"
    finally:
        tokenizer.padding_side = saved


@pytest.mark.parametrize(
    ("probabilities", "verdict"),
    [
        ((0.6, 0.2, 0.1), Verdict.A),
        ((0.1, 0.5, 0.2), Verdict.B),
        ((0.30, 0.34, 0.1), Verdict.TIE),  # |q_A - q_B| = 0.054 < margin 0.1
        ((0.3, 0.2, 0.4), Verdict.TIE),  # C is the most likely answer
        ((0.0, 0.0, 0.0), Verdict.INVALID),
    ],
)
def test_it_decides_by_the_documented_rule(
    model_and_tokenizer: tuple[Any, Any],
    probabilities: tuple[float, float, float],
    verdict: Verdict,
) -> None:
    model, tokenizer = model_and_tokenizer
    judge = LocalJudge(model, tokenizer, tie_margin=0.1)
    assert judge.decide(*probabilities)[0] is verdict


def test_min_mass_makes_an_off_format_model_invalid(model_and_tokenizer: tuple[Any, Any]) -> None:
    model, tokenizer = model_and_tokenizer
    # A random-init model spreads its probability over 49k tokens: it is not answering A/B/C.
    judge = LocalJudge(model, tokenizer, min_mass=0.5)
    (judgment,) = judge.compare_sync(PAIRS[:1])
    assert judgment.verdict is Verdict.INVALID
    assert judgment.error is not None and "min_mass 0.5" in judgment.error
