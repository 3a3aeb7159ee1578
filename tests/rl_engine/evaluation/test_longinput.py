"""LongBench v2-style long-input multiple choice: loading, prompts, truncation, scoring."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from rl_engine.evaluation import (
    LongInputItem,
    accuracy,
    build_prompt,
    extract_choice,
    load_longinput_jsonl,
)

CONTEXT = " ".join(f"w{i}" for i in range(100))


def item(**changes) -> LongInputItem:
    fields = {
        "item_id": "q1",
        "context": CONTEXT,
        "question": "Which word comes first?",
        "choices": ("w0", "w1", "w2", "w3"),
        "answer": "A",
        "difficulty": "easy",
        "length": "short",
    }
    return LongInputItem(**{**fields, **changes})


class WordTokenizer:
    """One token per whitespace-separated word (ids index a growing vocabulary)."""

    def __init__(self) -> None:
        self.vocab: list[str] = []

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        ids = []
        for word in text.split():
            if word not in self.vocab:
                self.vocab.append(word)
            ids.append(self.vocab.index(word))
        return ids

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return " ".join(self.vocab[i] for i in ids)


def words(text: str) -> int:
    return len(text.split())


def test_it_loads_longbench_v2_rows(tmp_path) -> None:
    row = {
        "_id": "66f3",
        "domain": "Single-Document QA",
        "difficulty": "hard",
        "length": "long",
        "question": "Who?",
        "choice_A": "a",
        "choice_B": "b",
        "choice_C": "c",
        "choice_D": "d",
        "answer": "C",
        "context": "text",
    }
    path = tmp_path / "v2.jsonl"
    path.write_text(json.dumps(row) + "\n\n" + json.dumps({**row, "_id": "2"}) + "\n")
    items = load_longinput_jsonl(path)
    assert [i.item_id for i in items] == ["66f3", "2"]
    assert items[0].choices == ("a", "b", "c", "d") and items[0].answer == "C"
    assert items[0].difficulty == "hard" and items[0].domain == "Single-Document QA"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"choice_B": None}, r":2: field 'choice_B' is missing or not text"),
        ({"answer": "E"}, r":2: item '1': answer must be A-D, got 'E'"),
        ({"difficulty": "medium"}, r":2: item '1': difficulty must be easy or hard"),
        ({"length": "huge"}, r":2: item '1': length must be short, medium or long"),
        ({"context": 5}, r":2: field 'context' is missing or not text"),
    ],
)
def test_it_names_file_line_and_field_of_a_bad_row(tmp_path, change, message) -> None:
    good = {
        "_id": "0",
        "question": "?",
        "context": "c",
        "answer": "A",
        "difficulty": "easy",
        "length": "short",
        **{f"choice_{letter}": letter for letter in "ABCD"},
    }
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "_id": "1", **change}) + "\n")
    with pytest.raises(ValueError, match=message) as error:
        load_longinput_jsonl(path)
    assert str(path) in str(error.value)


def test_it_keeps_a_context_that_fits() -> None:
    prompt = build_prompt(item(), max_tokens=1000, count_tokens=words)
    assert not prompt.truncated and prompt.dropped_tokens == 0
    assert CONTEXT in prompt.prompt and "(D) w3" in prompt.prompt


def test_it_cuts_the_middle_of_a_long_context_on_tokens() -> None:
    frame = words(build_prompt(item(context=""), 1000, count_tokens=words).prompt)
    prompt = build_prompt(item(), max_tokens=frame + 40, tokenizer=WordTokenizer())
    assert prompt.truncated
    assert (prompt.context_tokens, prompt.kept_tokens, prompt.dropped_tokens) == (100, 40, 60)
    assert words(prompt.prompt) <= frame + 40
    kept = document(prompt.prompt)
    # Half the budget from the start, half from the end; the middle 60 words are gone.
    assert kept == [f"w{i}" for i in range(20)] + [f"w{i}" for i in range(80, 100)]


def test_it_cuts_the_middle_of_a_long_context_on_characters_between_words() -> None:
    frame = words(build_prompt(item(context=""), 1000, count_tokens=words).prompt)
    prompt = build_prompt(item(), max_tokens=frame + 40, count_tokens=words)
    assert prompt.truncated and prompt.context_tokens == 100
    kept = document(prompt.prompt)
    assert prompt.kept_tokens == len(kept) and 36 <= len(kept) <= 40
    assert words(prompt.prompt) <= frame + 40
    assert kept[0] == "w0" and kept[-1] == "w99" and "w50" not in kept
    assert set(kept) <= set(CONTEXT.split()), "a word was cut in two"


def document(prompt: str) -> list[str]:
    return prompt.split("<document>\n")[1].split("\n</document>")[0].split()


def test_it_refuses_a_window_smaller_than_the_question() -> None:
    with pytest.raises(ValueError, match="item 'q1': the prompt without its context already"):
        build_prompt(item(), max_tokens=5, count_tokens=words)
    with pytest.raises(ValueError, match="exactly one of tokenizer or count_tokens"):
        build_prompt(item(), max_tokens=5)


@pytest.mark.parametrize(
    ("output", "letter"),
    [
        ("The correct answer is (B)", "B"),
        ("Let me think.\nThe correct answer is (d).", "D"),
        ("**The correct answer is (A)**", "A"),
        ("The correct answer is: C", "C"),
        ("Format: The correct answer is (X). ... The correct answer is (B)", "B"),
        ("The answer is B", None),  # not the agreed phrase
        ("B", None),
        ("The correct answer is (E)", None),
        ("The correct answer is Albert", None),  # a word starting with A is not a choice
        ("", None),
        (None, None),
    ],
)
def test_the_lenient_extraction_reads_only_a_stated_choice(output, letter) -> None:
    assert extract_choice(output, "lenient") == letter


def test_it_counts_accuracy_overall_and_by_class() -> None:
    items = [
        item(item_id="1", answer="A", difficulty="easy", length="short"),
        item(item_id="2", answer="B", difficulty="easy", length="long"),
        item(item_id="3", answer="C", difficulty="hard", length="long"),
        item(item_id="4", answer="D", difficulty="hard", length="medium"),
    ]
    result = accuracy(items, {"1": "A", "2": "B", "3": None, "4": "A"})
    assert (result.correct, result.total, result.invalid, result.overall) == (2, 4, 1, 0.5)
    assert result.by_difficulty == {"easy": (2, 2), "hard": (0, 2)}
    assert result.by_length == {"long": (1, 2), "medium": (0, 1), "short": (1, 1)}
    assert result.rate("length", "long") == 0.5 and result.rate("difficulty", "medium") is None
    with pytest.raises(ValueError, match="no prediction for item '4'"):
        accuracy(items, {"1": "A", "2": "B", "3": None})
