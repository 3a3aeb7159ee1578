"""Presentation helpers of the run page and the run comparison: chart settings from the query
string, the configuration as grouped rows, and the checkpoints with what is left on disk."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from django.http import QueryDict

from rl_engine.training.config import TrainConfig
from webapp.charts import SMOOTHING_CHOICES
from webapp.studio.models import Checkpoint, Run

# Sections of the configuration table, in the order a researcher reads a run. A field that is
# in none of them (a setting added later) lands in "Other", never dropped.
CONFIG_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Method", ("backend", "algorithm", "policy", "reward_kind", "reward_position",
                "reward_terms", "curriculum", "min_wins", "static_tier")),
    ("Judge", ("judge", "judge_max_invalid_rate", "judge_outage_budget_s")),
    ("Rollouts", ("num_generations", "prompts_per_step", "max_completion_tokens", "temperature",
                  "top_p", "generation_kwargs", "use_vllm", "vllm_server_url", "static_cache")),
    ("Optimisation", ("learning_rate", "kl_beta", "gradient_accumulation_steps", "max_steps",
                      "gradient_checkpointing", "seed", "device", "dtype")),
    ("Checkpoints and output", ("checkpoint_every", "keep_checkpoints", "save_final_model",
                                "output_dir", "report_to", "logging_dir")),
)  # fmt: skip


@dataclass(frozen=True)
class ChartSettings:
    """What the researcher asked of the charts: EMA smoothing and a step range (a zoom)."""

    smoothing: float = 0.0
    first: int | None = None
    last: int | None = None

    @classmethod
    def from_query(cls, query: QueryDict) -> ChartSettings:
        """Unknown or malformed values fall back to the defaults (a chart is never an error)."""
        try:
            smoothing = float(query.get("smooth", 0) or 0)
        except ValueError:
            smoothing = 0.0
        if smoothing not in SMOOTHING_CHOICES:
            smoothing = 0.0

        def step(name: str) -> int | None:
            raw = query.get(name, "")
            return int(raw) if raw.isdigit() and len(raw) <= 9 else None

        first, last = step("from"), step("to")
        if first is not None and last is not None and last < first:
            first, last = last, first
        return cls(smoothing, first, last)

    @property
    def x_range(self) -> tuple[int | None, int | None]:
        return (self.first, self.last)

    @property
    def key(self) -> str:
        return f"{self.smoothing}:{self.first}:{self.last}"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value if value else "—"
    if value is None:
        return "—"
    return json.dumps(value, sort_keys=True)


def config_sections(config: dict[str, Any]) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """``[(section, [(setting, value shown, help), ...]), ...]``; the judge's settings are
    spread out as ``judge.kind``, ``judge.model``, ..."""
    helps = TrainConfig.help()
    known = {f.name for f in fields(TrainConfig)}
    placed: set[str] = set()
    out = []
    for title, names in CONFIG_SECTIONS:
        rows = []
        for name in names:
            if name not in config:
                continue
            placed.add(name)
            value = config[name]
            if isinstance(value, dict) and name == "judge":
                rows.extend(
                    (f"judge.{key}", _show(inner), "") for key, inner in sorted(value.items())
                )
            else:
                rows.append((name, _show(value), helps.get(name, "")))
        if rows:
            out.append((title, rows))
    other = [
        (name, _show(value), helps.get(name, "") if name in known else "")
        for name, value in sorted(config.items())
        if name not in placed
    ]
    if other:
        out.append(("Other", other))
    return out


@dataclass(frozen=True)
class CheckpointRow:
    step: int
    created_at: Any
    path: str
    on_disk: bool


def checkpoint_rows(run: Run) -> list[CheckpointRow]:
    """The run's checkpoints, newest first; ``on_disk`` is False once rotation deleted one."""
    return [
        CheckpointRow(c.step, c.created_at, c.path, bool(c.path) and Path(c.path).exists())
        for c in Checkpoint.objects.filter(run=run).order_by("-step")
    ]
