"""GRPO throughput on a GPU: rollouts against the HBM-bandwidth bound, the update against peak.

Random-init Qwen2.5-0.5B and -1.5B shapes (Qwen2Config from the published shape numbers, no
hub), GRPO with 8 generations x 1024 new tokens per prompt, the heuristic judge (so the judge
costs nothing). For each model it runs our settings (bf16, static KV cache) and the plain TRL
defaults (dynamic cache) in the same process and prints:

- rollout tokens/s and its share of the bound: a decode step must read the weights and the KV
  cache once, so tokens/s <= batch x bandwidth / (weight bytes + KV bytes at the mean context);
  the bandwidth is measured here with a large device-to-device copy;
- update-phase model FLOPs utilisation: 6 x params x tokens (plus attention) over the
  update's wall time, against a measured bf16 matmul peak.

    .venv/bin/python bench/train_gpu.py                     # on a CUDA machine
    .venv/bin/python bench/train_gpu.py --dry-run           # CPU, tiny model: checks the path

Results go to docs/benchmarks.md under ``## train_gpu`` (not in --dry-run).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.train_common import machine_line, write_section  # noqa: E402
from rl_engine.curriculum import InMemoryStore  # noqa: E402
from rl_engine.judging import JudgeSpec  # noqa: E402
from rl_engine.models import save_tiny_model, smollm2_tokenizer, tiny_model  # noqa: E402
from rl_engine.training import InMemoryReporter, TrainConfig, TrainingInstruction, train  # noqa: E402

# Published Qwen2.5 shapes (config.json of Qwen/Qwen2.5-0.5B and -1.5B).
SHAPES: dict[str, dict[str, int | float | bool]] = {
    "qwen2.5-0.5b": {
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
    },
    "qwen2.5-1.5b": {
        "hidden_size": 1536,
        "intermediate_size": 8960,
        "num_hidden_layers": 28,
        "num_attention_heads": 12,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
    },
}


@dataclass
class Shape:
    params: int
    layers: int
    hidden: int
    kv_bytes_per_token: int  # all layers, K and V


def save_random_qwen(name: str, directory: Path, dtype: torch.dtype) -> Shape:
    """Write a random-init model of ``name``'s shape with the SmolLM2 tokenizer.

    The vocabulary keeps Qwen's 151,936 rows (the LM head is a real share of the FLOPs and
    bytes); sampled ids beyond SmolLM2's 49,152 decode to nothing, which the judge never sees
    as anything but short text.
    """
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = smollm2_tokenizer()
    config = Qwen2Config(
        **SHAPES[name],
        max_position_embeddings=32768,
        rope_theta=1_000_000.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    # Initialise on the GPU: random init of 1.5B parameters on CPU takes minutes.
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Qwen2ForCausalLM(config).to(dtype)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    head_dim = config.hidden_size // config.num_attention_heads
    element = torch.finfo(dtype).bits // 8
    return Shape(
        params=sum(p.numel() for p in model.parameters()),
        layers=config.num_hidden_layers,
        hidden=config.hidden_size,
        kv_bytes_per_token=2
        * config.num_hidden_layers
        * config.num_key_value_heads
        * head_dim
        * element,
    )


def tiny_shape(directory: Path) -> Shape:
    """Save the tiny test model for a CPU dry run, and describe its shape."""
    save_tiny_model(directory)
    model, _ = tiny_model()
    config = model.config
    head_dim = config.hidden_size // config.num_attention_heads
    return Shape(
        params=sum(p.numel() for p in model.parameters()),
        layers=config.num_hidden_layers,
        hidden=config.hidden_size,
        kv_bytes_per_token=2 * config.num_hidden_layers * config.num_key_value_heads * head_dim * 4,
    )


def measure_bandwidth(device: torch.device, gib: float) -> float:
    """Bytes/s of a large device copy (a copy reads and writes every byte)."""
    n = int(gib * 2**30) // 2
    source = torch.empty(n, dtype=torch.bfloat16, device=device)
    target = torch.empty_like(source)
    for _ in range(2):
        target.copy_(source)
    _sync(device)
    repeats = 10
    started = time.perf_counter()
    for _ in range(repeats):
        target.copy_(source)
    _sync(device)
    elapsed = time.perf_counter() - started
    return 2 * source.numel() * source.element_size() * repeats / elapsed


def measure_matmul_peak(device: torch.device, size: int) -> float:
    """FLOP/s of a large bf16 (CUDA) / fp32 (CPU) matmul."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    for _ in range(3):
        a @ b
    _sync(device)
    repeats = 20
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - started)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def instructions(count: int) -> list[TrainingInstruction]:
    topics = ["a lighthouse", "a city at night", "an old map", "the first snow", "a market"]
    return [
        TrainingInstruction(
            sample_id=f"p{i}",
            prompt=f"Write a short story about {topics[i % len(topics)]} (variant {i}).",
            references=["Short.", "A longer and better written reference story."],
        )
        for i in range(count)
    ]


