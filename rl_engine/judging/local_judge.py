"""A pairwise judge on a local transformers causal LM, read from next-token probabilities.

The prompt asks for one letter — A, B or C (tie) — and the model's probabilities for those
three tokens at the first answer position decide the verdict. No text is generated, so a
batch costs one forward pass, and the probabilities are kept in ``raw`` for audit.

Deciding (documented contract):
- ``mass`` = p(A) + p(B) + p(C) under the full softmax. Below ``min_mass`` the model is not
  answering the question at all and the judgment is INVALID (off by default: 0.0).
- With q = p / mass: TIE when q(C) is the largest, or when |q(A) - q(B)| < ``tie_margin``
  (close calls are ties rather than coin flips); otherwise the larger of A and B wins.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import torch

from rl_engine.judging.prompts import LOCAL_PAIRWISE, PairwiseTemplate
from rl_engine.judging.types import Judgment, PairRequest
from rl_engine.judging.verdict import Verdict

__all__ = ["LocalJudge"]

_LETTERS = ("A", "B", "C")


class LocalJudge:
    """Judge with ``model`` (a transformers causal LM) and its ``tokenizer``, ``batch_size``
    pairs per forward pass (left-padded, with position ids that skip the padding, so a batched
    verdict equals the one-by-one verdict)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        batch_size: int = 8,
        *,
        tie_margin: float = 0.1,
        min_mass: float = 0.0,
        template: PairwiseTemplate = LOCAL_PAIRWISE,
        name: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if not 0.0 <= tie_margin <= 1.0:
            raise ValueError(f"tie_margin is a probability difference in [0, 1], got {tie_margin}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.tie_margin = tie_margin
        self.min_mass = min_mass
        self.template = template
        self.name = name or f"local:{getattr(model.config, '_name_or_path', '') or 'model'}"
        self.letter_ids = [self._single_token_id(letter) for letter in _LETTERS]

    def _single_token_id(self, letter: str) -> int:
        ids = self.tokenizer.encode(letter, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(
                f"LocalJudge needs {letter!r} to be one token, but this tokenizer splits it "
                f"into {ids}; use a tokenizer with single-letter tokens"
            )
        return int(ids[0])

    @property
    def identity(self) -> str:
        return f"{self.name}|margin={self.tie_margin}|min_mass={self.min_mass}"

    def template_identity(self, request: PairRequest) -> str:
        return self.template.identity

    def prompt(self, request: PairRequest) -> str:
        """The text fed to the model: the chat template with the assistant turn opened."""
        messages = self.template.render(request)
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
            return str(text)
        return "\n\n".join(m["content"] for m in messages) + "\n\nAnswer: "

    @torch.inference_mode()
    def letter_probabilities(self, prompts: Sequence[str]) -> torch.Tensor:
        """p(A), p(B), p(C) of the next token after each prompt: a (len(prompts), 3) tensor."""
        tokenizer = self.tokenizer
        saved_side = tokenizer.padding_side
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        try:
            encoded = tokenizer(
                list(prompts), return_tensors="pt", padding=True, add_special_tokens=False
            )
        finally:
            tokenizer.padding_side = saved_side
        device = next(self.model.parameters()).device
        input_ids = encoded["input_ids"].to(device)
        attention_mask = encoded["attention_mask"].to(device)
        # Left padding shifts positions; count them from each prompt's first real token.
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        output = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            logits_to_keep=1,
        )
        logits = output.logits[:, -1, :].float()
        probabilities = torch.softmax(logits, dim=-1)
        return probabilities[:, self.letter_ids].cpu()

    def decide(self, p_a: float, p_b: float, p_c: float) -> tuple[Verdict, str | None]:
        """The verdict for three letter probabilities, by the rule in the module docstring."""
        mass = p_a + p_b + p_c
        if mass <= 0.0 or mass < self.min_mass:
            return Verdict.INVALID, (
                f"the model put {mass:.3g} of its probability on A/B/C (min_mass {self.min_mass})"
            )
        q_a, q_b, q_c = p_a / mass, p_b / mass, p_c / mass
        if q_c >= max(q_a, q_b) or abs(q_a - q_b) < self.tie_margin:
            return Verdict.TIE, None
        return (Verdict.A if q_a > q_b else Verdict.B), None

    def compare_sync(self, requests: Sequence[PairRequest]) -> list[Judgment]:
        judgments: list[Judgment] = []
        for start in range(0, len(requests), self.batch_size):
            batch = requests[start : start + self.batch_size]
            began = time.perf_counter()
            probabilities = self.letter_probabilities([self.prompt(r) for r in batch])
            per_pair = (time.perf_counter() - began) / len(batch)
            for row in probabilities.tolist():
                p_a, p_b, p_c = (float(x) for x in row)
                verdict, error = self.decide(p_a, p_b, p_c)
                judgments.append(
                    Judgment(
                        verdict=verdict,
                        rationale=f"p(A)={p_a:.4g} p(B)={p_b:.4g} p(C)={p_c:.4g}",
                        raw={"p_A": p_a, "p_B": p_b, "p_C": p_c, "mass": p_a + p_b + p_c},
                        attempts=1,
                        latency_s=per_pair,
                        error=error,
                        judge=self.name,
                    )
                )
        return judgments

    async def compare(self, requests: Sequence[PairRequest]) -> list[Judgment]:
        # A forward pass blocks; run it off the event loop.
        return await asyncio.to_thread(self.compare_sync, requests)
