"""Long-input reasoning, LongBench v2-style: multiple choice over long contexts.

An item is a long context, a question and four choices A-D with one answer, tagged with a
difficulty (easy/hard) and a context length class (short/medium/long). The prompt keeps the
context within the model's window by cutting tokens out of its middle (the start and the end of
a document carry the most signal), and records what was cut. The answer must be stated as
"The correct answer is (X)"; it is read exactly as LongBench v2's ``pred.py`` reads it (see
:func:`extract_choice`), and anything it does not read is invalid and scores as wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "DIFFICULTIES",
    "EXTRACTIONS",
    "EXTRACTION_LABELS",
    "LENGTHS",
    "LongInputAccuracy",
    "LongInputItem",
    "LongInputPrompt",
    "accuracy",
    "build_prompt",
    "extract_choice",
    "load_longinput_jsonl",
]

LETTERS = ("A", "B", "C", "D")
DIFFICULTIES = ("easy", "hard")
LENGTHS = ("short", "medium", "long")

PROMPT_TEMPLATE = """Read the document below, then answer the multiple-choice question about it.

<document>
{context}
</document>

Question: {question}
(A) {A}
(B) {B}
(C) {C}
(D) {D}

Think it through if you need to, then end your answer with exactly one line of the form \
"The correct answer is (X)", where X is A, B, C or D."""


class Tokenizer(Protocol):
    """The part of a Hugging Face tokenizer used here."""

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = ...) -> str: ...


@dataclass(frozen=True)
class LongInputItem:
    """One multiple-choice question over a long context."""

    item_id: str
    context: str
    question: str
    choices: tuple[str, str, str, str]
    answer: str
    difficulty: str
    length: str
    domain: str = ""

    def __post_init__(self) -> None:
        if len(self.choices) != 4:
            raise ValueError(f"item {self.item_id!r}: needs four choices, got {len(self.choices)}")
        if self.answer not in LETTERS:
            raise ValueError(f"item {self.item_id!r}: answer must be A-D, got {self.answer!r}")
        if self.difficulty not in DIFFICULTIES:
            raise ValueError(
                f"item {self.item_id!r}: difficulty must be easy or hard, got {self.difficulty!r}"
            )
        if self.length not in LENGTHS:
            raise ValueError(
                f"item {self.item_id!r}: length must be short, medium or long, got {self.length!r}"
            )

    @classmethod
    def from_dict(cls, row: Mapping[str, Any], where: str = "") -> LongInputItem:
        """From a LongBench v2 row (``_id``, ``choice_A``..``choice_D``) or our own shape
        (``item_id``, ``choices`` as a list or an A-D mapping). Errors name ``where`` and the field.
        """
        prefix = f"{where}: " if where else ""
        item_id = row.get("item_id", row.get("_id", row.get("id")))
        if item_id is None:
            raise ValueError(f"{prefix}missing field 'item_id' (or '_id')")
        if "choices" in row:
            raw = row["choices"]
            choices = [raw.get(letter) for letter in LETTERS] if isinstance(raw, Mapping) else raw
        else:
            choices = [row.get(f"choice_{letter}") for letter in LETTERS]
        for field in ("context", "question", "answer", "difficulty", "length"):
            if not isinstance(row.get(field), str):
                raise ValueError(f"{prefix}field {field!r} is missing or not text")
        if not isinstance(choices, Sequence) or isinstance(choices, str) or len(choices) != 4:
            raise ValueError(f"{prefix}field 'choices' must hold four choices A-D")
        texts: list[str] = []
        for letter, choice in zip(LETTERS, choices, strict=True):
            if not isinstance(choice, str):
                raise ValueError(f"{prefix}field 'choice_{letter}' is missing or not text")
            texts.append(choice)
        try:
            return cls(
                item_id=str(item_id),
                context=row["context"],
                question=row["question"],
                choices=(texts[0], texts[1], texts[2], texts[3]),
                answer=row["answer"].strip().upper(),
                difficulty=row["difficulty"].strip().lower(),
                length=row["length"].strip().lower(),
                domain=str(row.get("domain", "")),
            )
        except ValueError as error:
            raise ValueError(f"{prefix}{error}") from None


def load_longinput_jsonl(path: str | Path) -> list[LongInputItem]:
    """Items from a JSONL file, one per line; an error names the file, line and field."""
    items: list[LongInputItem] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{where}: not valid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{where}: expected a JSON object")
            items.append(LongInputItem.from_dict(row, where))
    return items


@dataclass(frozen=True)
class LongInputPrompt:
    """A built prompt and what truncation did to the context (token counts of the context)."""

    item_id: str
    prompt: str
    context_tokens: int
    kept_tokens: int

    @property
    def truncated(self) -> bool:
        return self.kept_tokens < self.context_tokens

    @property
    def dropped_tokens(self) -> int:
        return self.context_tokens - self.kept_tokens


def _truncate_with_tokenizer(
    context: str, tokenizer: Tokenizer, budget: int
) -> tuple[str, int, int]:
    ids = tokenizer.encode(context, add_special_tokens=False)
    if len(ids) <= budget:
        return context, len(ids), len(ids)
    head = budget // 2
    tail = budget - head
    kept = list(ids[:head]) + (list(ids[-tail:]) if tail else [])
    text = tokenizer.decode(kept, skip_special_tokens=True)
    return text, len(ids), len(kept)


def _truncate_with_counter(
    context: str, count_tokens: Callable[[str], int], budget: int
) -> tuple[str, int, int]:
    total = count_tokens(context)
    if total <= budget:
        return context, total, total

    def cut(chars: int) -> str:
        # Split the characters evenly, then back off to whitespace so no word is cut in two.
        head = chars // 2
        start = len(context) - (chars - head)
        if head < len(context) and not context[head].isspace():
            space = context.rfind(" ", max(0, head - 64), head)
            head = space if space >= 0 else head
        if 0 < start < len(context) and not context[start - 1].isspace():
            space = context.find(" ", start, start + 64)
            start = space if space >= 0 else start
        return context[:head] + context[max(start, head) :]

    # The largest number of characters, split evenly between start and end, that fits.
    low, high = 0, len(context)
    while low < high:
        middle = (low + high + 1) // 2
        if count_tokens(cut(middle)) <= budget:
            low = middle
        else:
            high = middle - 1
    text = cut(low)
    return text, total, count_tokens(text)


def build_prompt(
    item: LongInputItem,
    max_tokens: int,
    tokenizer: Tokenizer | None = None,
    count_tokens: Callable[[str], int] | None = None,
    template: str = PROMPT_TEMPLATE,
) -> LongInputPrompt:
    """The prompt for ``item``, with the context cut from the middle so the whole prompt fits in
    ``max_tokens`` (leave room for the answer when choosing it).

    Pass a tokenizer (``encode``/``decode``: the cut is made on tokens, as LongBench v2 does) or
    a ``count_tokens`` callable (the cut is made on characters, as many as fit). Token counts
    of the template are measured without the context; the budget must leave room for some.
    """
    if (tokenizer is None) == (count_tokens is None):
        raise ValueError("pass exactly one of tokenizer or count_tokens")
    fields = {"question": item.question, **dict(zip(LETTERS, item.choices, strict=True))}
    frame = template.format(context="", **fields)
    if tokenizer is not None:
        frame_tokens = len(tokenizer.encode(frame, add_special_tokens=False))
    else:
        assert count_tokens is not None
        frame_tokens = count_tokens(frame)
    budget = max_tokens - frame_tokens
    if budget <= 0:
        raise ValueError(
            f"item {item.item_id!r}: the prompt without its context already takes {frame_tokens} "
            f"tokens, more than max_tokens={max_tokens}"
        )
    if tokenizer is not None:
        context, total, kept = _truncate_with_tokenizer(item.context, tokenizer, budget)
    else:
        assert count_tokens is not None
        context, total, kept = _truncate_with_counter(item.context, count_tokens, budget)
    return LongInputPrompt(item.item_id, template.format(context=context, **fields), total, kept)


# LongBench v2's own scorer (THUDM/LongBench, ``pred.py``, ``extract_answer``): asterisks
# removed, then the first "The correct answer is (X)", else the first "The correct answer is X";
# case-sensitive, nothing else accepted. "is Absolutely (B)" reads as A there, and so it does here.
_OFFICIAL = (
    re.compile(r"The correct answer is \(([A-D])\)"),
    re.compile(r"The correct answer is ([A-D])"),
)
# Our lenient variant: any case, an optional colon, the letter not the start of a word, and
# the last statement wins. Not the official scorer; runs that use it say so.
_LENIENT = (
    re.compile(r"the correct answer is\s*:?\s*\(([A-D])\)", re.I),
    re.compile(r"the correct answer is\s*:?\s*([A-D])(?![A-Za-z])", re.I),
)

EXTRACTIONS = ("official", "lenient")
EXTRACTION_LABELS = {
    "official": "official extraction (LongBench v2 pred.py)",
    "lenient": "lenient extraction (not the official scorer)",
}


def extract_choice(output: str | None, extraction: str = "official") -> str | None:
    """The chosen letter A-D, or None (invalid, scored as wrong).

    ``extraction="official"`` (the default) is LongBench v2's ``extract_answer``: after
    removing ``*``, the first match of ``The correct answer is (X)``, else the first match of
    ``The correct answer is X``, both case-sensitive. ``"lenient"`` is this project's variant:
    case-insensitive, ``is: (X)`` accepted, a letter that starts a word ("Absolutely")
    rejected, and the last statement counts. Scores from the two are not comparable.

    >>> extract_choice("Reasoning... The correct answer is (B).")
    'B'
    >>> extract_choice("**The correct answer is C**")
    'C'
    >>> extract_choice("The correct answer is (A). On reflection, the correct answer is (B).")
    'A'
    >>> lower = "the correct answer is (b)"
    >>> extract_choice(lower), extract_choice(lower, "lenient")
    (None, 'B')
    """
    if extraction not in EXTRACTIONS:
        raise ValueError(f"extraction must be one of {', '.join(EXTRACTIONS)}; got {extraction!r}")
    if not output:
        return None
    text = output.replace("*", "")
    if extraction == "official":
        for pattern in _OFFICIAL:
            match = pattern.search(text)
            if match:
                return match.group(1)
        return None
    for pattern in _LENIENT:
        matches = pattern.findall(text)
        if matches:
            return str(matches[-1]).upper()
    return None


@dataclass(frozen=True)
class LongInputAccuracy:
    """Accuracy overall and per difficulty and length class; invalid answers count as wrong.

    Each breakdown maps a class to (correct, total); classes without items are absent.
    """

    correct: int
    total: int
    invalid: int
    by_difficulty: dict[str, tuple[int, int]]
    by_length: dict[str, tuple[int, int]]

    @property
    def overall(self) -> float | None:
        return self.correct / self.total if self.total else None

    def rate(self, breakdown: str, name: str) -> float | None:
        """Accuracy of one class, e.g. ``rate("difficulty", "hard")``."""
        table = self.by_difficulty if breakdown == "difficulty" else self.by_length
        correct, total = table.get(name, (0, 0))
        return correct / total if total else None


def accuracy(
    items: Iterable[LongInputItem], predictions: Mapping[str, str | None]
) -> LongInputAccuracy:
    """Score predicted letters (None = invalid) against the items' answers.

    Every item needs an entry in ``predictions`` (a missing one is an error, not a zero).
    """
    correct = total = invalid = 0
    by_difficulty: dict[str, list[int]] = {}
    by_length: dict[str, list[int]] = {}
    for item in items:
        if item.item_id not in predictions:
            raise ValueError(f"no prediction for item {item.item_id!r}")
        predicted = predictions[item.item_id]
        right = int(predicted == item.answer)
        invalid += predicted is None
        correct += right
        total += 1
        for table, key in ((by_difficulty, item.difficulty), (by_length, item.length)):
            cell = table.setdefault(key, [0, 0])
            cell[0] += right
            cell[1] += 1
    return LongInputAccuracy(
        correct=correct,
        total=total,
        invalid=invalid,
        by_difficulty={k: (v[0], v[1]) for k, v in sorted(by_difficulty.items())},
        by_length={k: (v[0], v[1]) for k, v in sorted(by_length.items())},
    )
