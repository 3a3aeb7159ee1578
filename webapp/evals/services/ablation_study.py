"""The seeded ablation study on top of the ablation grid (:mod:`.ablations`): writes.

- the base policy evaluated on the grid's held-out split like every cell
  (:func:`base_eval_ensure`);
- each evaluated cell compared with the base policy on the same held-out items, judged in
  both orders (:func:`compare_with_base`, with the two-order win-rate code of
  :mod:`rl_engine.evaluation.winrate`), and its heuristic score;
- a config-file front end (:func:`load_study_config`, used by ``manage.py run_ablation``).

Launching a study and executing a grid in this process: :mod:`.ablation_execution`.

The result table per arm is a read: :mod:`webapp.evals.ablation_results`.
"""

from __future__ import annotations

import json
import statistics
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings as django_settings
from django.db import transaction

from rl_engine.evaluation.winrate import pairwise_win_rate
from rl_engine.judging import HeuristicJudge, PairRequest
from webapp.evals.models import AblationCell, AblationGrid, Benchmark, EvalItemResult, EvalRun
from webapp.studio.models import Dataset, Instruction, Selection
from webapp.studio.paths import ConfigRefused, checked_judge


class StudyConfigError(ValueError):
    """A study config file is invalid; the message names the file and the field."""


# -- the base policy ---------------------------------------------------------------------------


def base_policy(grid: AblationGrid) -> str:
    return str((grid.base_config or {}).get("policy") or django_settings.WRITING_RL_POLICY)


def base_eval_ensure(grid: AblationGrid, *, enqueue: bool = True) -> bool:
    """Create the base policy's evaluation on the grid's held-out split (once). True when this
    call created it."""
    from webapp.evals.services.config import EvalConfigError
    from webapp.evals.services.eval_runs import eval_run_create

    if grid.base_eval_run_id is not None:
        return False
    try:
        with transaction.atomic():
            eval_run = eval_run_create(
                name=f"{grid.name}: base policy",
                benchmark=grid.eval_benchmark,
                system_kind=EvalRun.SystemKind.BASE_MODEL,
                base_model=base_policy(grid),
                dataset=grid.dataset,
                split=grid.eval_split,
                settings=grid.eval_settings,
                judge=grid.eval_judge,
                limit=grid.eval_limit,
                baseline_tier=grid.eval_baseline_tier,
                created_by=grid.created_by,
                enqueue=enqueue,
            )
            claimed = AblationGrid.objects.filter(pk=grid.pk, base_eval_run__isnull=True).update(
                base_eval_run=eval_run
            )
            if claimed != 1:  # another watcher got there first
                transaction.set_rollback(True)
                return False
    except EvalConfigError as error:
        # Without the base policy's evaluation no cell can be compared: say why on the cells
        # (the grid page shows it) rather than wait for an evaluation that never comes.
        refuse_comparisons(grid, f"the base policy's held-out evaluation was refused: {error}")
        return False
    grid.base_eval_run = eval_run
    return True


def refuse_comparisons(grid: AblationGrid, reason: str, cell_id: int | None = None) -> None:
    """Record on the grid's not-yet-compared cells (or on one) why they cannot be compared
    with the base policy."""
    cells = grid.cells.filter(comparison={})
    if cell_id is not None:
        cells = cells.filter(pk=cell_id)
    cells.update(comparison={"refused": reason})


# -- comparison with the base policy -----------------------------------------------------------


def heuristic_score(prompt: str, response: str, judge: HeuristicJudge | None = None) -> float:
    """The heuristic judge's own score of one response on 0..100: the mean of LongBench-Write's
    length score S_l (when the prompt states a length) and 100 x (1 - the share of repeated
    word 4-grams). It measures length-following and not repeating, never writing quality."""
    parts = (judge or HeuristicJudge()).score(prompt, response)
    total = float(parts["score"] or 0.0)
    return total / 2.0 if parts["length_score"] is not None else total


def stored_responses(eval_run: EvalRun) -> dict[str, str]:
    return dict(
        EvalItemResult.objects.filter(eval_run=eval_run, iteration=0).values_list(
            "item_id", "response"
        )
    )


