"""A training run in its own process, for the kill-and-resume test.

    python -m tests.rl_engine.training.run_training RUN_DIR STORE_JSON POLICY \
        --max-steps 6 [--resume] [--hang-at-step 3]

The curriculum lives in a JsonFileStore so it survives a SIGKILL. Each reported event is
appended to RUN_DIR/events.jsonl as it happens; the TrainResult goes to RUN_DIR/result.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from rl_engine.curriculum import Transition
from rl_engine.training import (
    CheckpointInfo,
    JudgmentRecord,
    StepMetrics,
    TrainConfig,
    TrainingInstruction,
    train,
)
from rl_engine.training.file_store import JsonFileStore


def instructions() -> list[TrainingInstruction]:
    # Tier 0 repeats itself (the heuristic judge scores it low), tier 1 is short and clean (a
    # tie for token soup), tier 2 is longer and clean.
    return [
        TrainingInstruction(
            sample_id=f"s{i}",
            prompt=f"Write a few words about topic number {i}.",
            references=[
                "ok fine ok fine " * 6,
                "A calm grey sea.",
                "A calm grey sea under a pale sky, and gulls over the harbour wall.",
            ],
        )
        for i in range(4)
    ]


def config(run_dir: Path, policy: str, max_steps: int) -> TrainConfig:
    return TrainConfig(
        policy=policy,
        num_generations=2,
        prompts_per_step=2,
        max_completion_tokens=6,
        kl_beta=0.0,
        learning_rate=1e-3,
        max_steps=max_steps,
        checkpoint_every=2,
        keep_checkpoints=None,
        seed=7,
        device="cpu",
        output_dir=str(run_dir),
    )


class FileReporter:
    def __init__(self, path: Path, hang_at_step: int | None = None) -> None:
        self.path = path
        self.hang_at_step = hang_at_step

    def _write(self, kind: str, payload: object) -> None:
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps({"kind": kind, "payload": payload}) + "\n")

    def on_step(self, metrics: StepMetrics) -> None:
        self._write("step", dataclasses.asdict(metrics))
        if metrics.step == self.hang_at_step:
            # Stands for a step that is still running when the machine dies: the test kills
            # the process here, after the step's curriculum records were written.
            self._write("hanging", metrics.step)
            while True:
                time.sleep(1)

    def on_judgments(self, judgments: Sequence[JudgmentRecord]) -> None:
        self._write("judgments", [dataclasses.asdict(j) for j in judgments])

    def on_transitions(self, transitions: Sequence[Transition]) -> None:
        self._write("transitions", [dataclasses.asdict(t) for t in transitions])

    def on_checkpoint(self, checkpoint: CheckpointInfo) -> None:
        self._write("checkpoint", dataclasses.asdict(checkpoint))

    def on_resume(self, checkpoint: CheckpointInfo) -> None:
        self._write("resume", dataclasses.asdict(checkpoint))

    def should_stop(self) -> bool:
        return False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("store", type=Path)
    parser.add_argument("policy")
    parser.add_argument("--max-steps", type=int, default=6)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--hang-at-step", type=int, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # same arithmetic in every process
    args.run_dir.mkdir(parents=True, exist_ok=True)
    data = instructions()
    store = JsonFileStore(args.store, {i.sample_id: i.num_tiers for i in data})
    reporter = FileReporter(args.run_dir / "events.jsonl", args.hang_at_step)
    result = train(
        config(args.run_dir, args.policy, args.max_steps),
        data,
        store,
        reporter,
        resume_from="latest" if args.resume else None,
    )
    (args.run_dir / "result.json").write_text(json.dumps(dataclasses.asdict(result)))


if __name__ == "__main__":
    main()
