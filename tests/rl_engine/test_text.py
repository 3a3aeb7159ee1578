"""Word counting, length score, repetition and required-length parsing."""

from __future__ import annotations

import doctest

import pytest

import rl_engine.curriculum
import rl_engine.evaluation.longinput
import rl_engine.evaluation.metrics
import rl_engine.evaluation.stats
import rl_engine.evaluation.winrate
import rl_engine.selection
import rl_engine.text
from rl_engine.text import count_words, length_score, repetition_rate, required_length


@pytest.mark.parametrize(
    "module",
    [
        rl_engine.text,
        rl_engine.curriculum,
        rl_engine.selection,
        rl_engine.evaluation.metrics,
        rl_engine.evaluation.stats,
        rl_engine.evaluation.winrate,
        rl_engine.evaluation.longinput,
    ],
    ids=lambda module: module.__name__,
)
def test_it_keeps_its_docstring_examples_true(module) -> None:
    failures, tried = doctest.testmod(module)
    assert tried > 0 and failures == 0


def test_it_counts_words_like_longbench_write() -> None:
    # 4 CJK characters + 2 English words; the full-width punctuation counts nothing.
    assert count_words("你好，世界！Hello world") == 6
    # Kana, Hangul, digits and words glued to digits are not counted by that definition.
    assert count_words("こんにちは 안녕하세요 2024 GPT4") == 0
    assert count_words("It's a well-known fact.") == 6  # It, s, a, well, known, fact
    assert count_words("   \n\t ") == 0


@pytest.mark.parametrize(
    ("required", "produced", "expected"),
    [
        (1000, 1000, 100.0),  # exact
        (1000, 4000, 0.0),  # overshoot x4: 1 - (4 - 1)/3 = 0
        (1000, 5000, 0.0),  # clamped at 0
        (900, 300, 0.0),  # undershoot to a third: 1 - (3 - 1)/2 = 0
        (1000, 2000, 100 * (1 - 1 / 3)),  # overshoot x2
        (1000, 500, 50.0),  # undershoot x2: 1 - (2 - 1)/2
        (1000, 0, 0.0),  # no output
        (3, 1, 0.0),
    ],
)
def test_it_scores_length_by_hand(required, produced, expected) -> None:
    assert length_score(required, produced) == pytest.approx(expected)


def test_it_scores_an_empty_or_cjk_response_end_to_end() -> None:
    assert length_score(800, count_words("")) == 0.0
    assert length_score(10, count_words("春眠不觉晓处处闻啼鸟")) == 100.0


def test_it_refuses_impossible_lengths() -> None:
    with pytest.raises(ValueError, match="required length must be a positive"):
        length_score(0, 10)
    with pytest.raises(ValueError, match="produced length cannot be negative"):
        length_score(10, -1)


def test_it_measures_repetition() -> None:
    looping = "the cat sat down " * 10  # 40 tokens, 37 4-grams, only 4 distinct
    assert repetition_rate(looping) == pytest.approx(33 / 37)
    assert repetition_rate("The cat sat down. THE CAT SAT DOWN") == pytest.approx(1 / 5)
    with pytest.raises(ValueError, match="n must be at least 1"):
        repetition_rate("a b", n=0)


@pytest.mark.parametrize(
    ("instruction", "words"),
    [
        ("Write an essay of about 800 words on tea.", 800),
        ("Write a 10,000-word novella.", 10000),
        ("at least 1,500 words please", 1500),
        ("Write a 2k word report", 2000),
        ("Word count: 300", 300),
        ("请写一篇不少于2000字的文章", 2000),
        ("写一篇三千五百字的散文", 3500),
        ("写一篇两万字的小说", 20000),
        ("写一篇关于春天的作文，800到1000字", 900),
        ("Write 3 paragraphs about 2 cats", None),
        ("", None),
    ],
)
def test_it_reads_the_required_length_from_an_instruction(instruction, words) -> None:
    assert required_length(instruction) == words