def compare_with_base(
    system: EvalRun, base: EvalRun, judge: Any, *, judge_name: str = ""
) -> dict[str, Any]:
    """The system's held-out responses against the base policy's, item by item, judged in both
    orders: the combined outcome (a verdict that flips with the order is a tie; an invalid
    order makes the item invalid, never a loss), each order's own win rate, and the heuristic
    score of the system's responses."""
    mine, theirs = stored_responses(system), stored_responses(base)
    shared = sorted(set(mine) & set(theirs), key=lambda k: (len(k), k))
    prompts = dict(
        Instruction.objects.filter(pk__in=[int(k) for k in shared if k.isdigit()]).values_list(
            "pk", "prompt"
        )
    )
    items = [k for k in shared if k.isdigit() and int(k) in prompts]
    requests = []
    for key in items:
        prompt = prompts[int(key)]
        requests.append(PairRequest(prompt, mine[key], theirs[key]))
        requests.append(PairRequest(prompt, theirs[key], mine[key]))
    judgments = judge.compare_sync(requests) if requests else []
    first = [j.verdict for j in judgments[0::2]]
    second = [j.verdict for j in judgments[1::2]]
    rate = pairwise_win_rate(first, second)

    def order_rate(verdicts: list[Any], winning: str) -> float | None:
        # One order's win rate, ties counting half as in the combined rate.
        valid = [str(getattr(v, "value", v)).upper() for v in verdicts]
        valid = [v for v in valid if v != "INVALID"]
        points = sum(1.0 if v == winning else 0.5 if v == "TIE" else 0.0 for v in valid)
        return points / len(valid) if valid else None

    errors = sorted({str(j.error) for j in judgments if getattr(j, "error", None)})
    scorer = HeuristicJudge()
    scores = [heuristic_score(prompts[int(k)], mine[k], scorer) for k in items]
    return {
        "base_eval_run": base.pk,
        "items": len(items),
        "wins": rate.wins,
        "ties": rate.ties,
        "losses": rate.losses,
        "invalid": rate.invalid,
        "inconsistent": rate.inconsistent,
        "win_rate": rate.win_rate,
        "adjusted_win_rate": rate.adjusted_win_rate,
        "system_first_win_rate": order_rate(first, "A"),
        "system_second_win_rate": order_rate(second, "B"),
        "heuristic_score": statistics.fmean(scores) if scores else None,
        "judge": judge_name or getattr(judge, "name", ""),
        "errors": errors[:5],
    }


def _judge(grid: AblationGrid) -> Any:
    from rl_engine.judging.factory import make_judge

    # Resolved by name and checked against the roots now (the stored spec may be edited).
    return make_judge(checked_judge(grid.eval_judge or {"endpoint": "heuristic"}, "eval_judge"))


def grid_compare(grid: AblationGrid, judge: Any = None) -> int:
    """Compare every evaluated cell not compared yet with the base policy; returns how many.
    A comparison judge the deployment refuses now compares nothing: each waiting cell records
    the reason (``comparison["refused"]``, shown on the grid's page) and is compared once the
    judge is fixed."""
    base = grid.base_eval_run
    if base is None:
        return 0
    base.refresh_from_db(fields=["status"])
    if base.status != EvalRun.Status.SUCCEEDED:
        return 0
    cells = [
        cell
        for cell in grid.cells.select_related("eval_run").filter(
            eval_run__status=EvalRun.Status.SUCCEEDED
        )
        if cell.comparison.get("base_eval_run") != base.pk
    ]
    if cells and judge is None:
        try:
            judge = _judge(grid)
        except ConfigRefused as error:
            AblationCell.objects.filter(pk__in=[cell.pk for cell in cells]).update(
                comparison={"refused": f"the comparison judge was refused: {error}"}
            )
            return 0
    done = 0
    for cell in cells:
        assert cell.eval_run is not None
        comparison = compare_with_base(cell.eval_run, base, judge)
        AblationCell.objects.filter(pk=cell.pk).update(comparison=comparison)
        done += 1
    return done


# -- config files ------------------------------------------------------------------------------

CONFIG_KEYS = {
    "name", "dataset", "arms", "selections", "rewards", "curricula", "design", "seeds",
    "train", "selections_used", "eval",
}  # fmt: skip
EVAL_KEYS = {"benchmark", "split", "limit", "settings", "judge", "baseline_tier"}


