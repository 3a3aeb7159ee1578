"""Text measures shared by judges, rewards and evaluation.

Word counting follows LongBench-Write (THUDM/LongWriter): every CJK unified ideograph counts as
one word, and every run of ASCII letters between word boundaries (``\\b[a-zA-Z]+\\b``) counts as
one English word. Digits, punctuation and other scripts do not count. Keeping the exact
definition matters: the length score S_l is only comparable with published numbers when the
words are counted the same way.
"""

from __future__ import annotations

import re

__all__ = [
    "count_words",
    "length_score",
    "repetition_rate",
    "required_length",
]

_CJK = re.compile(r"[\u4e00-\u9fff]")
_ENGLISH_WORD = re.compile(r"\b[a-zA-Z]+\b")
# Tokens for n-gram repetition: CJK characters one by one, other words whole.
_TOKEN = re.compile(r"[\u4e00-\u9fff]|[^\W\u4e00-\u9fff]+")


def count_words(text: str) -> int:
    """Number of words in ``text`` by LongBench-Write's definition.

    CJK characters count one each; English words are ``\\b[a-zA-Z]+\\b`` matches, so an
    apostrophe splits a word ("don't" is two) and words glued to digits ("GPT4") do not count.

    >>> count_words("The quick brown fox.")
    4
    >>> count_words("我爱写作")
    4
    >>> count_words("我用 Python 写作, don't 2024!")
    7
    >>> count_words("")
    0
    """
    return len(_CJK.findall(text)) + len(_ENGLISH_WORD.findall(text))


def length_score(required: int, produced: int) -> float:
    """LongBench-Write's length score S_l in [0, 100].

    With x the required and y the produced number of words:
    ``100 * max(0, 1 - (y/x - 1)/3)`` when y > x, else ``100 * max(0, 1 - (x/y - 1)/2)``;
    nothing produced scores 0. Overshooting by 4x or undershooting to a third scores 0.

    >>> length_score(800, 800)
    100.0
    >>> length_score(800, 0)
    0.0
    >>> length_score(100, 400), length_score(300, 100)
    (0.0, 0.0)
    >>> length_score(100, 250)
    50.0
    >>> length_score(200, 100)
    50.0
    """
    if required <= 0:
        raise ValueError(f"required length must be a positive number of words, got {required}")
    if produced < 0:
        raise ValueError(f"produced length cannot be negative, got {produced}")
    if produced == 0:
        return 0.0
    x, y = float(required), float(produced)
    if y > x:
        return 100.0 * max(0.0, 1.0 - (y / x - 1.0) / 3.0)
    return 100.0 * max(0.0, 1.0 - (x / y - 1.0) / 2.0)


def repetition_rate(text: str, n: int = 4) -> float:
    """Share of word n-grams in ``text`` that repeat an earlier n-gram, in [0, 1].

    Tokens are CJK characters and other words, lower-cased; a text with fewer than ``n``
    tokens has no n-grams and a rate of 0.

    >>> repetition_rate("a b c d a b c d", n=4)
    0.2
    >>> repetition_rate("one two three four five", n=4)
    0.0
    >>> repetition_rate("好好好好好", n=2)
    0.75
    >>> repetition_rate("", n=4)
    0.0
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    tokens = [token.lower() for token in _TOKEN.findall(text)]
    total = len(tokens) - n + 1
    if total <= 0:
        return 0.0
    distinct = {tuple(tokens[i : i + n]) for i in range(total)}
    return (total - len(distinct)) / total


_CN_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}  # fmt: skip
_CN_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}
_NUMBER = r"\d+(?:,\d{3})*(?:\.\d+)?\s*[kK]?"
_CN_NUMBER = r"[零一二两三四五六七八九十百千万]+"
_RANGE_SEP = r"\s*(?:-|–|—|~|to|到|至)\s*"
_ENGLISH_PATTERNS = [
    re.compile(rf"({_NUMBER})(?:{_RANGE_SEP}({_NUMBER}))?\s*(?:-\s*)?words?\b", re.I),
    re.compile(rf"\bwords?\s*(?:count|limit)?\s*[:：]\s*({_NUMBER})", re.I),
]
_CHINESE_PATTERN = re.compile(
    rf"({_NUMBER}|{_CN_NUMBER})(?:{_RANGE_SEP}({_NUMBER}|{_CN_NUMBER}))?\s*(?:个)?(?:汉)?字"
)


def _parse_number(token: str) -> int | None:
    token = token.strip().replace(",", "").replace(" ", "")
    if not token:
        return None
    if token[-1] in "kK":
        return round(float(token[:-1]) * 1000)
    if token[0].isdigit():
        return round(float(token))
    return _parse_chinese_number(token)


def _parse_chinese_number(token: str) -> int | None:
    """Small Chinese numerals as used in length requests: 五百, 两千, 一万, 三千五百, 十."""
    total, section, digit = 0, 0, None
    for char in token:
        if char in _CN_DIGITS:
            digit = _CN_DIGITS[char]
        elif char in _CN_UNITS:
            unit = _CN_UNITS[char]
            if unit == 10000:
                total += (section + (digit or 0)) * unit
                section = 0
            else:
                section += (1 if digit is None else digit) * unit
            digit = None
        else:
            return None
    value = total + section + (digit or 0)
    return value or None


def required_length(instruction: str) -> int | None:
    """The number of words an instruction asks for, or None when it states none.

    Understands "about 800 words", "a 5000-word story", "at least 1,500 words", "2k words",
    "不少于2000字", "五千字左右"; a range ("800-1000 words") gives its midpoint. When several
    lengths appear the first one wins.

    >>> required_length("Write a story in about 800 words.")
    800
    >>> required_length("Write a 5000-word essay on rivers.")
    5000
    >>> required_length("Describe Rome in at least 1,500 words")
    1500
    >>> required_length("请写一篇不少于2000字的文章")
    2000
    >>> required_length("写一篇五千字左右的小说")
    5000
    >>> required_length("Write 800-1000 words about tea")
    900
    >>> required_length("Write a poem about the sea.") is None
    True
    """
    candidates: list[tuple[int, int]] = []
    for pattern in [*_ENGLISH_PATTERNS, _CHINESE_PATTERN]:
        for match in pattern.finditer(instruction):
            low = _parse_number(match.group(1))
            upper = match.group(2) if pattern.groups >= 2 else None
            high = _parse_number(upper) if upper else None
            if low is None or low <= 0:
                continue
            value = (low + high) // 2 if high is not None and high > low else low
            candidates.append((match.start(), value))
    if not candidates:
        return None
    return min(candidates)[1]
