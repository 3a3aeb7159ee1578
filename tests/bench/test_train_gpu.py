"""bench/train_gpu.py stays runnable: its CPU dry run trains the tiny model in both modes."""

from __future__ import annotations

import pytest

from bench import train_gpu


def test_it_dry_runs_on_cpu_and_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert train_gpu.main(["--dry-run", "--no-write", "--modes", "static,dynamic"]) == 0
    out = capsys.readouterr().out
    assert "| tiny | static |" in out and "| tiny | dynamic |" in out
    assert "% of bound" in out


def test_it_bounds_rollouts_by_weights_and_kv_cache_read_per_decode_step() -> None:
    shape = train_gpu.Shape(params=500_000_000, layers=24, hidden=896, kv_bytes_per_token=12_288)
    args = type("Args", (), {"prompts": 8, "generations": 8, "max_tokens": 1024,
                             "device_kind": "cuda"})()  # fmt: skip
    steps = [
        {"rollout_tokens": 65536, "rollout_seconds": 10.0, "update_tokens": 70000,
         "update_seconds": 2.0, "step_seconds": 12.0},
    ] * 2  # fmt: skip
    summary = train_gpu.summarise(steps, shape, args, 3.0e12, 700e12, prompt_tokens=40.0)  # type: ignore[arg-type]
    # 64 sequences; per decode step: 1 GB of bf16 weights + 64 x 552 x 12 KiB of KV cache.
    expected_bound = 64 * 3.0e12 / (1.0e9 + 64 * (40 + 512) * 12_288)
    assert summary["bound_tok_s"] == pytest.approx(expected_bound)
    assert summary["rollout_pct_bound"] == pytest.approx(100 * 6553.6 / expected_bound)
    flops = (6 * 500e6 + 6 * 24 * 896 * 1064) * 70000
    assert summary["update_mfu_pct"] == pytest.approx(100 * flops / 2.0 / 700e12)