def run_mode(
    policy: Path, *, mode: str, args: argparse.Namespace, device: str, out: Path
) -> list[dict[str, float | None]]:
    data = instructions(args.prompts)
    config = TrainConfig(
        policy=str(policy),
        judge=JudgeSpec(endpoint="heuristic"),
        num_generations=args.generations,
        prompts_per_step=args.prompts,
        gradient_accumulation_steps=args.grad_accum,
        max_completion_tokens=args.max_tokens,
        # Random weights rarely sample EOS, but force the full length so runs are comparable.
        generation_kwargs={"min_new_tokens": args.max_tokens},
        kl_beta=0.0,
        learning_rate=1e-6,
        max_steps=args.steps,
        checkpoint_every=0,
        save_final_model=False,
        device=device,
        static_cache=mode == "static",
        use_vllm="colocate" if mode == "vllm" else "off",
        gradient_checkpointing=args.gradient_checkpointing,
        output_dir=str(out),
        seed=0,
    )
    store = InMemoryStore({inst.sample_id: inst.num_tiers for inst in data})
    reporter = InMemoryReporter()
    train(config, data, store, reporter)
    return [
        {
            "step": m.step,
            "rollout_tokens": m.rollout_tokens,
            "rollout_tokens_per_s": m.rollout_tokens_per_s,
            "rollout_seconds": m.rollout_seconds,
            "update_tokens": m.update_tokens,
            "update_seconds": m.update_seconds,
            "step_seconds": m.step_seconds,
        }
        for m in reporter.steps
    ]


