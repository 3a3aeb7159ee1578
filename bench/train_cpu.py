"""Seconds per GRPO step on CPU: SmolLM2-135M-Instruct on 2 cores, and the tiny test model.

    .venv/bin/python bench/train_cpu.py            # both models, writes docs/benchmarks.md
    .venv/bin/python bench/train_cpu.py --quick    # tiny model only, no write

GRPO with the heuristic judge (so the judge costs nothing), fp32, 2 prompts x 4 generations x
48 new tokens per step; the first step is left out as warm-up. Prints where the time goes:
rollout generation, judging, and the update (log-probs, forward, backward, optimizer).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.train_common import machine_line, write_section  # noqa: E402
from rl_engine.curriculum import InMemoryStore  # noqa: E402
from rl_engine.judging import JudgeSpec  # noqa: E402
from rl_engine.models import SMOLLM2, save_tiny_model  # noqa: E402
from rl_engine.training import (  # noqa: E402
    InMemoryReporter,
    StepMetrics,
    TrainConfig,
    TrainingInstruction,
    train,
)

PROMPTS = [
    "Write a short paragraph about a lighthouse keeper.",
    "Describe a rainy morning in a small town.",
    "Write a note thanking a neighbour for their help.",
    "Explain why people like gardens, in a few sentences.",
]


def instructions() -> list[TrainingInstruction]:
    return [
        TrainingInstruction(
            sample_id=f"s{i}",
            prompt=prompt,
            references=["fine fine fine fine fine fine fine fine", "A clear, warm paragraph."],
        )
        for i, prompt in enumerate(PROMPTS)
    ]


def run(policy: str, args: argparse.Namespace, out: Path) -> list[StepMetrics]:
    data = instructions()
    config = TrainConfig(
        policy=policy,
        judge=JudgeSpec(endpoint="heuristic"),
        num_generations=args.generations,
        prompts_per_step=args.prompts,
        max_completion_tokens=args.max_tokens,
        kl_beta=0.0,
        learning_rate=1e-6,
        max_steps=args.steps,
        checkpoint_every=0,
        save_final_model=False,
        device="cpu",
        output_dir=str(out),
    )
    reporter = InMemoryReporter()
    train(config, data, InMemoryStore({i.sample_id: i.num_tiers for i in data}), reporter)
    return reporter.steps


def row(name: str, steps: list[StepMetrics]) -> dict[str, float | str]:
    measured = steps[1:] or steps
    return {
        "model": name,
        "s_per_step": statistics.fmean(m.step_seconds for m in measured),
        "rollout_s": statistics.fmean(m.rollout_seconds for m in measured),
        "judge_s": statistics.fmean(m.judge_seconds for m in measured),
        "update_s": statistics.fmean(m.update_seconds for m in measured),
        "rollout_tok_s": statistics.fmean(m.rollout_tokens_per_s or 0.0 for m in measured),
        "update_tok_s": statistics.fmean(m.update_tokens_per_s or 0.0 for m in measured),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (cores)")
    parser.add_argument("--steps", type=int, default=4, help="the first is warm-up")
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--quick", action="store_true", help="tiny model only, don't write")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        tiny = save_tiny_model(Path(scratch) / "tiny")
        rows.append(row("tiny (2 layers, hidden 64)", run(str(tiny), args, Path(scratch) / "t")))
        if not args.quick:
            rows.append(row("SmolLM2-135M-Instruct", run(SMOLLM2, args, Path(scratch) / "s")))
    table = "\n".join(
        [
            "| model | s/step | rollout s | judge s | update s | rollout tok/s | update tok/s |",
            "|---|---|---|---|---|---|---|",
        ]
        + [
            f"| {r['model']} | {r['s_per_step']:.2f} | {r['rollout_s']:.2f} | {r['judge_s']:.3f} "
            f"| {r['update_s']:.2f} | {r['rollout_tok_s']:.0f} | {r['update_tok_s']:.0f} |"
            for r in rows
        ]
    )
    print(table)
    if not args.quick:
        write_section(
            "train_cpu",
            f"{machine_line()}.\n"
            f"GRPO, {args.prompts} prompts x {args.generations} generations x {args.max_tokens} "
            f"new tokens per step, fp32, heuristic judge, KL off, mean of steps 2..{args.steps} "
            "(step 1 is warm-up). Command: `.venv/bin/python bench/train_cpu.py`.\n\n" + table,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
