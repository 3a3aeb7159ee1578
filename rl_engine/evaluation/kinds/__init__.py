"""The judging of each benchmark kind, one module per kind, and the table that picks one.

Each module has ``async judge(pairs, evaluators, settings, tracker)`` returning per-response
results (in the order of ``pairs``) and the kind's aggregates, in two parts a caller may run
apart: ``async judge_items(...)`` (the judge calls, per response; any chunk of ``pairs`` at a
time) and ``aggregate(pairs, results, settings)`` (from the results alone, so responses judged
and stored at different times aggregate as if judged together).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
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
ItemJudge = Callable[[Pairs, Evaluators, EvalSettings, Tracker], Awaitable[list[ItemResult]]]
Aggregate = Callable[[Pairs, Sequence[ItemResult], EvalSettings], dict[str, Any]]

ITEM_JUDGES: dict[str, ItemJudge] = {
    "writingbench": writingbench.judge_items,
    "longbench_write": longbench_write.judge_items,
    "creative": creative.judge_items,
    "longbench_v2": longbench_v2.judge_items,
    "pairwise": pairwise.judge_items,
}
AGGREGATES: dict[str, Aggregate] = {
    "writingbench": writingbench.aggregate,
    "longbench_write": longbench_write.aggregate,
    "creative": creative.aggregate,
    "longbench_v2": longbench_v2.aggregate,
    "pairwise": pairwise.aggregate,
}
assert tuple(JUDGES) == tuple(ITEM_JUDGES) == tuple(AGGREGATES) == KINDS, (
    "every benchmark kind needs its judging module"
)

__all__ = ["AGGREGATES", "ITEM_JUDGES", "JUDGES", "Aggregate", "ItemJudge", "KindJudge"]