def _read_config(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise StudyConfigError(f"{path}: cannot read the file: {error}") from None
    try:
        payload = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except json.JSONDecodeError as error:
        raise StudyConfigError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    except tomllib.TOMLDecodeError as error:
        raise StudyConfigError(f"{path}: not valid TOML ({error})") from None
    if not isinstance(payload, dict):
        raise StudyConfigError(f"{path}: must hold an object (a JSON object or TOML table)")
    return payload


def _latest_selection(dataset: Dataset, strategy: str) -> Selection | None:
    return Selection.objects.filter(dataset=dataset, strategy=strategy).order_by("-pk").first()


def study_kwargs(payload: Mapping[str, Any], where: str = "config") -> dict[str, Any]:
    """``ablation_grid_create`` keyword arguments from a study config (see
    ``docs/research-validity.md``): ``name``, ``dataset`` (name or id), ``arms`` (list of
    [selection, reward, curriculum]) or ``selections``/``rewards``/``curricula`` with
    ``design`` ("product" or "one_factor"), ``seeds``, ``train`` (TrainConfig fields),
    ``selections_used`` ({strategy: selection id}; default: the dataset's latest of each
    strategy) and ``eval`` (``benchmark``, ``split``, ``limit``, ``settings``, ``judge``,
    ``baseline_tier``)."""
    unknown = sorted(set(payload) - CONFIG_KEYS)
    if unknown:
        raise StudyConfigError(
            f"{where}: unknown field(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(CONFIG_KEYS))}"
        )
    dataset_ref = payload.get("dataset")
    if dataset_ref in (None, ""):
        raise StudyConfigError(f"{where}: field 'dataset' is required (a dataset name or id)")
    dataset = Dataset.objects.filter(name=str(dataset_ref)).first()
    if dataset is None and str(dataset_ref).isdigit():
        dataset = Dataset.objects.filter(pk=int(dataset_ref)).first()
    if dataset is None:
        raise StudyConfigError(f"{where}: field 'dataset': no dataset {dataset_ref!r}")
    train = payload.get("train", {})
    if not isinstance(train, dict):
        raise StudyConfigError(f"{where}: field 'train' must be an object of TrainConfig fields")
    evaluation = payload.get("eval", {})
    if not isinstance(evaluation, dict):
        raise StudyConfigError(f"{where}: field 'eval' must be an object")
    unknown = sorted(set(evaluation) - EVAL_KEYS)
    if unknown:
        raise StudyConfigError(
            f"{where}: unknown field(s) eval.{', eval.'.join(unknown)}; known: "
            f"{', '.join(sorted(EVAL_KEYS))}"
        )
    seeds = payload.get("seeds")
    if seeds is not None and (
        not isinstance(seeds, list)
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise StudyConfigError(f"{where}: field 'seeds' must be a list of integers")
    kwargs: dict[str, Any] = {
        "name": str(payload.get("name") or "ablation study"),
        "dataset": dataset,
        "base_config": {"judge": {"kind": "heuristic"}, **train},
        "seeds": seeds,
        "eval_benchmark": evaluation.get("benchmark", Benchmark.LONGBENCH_WRITE),
        "eval_split": evaluation.get("split", Instruction.Split.EVAL),
        "eval_limit": evaluation.get("limit"),
        "eval_settings": evaluation.get("settings", {}),
        "eval_judge": evaluation.get("judge", train.get("judge", {"kind": "heuristic"})),
        "eval_baseline_tier": evaluation.get("baseline_tier"),
    }
    if "arms" in payload:
        arms = payload["arms"]
        if not isinstance(arms, list) or not all(isinstance(a, list | tuple) for a in arms):
            raise StudyConfigError(
                f"{where}: field 'arms' must be a list of [selection, reward, curriculum]"
            )
        kwargs["arms"] = arms
        strategies = {a[0] for a in arms if a}
    else:
        for axis in ("selections", "rewards", "curricula"):
            if axis in payload:
                if not isinstance(payload[axis], list):
                    raise StudyConfigError(f"{where}: field {axis!r} must be a list")
                kwargs[axis] = payload[axis]
        kwargs["design"] = payload.get("design", "product")
        strategies = set(kwargs.get("selections", ("margin", "difficulty", "full")))
    used = payload.get("selections_used", {})
    if not isinstance(used, dict):
        raise StudyConfigError(f"{where}: field 'selections_used' must map strategy to an id")
    for strategy in ("margin", "difficulty", "random"):
        if strategy not in strategies:
            continue
        if strategy in used:
            selection = Selection.objects.filter(pk=used[strategy], dataset=dataset).first()
            if selection is None:
                raise StudyConfigError(
                    f"{where}: field 'selections_used.{strategy}': no selection {used[strategy]!r} "
                    f"of {dataset.name!r}"
                )
        else:
            selection = _latest_selection(dataset, strategy)
        kwargs[f"{strategy}_selection"] = selection
    return kwargs


def load_study_config(path: Path) -> dict[str, Any]:
    """``ablation_grid_create`` keyword arguments from a JSON or TOML study file."""
    return study_kwargs(_read_config(path), where=str(path))
