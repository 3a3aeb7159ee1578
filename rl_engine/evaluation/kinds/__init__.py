"""The judging of each benchmark kind, one module per kind, and the table that picks one.

Each module has ``async judge(pairs, evaluators, settings, tracker)`` returning per-response
results (in the order of ``pairs``) and the kind's aggregates.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rl_engine.evaluation.core import KINDS, EvalSettings, Evaluators, ItemResult, Pairs, Tracker
from rl_engine.evaluation.kinds import (
    creative,
    longbench_v2,
    longbench_write,
    pairwise,
    writingbench,
)

KindJudge = Callable[
    [Pairs, Evaluators, EvalSettings, Tracker], Awaitable[tuple[list[ItemResult], dict[str, Any]]]
]

JUDGES: dict[str, KindJudge] = {
    "writingbench": writingbench.judge,
    "longbench_write": longbench_write.judge,
    "creative": creative.judge,
    "longbench_v2": longbench_v2.judge,
    "pairwise": pairwise.judge,
}
assert tuple(JUDGES) == KINDS, "every benchmark kind needs its judging module"

__all__ = ["JUDGES", "KindJudge"]
