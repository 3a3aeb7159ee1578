"""The seeded ablation study's result table, one row per arm (a read).

Over each arm's seeds whose evaluation succeeded: the held-out metric's mean with a 95%
Student-t interval (:mod:`rl_engine.evaluation.intervals`), the heuristic score and the win
rate against the base policy (both orders; the comparisons are written by
:mod:`webapp.evals.services.ablation_study`), each order's win rate, the share of prompt groups
with a learning signal (:mod:`webapp.studio.learning_signal`), steps and wall time per run.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass, field
from typing import Any

from rl_engine.evaluation.intervals import MeanInterval, t_interval
from rl_engine.judging import HeuristicJudge
from webapp.charts import Series
from webapp.evals.models import AblationCell, AblationGrid, Benchmark, EvalRun
from webapp.evals.services.ablation_study import heuristic_score, stored_responses
from webapp.studio.learning_signal import learning_signal, learning_signal_summary
from webapp.studio.models import Instruction, Run

CONFIDENCE = 0.95


def primary_metric(benchmark: str) -> tuple[str, str]:
    """(aggregate key, label) of the held-out metric the table reports for ``benchmark``."""
    if benchmark == Benchmark.LONGBENCH_WRITE:
        return "S_l", "held-out S_l"
    return "score", f"held-out {benchmark} score"


@dataclass
class ArmRow:
    arm: str
    selection: str
    reward: str
    curriculum: str
    seeds: list[int]
    metric: MeanInterval
    heuristic: MeanInterval
    win_rate: MeanInterval
    system_first: float | None
    system_second: float | None
    signal_share: float | None
    steps: float | None
    wall_s: float | None
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.metric.n


@dataclass
class StudyTable:
    metric_label: str
    rows: list[ArmRow]
    base: dict[str, Any]
    confidence: float = CONFIDENCE

    HEADER = (
        "arm", "selection", "reward", "curriculum", "seeds", "n",
        "{metric} mean", "{metric} 95% low", "{metric} 95% high",
        "heuristic score mean", "heuristic 95% low", "heuristic 95% high",
        "win rate vs base (both orders) mean", "win rate 95% low", "win rate 95% high",
        "win rate vs base (system shown first)", "win rate vs base (system shown second)",
        "groups with signal", "steps", "wall time per run (s)", "runs",
    )  # fmt: skip

    def csv_rows(self) -> list[list[str]]:
        def number(value: float | None, digits: int = 4) -> str:
            return "" if value is None else f"{value:.{digits}f}"

        head = [h.format(metric=self.metric_label) for h in self.HEADER]
        body = [
            [
                "base policy", "", "", "", "", str(self.base.get("n", 0)),
                number(self.base.get("metric")), "", "",
                number(self.base.get("heuristic")), "", "",
                "", "", "", "", "", "", "", "", self.base.get("status", ""),
            ]
        ]  # fmt: skip
        for row in self.rows:
            body.append(
                [
                    row.arm, row.selection, row.reward, row.curriculum,
                    " ".join(str(s) for s in row.seeds), str(row.n),
                    number(row.metric.mean), number(row.metric.low), number(row.metric.high),
                    number(row.heuristic.mean), number(row.heuristic.low),
                    number(row.heuristic.high),
                    number(row.win_rate.mean), number(row.win_rate.low),
                    number(row.win_rate.high),
                    number(row.system_first), number(row.system_second),
                    number(row.signal_share), number(row.steps, 1), number(row.wall_s, 1),
                    " ".join(f"{k}:{v}" for k, v in sorted(row.statuses.items())),
                ]
            )  # fmt: skip
        return [head, *body]


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def ablation_results(grid: AblationGrid) -> StudyTable:
    """One row per arm of the grid (in launch order): its seeds, and over the seeds whose
    evaluation succeeded the mean and 95% Student-t interval of the held-out metric, the
    heuristic score and the win rate against the base policy (both orders, ties count half),
    each order's win rate, the share of prompt groups with reward variance, steps and wall
    time per run."""
    key, label = primary_metric(grid.eval_benchmark)
    cells = list(grid.cells.select_related("run", "eval_run").order_by("id"))
    by_arm: dict[str, list[AblationCell]] = {}
    for cell in cells:
        by_arm.setdefault(cell.label, []).append(cell)
    rows = []
    for arm, members in by_arm.items():
        evaluated = [
            c for c in members if c.eval_run and c.eval_run.status == EvalRun.Status.SUCCEEDED
        ]
        metric = [_number((c.eval_run.aggregates or {}).get(key)) for c in evaluated]  # type: ignore[union-attr]
        compared = [c.comparison for c in evaluated if c.comparison]
        statuses: dict[str, int] = {}
        for cell in members:
            statuses[cell.run.status] = statuses.get(cell.run.status, 0) + 1
        finished = [c.run for c in members if c.run.status == Run.Status.SUCCEEDED]
        walls = [
            (r.finished_at - r.started_at).total_seconds()
            for r in finished
            if r.started_at and r.finished_at
        ]
        shares = [learning_signal_summary(learning_signal(r))["signal_share"] for r in finished]
        rows.append(
            ArmRow(
                arm=arm,
                selection=members[0].selection,
                reward=members[0].reward,
                curriculum=members[0].curriculum,
                seeds=[c.seed for c in members],
                metric=_interval(metric, 0.0, 100.0),
                heuristic=_interval([c.get("heuristic_score") for c in compared], 0.0, 100.0),
                win_rate=_interval([c.get("adjusted_win_rate") for c in compared], 0.0, 1.0),
                system_first=_mean([c.get("system_first_win_rate") for c in compared]),
                system_second=_mean([c.get("system_second_win_rate") for c in compared]),
                signal_share=_mean([_number(s) for s in shares]),
                steps=_mean([float(r.current_step) for r in finished]),
                wall_s=_mean(walls),  # type: ignore[arg-type]
                statuses=statuses,
            )
        )
    base: dict[str, Any] = {"n": 0, "metric": None, "heuristic": None, "status": "not created"}
    if grid.base_eval_run_id:
        base_run = EvalRun.objects.get(pk=grid.base_eval_run_id)
        base["status"] = base_run.status
        if base_run.status == EvalRun.Status.SUCCEEDED:
            base["n"] = 1
            base["metric"] = _number((base_run.aggregates or {}).get(key))
            base["heuristic"] = _base_heuristic(base_run)
    return StudyTable(label, rows, base)


def _interval(values: list[float | None], low: float, high: float) -> MeanInterval:
    """The t-interval of ``values``, its ends clipped to the metric's range [low, high] (with
    few seeds a t-interval easily reaches past what the metric can take)."""
    found = t_interval(values, CONFIDENCE)
    if found.low is None or found.high is None:
        return found
    return dataclasses.replace(found, low=max(found.low, low), high=min(found.high, high))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _base_heuristic(base_run: EvalRun) -> float | None:
    responses = stored_responses(base_run)
    prompts = dict(
        Instruction.objects.filter(pk__in=[int(k) for k in responses if k.isdigit()]).values_list(
            "pk", "prompt"
        )
    )
    scorer = HeuristicJudge()
    scores = [
        heuristic_score(prompts[int(k)], text, scorer)
        for k, text in responses.items()
        if k.isdigit() and int(k) in prompts
    ]
    return statistics.fmean(scores) if scores else None


def signal_by_arm(grid: AblationGrid) -> list[Series]:
    """Per arm, the share of prompt groups with reward variance at each step, averaged over
    the arm's seeds (one series per arm, for the grid's page)."""
    by_arm: dict[str, dict[int, list[float]]] = {}
    for cell in grid.cells.order_by("id"):
        steps = by_arm.setdefault(cell.label, {})
        for signal in learning_signal(cell.run_id):
            if signal.signal_share is not None:
                steps.setdefault(signal.step, []).append(signal.signal_share)
    return [
        Series(
            arm,
            [(float(step), statistics.fmean(v)) for step, v in sorted(steps.items())],
            [f"step {step}: {len(v)} seed(s)" for step, v in sorted(steps.items())],
        )
        for arm, steps in by_arm.items()
        if steps
    ]