def summarise(
    steps: list[dict[str, float | None]],
    shape: Shape,
    args: argparse.Namespace,
    bandwidth: float,
    peak: float,
    prompt_tokens: float,
) -> dict[str, float]:
    measured = steps[1:] or steps  # the first step compiles/warms up
    rollout_tokens = sum(float(s["rollout_tokens"] or 0) for s in measured)
    rollout_seconds = sum(float(s["rollout_seconds"] or 0) for s in measured)
    update_tokens = sum(float(s["update_tokens"] or 0) for s in measured)
    update_seconds = sum(float(s["update_seconds"] or 0) for s in measured)
    batch = args.prompts * args.generations
    weight_bytes = shape.params * (2 if args.device_kind == "cuda" else 4)
    mean_context = prompt_tokens + args.max_tokens / 2
    bytes_per_decode_step = weight_bytes + batch * mean_context * shape.kv_bytes_per_token
    bound = batch * bandwidth / bytes_per_decode_step
    rollout_rate = rollout_tokens / rollout_seconds if rollout_seconds else 0.0
    # Model FLOPs of the update: forward + backward = 6 N per token, plus attention scores
    # (6 x layers x hidden x context per token for QK^T and AV, forward and backward).
    sequence = prompt_tokens + args.max_tokens
    flops_per_token = 6 * shape.params + 6 * shape.layers * shape.hidden * sequence
    update_flops = flops_per_token * update_tokens
    mfu = update_flops / update_seconds / peak if update_seconds else 0.0
    return {
        "rollout_tok_s": rollout_rate,
        "bound_tok_s": bound,
        "rollout_pct_bound": 100 * rollout_rate / bound if bound else 0.0,
        "update_tok_s": update_tokens / update_seconds if update_seconds else 0.0,
        "update_mfu_pct": 100 * mfu,
        "step_s": sum(float(s["step_seconds"] or 0) for s in measured) / len(measured),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="qwen2.5-0.5b,qwen2.5-1.5b")
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=8, help="prompts per step")
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--grad-accum", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="the first is warm-up")
    parser.add_argument(
        "--modes",
        default="static,dynamic" + (",vllm" if importlib.util.find_spec("vllm") else ""),
        help="static (ours: bf16 + static KV cache), dynamic (TRL defaults), vllm (colocated)",
    )
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--dry-run", action="store_true", help="tiny model on CPU, seconds")
    parser.add_argument("--no-write", action="store_true", help="don't touch docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.dry_run:
        args.models, args.generations, args.prompts = "tiny", 2, 2
        args.max_tokens, args.grad_accum, args.steps = 8, 1, 2
    if not args.dry_run and not torch.cuda.is_available():
        print("train_gpu: no CUDA device here; run it on a GPU machine, or use --dry-run")
        return 2
    args.device_kind = "cpu" if args.dry_run else "cuda"
    device = torch.device(args.device_kind)
    bandwidth = measure_bandwidth(device, 0.05 if args.dry_run else 4.0)
    peak = measure_matmul_peak(device, 512 if args.dry_run else 8192)
    print(f"measured bandwidth {bandwidth / 1e9:.0f} GB/s, matmul peak {peak / 1e9:.0f} GFLOP/s")
    prompt_tokens = float(
        len(
            smollm2_tokenizer().apply_chat_template(
                [{"role": "user", "content": instructions(1)[0].prompt}],
                add_generation_prompt=True,
                tokenize=True,
            )
        )
    )
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.models.split(","):
            policy = Path(scratch) / name
            if name == "tiny":
                shape = tiny_shape(policy)
            else:
                shape = save_random_qwen(name, policy, torch.bfloat16)
            for mode in args.modes.split(","):
                steps = run_mode(
                    policy,
                    mode=mode,
                    args=args,
                    device=args.device_kind,
                    out=Path(scratch) / f"run-{name}-{mode}",
                )
                summary = summarise(steps, shape, args, bandwidth, peak, prompt_tokens)
                rows.append({"model": name, "mode": mode, "params": shape.params, **summary})
    header = (
        "| model | cache | params | rollout tok/s | bound tok/s | % of bound | update tok/s "
        "| update MFU % | s/step |\n|---|---|---|---|---|---|---|---|---|"
    )
    lines = [header] + [
        f"| {r['model']} | {r['mode']} | {r['params'] / 1e6:.0f}M | {r['rollout_tok_s']:.0f} "
        f"| {r['bound_tok_s']:.0f} | {r['rollout_pct_bound']:.1f} | {r['update_tok_s']:.0f} "
        f"| {r['update_mfu_pct']:.1f} | {r['step_s']:.1f} |"
        for r in rows
    ]
    table = "\n".join(lines)
    print(table)
    print(json.dumps(rows))
    if not args.dry_run and not args.no_write:
        device_name = torch.cuda.get_device_name(0)
        write_section(
            "train_gpu",
            f"{machine_line()}; GPU {device_name}; measured copy bandwidth "
            f"{bandwidth / 1e9:.0f} GB/s, bf16 matmul peak {peak / 1e12:.0f} TFLOP/s.\n"
            f"GRPO, {args.prompts} prompts x {args.generations} generations x {args.max_tokens} "
            f"new tokens, gradient accumulation {args.grad_accum}, heuristic judge, "
            f"{args.steps} steps (first is warm-up). 'static' = our CUDA path "
            "(bf16 + static KV cache); 'dynamic' = TRL defaults (dynamic cache); 'vllm' = "
            "vLLM colocated.\n\n" + table,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
