"""Rubric grading for evaluation: several dimensions of one response scored on a fixed scale.

Three benchmarks grade a response on a rubric rather than comparing two responses:

* LongBench-Write quality: six dimensions, 1-5 each (:data:`LONGBENCH_WRITE_QUALITY`);
* WritingBench: one query-specific criterion at a time, 1-10 (:func:`criterion_rubric`);
* Creative Writing Bench (EQ-Bench v3 style): many criteria, 0-20 each (:func:`creative_rubric`).

A :class:`RubricGrader` turns ``RubricRequest`` s into ``RubricScore`` s. Three graders:

* :class:`EndpointGrader`: any OpenAI-compatible endpoint through the judging package's
  :class:`~rl_engine.judging.transport.ChatTransport`; the judge answers JSON, an invalid
  answer is asked again (``max_reasks``), then reported as an error, never a zero;
* :class:`LocalGrader`: a local transformers model read through its next-token
  probabilities over the scale's values, one dimension per forward pass; always valid;
* :class:`HeuristicGrader`: deterministic text features, not an LLM; for plumbing and tests.

The prompts are ours; their ``identity`` (a hash of the text) is stored with results so
changing a prompt is visible in stored evaluations.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from rl_engine.evaluation.metrics import QUALITY_DIMENSIONS
from rl_engine.judging.usage import Usage
from rl_engine.text import count_words, repetition_rate

__all__ = [
    "LONGBENCH_WRITE_QUALITY",
    "Dimension",
    "EndpointGrader",
    "HeuristicGrader",
    "LocalGrader",
    "Rubric",
    "RubricGrader",
    "RubricRequest",
    "RubricScore",
    "creative_rubric",
    "criterion_rubric",
    "parse_rubric_answer",
]

Message = dict[str, str]


@dataclass(frozen=True)
class Dimension:
    """One thing a grader scores. ``negative`` dimensions are faults (higher = worse)."""

    key: str
    description: str = ""
    negative: bool = False


@dataclass(frozen=True)
class Rubric:
    """Dimensions scored on the integer scale ``low..high``, with the grading instructions."""

    name: str
    dimensions: tuple[Dimension, ...]
    low: int
    high: int
    guidance: str

    def __post_init__(self) -> None:
        if not self.dimensions:
            raise ValueError(f"rubric {self.name!r} has no dimensions")
        if self.low >= self.high:
            raise ValueError(f"rubric {self.name!r}: low {self.low} must be below high {self.high}")
        keys = [d.key for d in self.dimensions]
        if len(set(keys)) != len(keys):
            raise ValueError(f"rubric {self.name!r} repeats a dimension: {keys}")

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(d.key for d in self.dimensions)

    @property
    def identity(self) -> str:
        text = json.dumps(
            [self.name, self.low, self.high, self.guidance, _SYSTEM, _USER]
            + [[d.key, d.description, d.negative] for d in self.dimensions]
        )
        return f"{self.name}:{hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]}"


@dataclass(frozen=True)
class RubricRequest:
    """Grade ``response`` to ``instruction`` on ``rubric``."""

    instruction: str
    response: str
    rubric: Rubric


@dataclass
class RubricScore:
    """The grade of one request: ``values`` (dimension key -> integer on the rubric's scale),
    or None with the reason in ``error`` when no valid grade came back."""

    values: dict[str, int] | None
    reason: str = ""
    raw: Any = None
    attempts: int = 0
    latency_s: float = 0.0
    error: str | None = None
    grader: str = ""
    usage: Usage = field(default_factory=Usage)


@runtime_checkable
class RubricGrader(Protocol):
    """Grades rubric requests; returns one score per request, in order, and never raises for
    a failed grade (that is a RubricScore with ``values=None`` and an error)."""

    name: str

    async def grade(self, requests: Sequence[RubricRequest]) -> list[RubricScore]: ...


# -- rubrics -----------------------------------------------------------------------------------

_QUALITY_DESCRIPTIONS = {
    "relevance": "Does the response address the request and stay on its topic and form?",
    "accuracy": "Are facts, reasoning and details correct and free of fabrication?",
    "coherence": "Is it logically organised, each part following from the last?",
    "clarity": "Is the language clear, precise and easy to follow?",
    "breadth and depth": "Does it cover the subject widely and go into substance?",
    "reading experience": "Is it engaging and pleasant to read, without repetition or filler?",
}

LONGBENCH_WRITE_QUALITY = Rubric(
    name="longbench-write-quality-v1",
    dimensions=tuple(Dimension(key, _QUALITY_DESCRIPTIONS[key]) for key in QUALITY_DIMENSIONS),
    low=1,
    high=5,
    guidance=(
        "Judge the quality of the writing only. Do not judge its length: length is scored "
        "separately. 1 is very poor, 3 is acceptable, 5 is excellent. Be strict."
    ),
)


def criterion_rubric(name: str, description: str) -> Rubric:
    """A WritingBench criterion as a one-dimension 1-10 rubric (key ``"score"``)."""
    return Rubric(
        name="writingbench-criterion-v1",
        dimensions=(Dimension("score", f"{name}: {description}".strip(": ")),),
        low=1,
        high=10,
        guidance=(
            "Score only this criterion, from 1 (fails it entirely) to 10 (meets it perfectly). "
            "Severe repetition is a serious failure."
        ),
    )


def creative_rubric(criteria: Sequence[str], negative: Sequence[str] = ()) -> Rubric:
    """An EQ-Bench-style creative-writing rubric: every criterion scored 0-20.

    ``negative`` names the criteria that are faults (e.g. "Purple prose"), scored 20 when the
    fault is severe; aggregation inverts them.
    """
    faults = set(negative)
    unknown = faults - set(criteria)
    if unknown:
        raise ValueError(f"negative criteria {sorted(unknown)} are not among the criteria")
    return Rubric(
        name="creative-rubric-v1",
        dimensions=tuple(Dimension(c, "", c in faults) for c in criteria),
        low=0,
        high=20,
        guidance=(
            "You are grading a piece of creative writing. 0 is the lowest and 20 the highest "
            "amount of each quality. Criteria marked (fault) measure a flaw: score them high "
            "when the flaw is severe. Be demanding; do not reward length."
        ),
    )


# -- prompts and parsing ------------------------------------------------------------------------

_SYSTEM = (
    "You are an expert, strict judge of writing. {guidance}\n"
    "Answer with one JSON object only, mapping each dimension's exact name to an integer from "
    '{low} to {high}, plus "reason": a one-sentence justification. Example: {example}'
)
_USER = (
    "[User instruction]\n{instruction}\n\n[Dimensions]\n{dimensions}\n\n"
    "[The start of the response]\n{response}\n[The end of the response]"
)


def _dimension_lines(rubric: Rubric) -> str:
    lines = []
    for d in rubric.dimensions:
        mark = " (fault)" if d.negative else ""
        lines.append(f"- {d.key}{mark}" + (f": {d.description}" if d.description else ""))
    return "\n".join(lines)


def render_messages(request: RubricRequest) -> list[Message]:
    """The chat messages that ask an LLM for ``request``'s grade as JSON."""
    rubric = request.rubric
    example = json.dumps({**{k: rubric.high for k in rubric.keys[:2]}, "reason": "..."})
    system = _SYSTEM.format(
        guidance=rubric.guidance, low=rubric.low, high=rubric.high, example=example
    )
    user = _USER.format(
        instruction=request.instruction,
        dimensions=_dimension_lines(rubric),
        response=request.response,
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _normalise(key: str) -> str:
    return " ".join(key.lower().replace("_", " ").replace("-", " ").replace("&", "and").split())


_JSON_OBJECT = re.compile(r"\{[^{}]*\}", re.DOTALL)


def parse_rubric_answer(text: str, rubric: Rubric) -> tuple[dict[str, int], str]:
    """The grade in a judge's answer: the last JSON object that names every dimension.

    Keys match loosely (case, ``_``/``-``/spaces, ``&``); values must be integers (or
    integral numbers / numeric strings) on the rubric's scale. Raises ValueError saying what
    was wrong, which the endpoint grader sends back to the judge.

    >>> r = criterion_rubric("Tone", "formal")
    >>> parse_rubric_answer('Sure. {"score": 7, "reason": "ok"}', r)
    ({'score': 7}, 'ok')
    """
    candidates = _JSON_OBJECT.findall(text)
    if not candidates:
        raise ValueError("no JSON object in the answer")
    problem = "no JSON object in the answer"
    wanted = {_normalise(k): k for k in rubric.keys}
    for chunk in reversed(candidates):
        try:
            payload = json.loads(chunk)
        except ValueError:
            problem = "the JSON object does not parse"
            continue
        if not isinstance(payload, dict):
            continue
        found: dict[str, int] = {}
        reason = str(payload.get("reason", ""))
        try:
            for raw_key, raw_value in payload.items():
                key = wanted.get(_normalise(str(raw_key)))
                if key is None:
                    continue
                found[key] = _as_score(key, raw_value, rubric)
        except ValueError as error:
            problem = str(error)
            continue
        missing = [k for k in rubric.keys if k not in found]
        if missing:
            problem = f"missing dimension(s): {', '.join(missing)}"
            continue
        return found, reason
    raise ValueError(problem)


def _as_score(key: str, value: Any, rubric: Rubric) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"dimension {key!r} must be an integer, got {value!r}")
    if not rubric.low <= value <= rubric.high:
        raise ValueError(
            f"dimension {key!r} must be from {rubric.low} to {rubric.high}, got {value}"
        )
    return value


# -- endpoint grader ----------------------------------------------------------------------------


class EndpointGrader:
    """Grades through an OpenAI-compatible endpoint (a ``ChatTransport``), one call per
    request, re-asking up to ``max_reasks`` times when the answer is not a valid grade."""

    def __init__(self, transport: Any, max_reasks: int = 2, name: str | None = None) -> None:
        self.transport = transport
        self.max_reasks = max_reasks
        self.name = name or f"endpoint:{transport.model}"

    async def grade(self, requests: Sequence[RubricRequest]) -> list[RubricScore]:
        return list(await asyncio.gather(*(self._grade_one(r) for r in requests)))

    async def _grade_one(self, request: RubricRequest) -> RubricScore:
        messages = render_messages(request)
        started = time.perf_counter()
        attempts = 0
        usage = Usage()
        answers: list[str] = []
        error = "no answer"
        for _ in range(self.max_reasks + 1):
            result = await self.transport.complete(messages)
            attempts += result.attempts
            usage = usage + result.usage
            if result.content is None:
                return RubricScore(
                    None, "", answers, attempts, time.perf_counter() - started,
                    error=f"judge call failed: {result.error}", grader=self.name, usage=usage,
                )  # fmt: skip
            answers.append(result.content)
            try:
                values, reason = parse_rubric_answer(result.content, request.rubric)
            except ValueError as problem:
                messages = [
                    *messages,
                    {"role": "assistant", "content": result.content},
                    {
                        "role": "user",
                        "content": f"That answer is not valid ({problem}). Answer again with "
                        "the JSON object only.",
                    },
                ]
                error = f"invalid grade after {len(answers)} answer(s): {problem}"
                continue
            return RubricScore(
                values, reason, answers, attempts, time.perf_counter() - started,
                grader=self.name, usage=usage,
            )  # fmt: skip
        return RubricScore(
            None, "", answers, attempts, time.perf_counter() - started, error=error,
            grader=self.name, usage=usage,
        )  # fmt: skip


# -- local grader -------------------------------------------------------------------------------

_LOCAL_SYSTEM = (
    "You are a strict judge of writing. {guidance} Score the response on every dimension "
    "listed, one per line, as the dimension's name, a colon and a number from {low} to {high}."
)
_LOCAL_USER = (
    "[Instruction]\n{instruction}\n\n[Dimensions]\n{dimensions}\n\n"
    "[The start of the response]\n{response}\n[The end of the response]"
)


class LocalGrader:
    """A local causal LM as grader, read through next-token probabilities.

    The judge "writes" its grade one line per dimension (``name: value``); at each value the
    scale value with the most probable token is taken and written, then the next dimension's
    name follows. The instruction and response are encoded once per request and every
    dimension reuses the KV cache, so six dimensions cost one long forward pass plus six
    short ones. Every value of the scale must be a single token (1-5 and 1-9 are in SmolLM2's
    tokenizer; 10 and 20 are not): other scales raise ValueError before any work.
    ``max_input_tokens`` truncates the response (kept from its start) so the prompt fits the
    window. The grade is always valid; ``raw`` keeps each dimension's probabilities.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        batch_size: int = 8,
        max_input_tokens: int = 1536,
        name: str | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_input_tokens = max_input_tokens
        self.name = name or f"local:{getattr(model.config, '_name_or_path', '') or 'model'}"

    def _option_ids(self, rubric: Rubric) -> list[int]:
        ids = []
        for value in range(rubric.low, rubric.high + 1):
            tokens = self.tokenizer.encode(str(value), add_special_tokens=False)
            if len(tokens) != 1:
                raise ValueError(
                    f"LocalGrader needs every value of rubric {rubric.name!r} to be one token; "
                    f"{value} is {len(tokens)} tokens. Use an endpoint grader for this rubric."
                )
            ids.append(tokens[0])
        return ids

    def _truncate(self, text: str) -> str:
        tokens = self.tokenizer.encode(text, add_special_tokens=False)
        if len(tokens) <= self.max_input_tokens:
            return text
        return str(self.tokenizer.decode(tokens[: self.max_input_tokens]))

    def _prompt_ids(self, request: RubricRequest) -> list[int]:
        rubric = request.rubric
        messages = [
            {
                "role": "system",
                "content": _LOCAL_SYSTEM.format(
                    guidance=rubric.guidance, low=rubric.low, high=rubric.high
                ),
            },
            {
                "role": "user",
                "content": _LOCAL_USER.format(
                    instruction=request.instruction,
                    dimensions=_dimension_lines(rubric),
                    response=self._truncate(request.response),
                ),
            },
        ]
        text = str(
            self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        )
        label = self._label_ids(rubric.dimensions[0], first=True)
        return list(self.tokenizer.encode(text, add_special_tokens=False)) + label

    def _label_ids(self, dimension: Dimension, first: bool = False) -> list[int]:
        text = ("" if first else "\n") + f"{dimension.key}: "
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    async def grade(self, requests: Sequence[RubricRequest]) -> list[RubricScore]:
        return await asyncio.to_thread(self.grade_sync, requests)

    def grade_sync(self, requests: Sequence[RubricRequest]) -> list[RubricScore]:
        """Blocking form of :meth:`grade` (the work is local compute anyway)."""
        for request in requests:
            self._option_ids(request.rubric)  # fail before any work
        # Batch requests that share a rubric: their dimension labels are the same tokens.
        by_rubric: dict[Rubric, list[int]] = {}
        for index, request in enumerate(requests):
            by_rubric.setdefault(request.rubric, []).append(index)
        scores: list[RubricScore | None] = [None] * len(requests)
        for rubric, indices in by_rubric.items():
            # Similar lengths side by side: less left padding to compute through.
            indices.sort(key=lambda i: len(requests[i].instruction) + len(requests[i].response))
            for start in range(0, len(indices), self.batch_size):
                batch = indices[start : start + self.batch_size]
                for index, score in zip(
                    batch, self._grade_batch(rubric, [requests[i] for i in batch]), strict=True
                ):
                    scores[index] = score
        return [s for s in scores if s is not None]

    def _grade_batch(self, rubric: Rubric, requests: Sequence[RubricRequest]) -> list[RubricScore]:
        import torch

        began = time.perf_counter()
        options = self._option_ids(rubric)
        prompts = [self._prompt_ids(r) for r in requests]
        device = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id
        width = max(len(p) for p in prompts)
        # Left padding, with explicit positions so padded rows count from their first token.
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        values: list[dict[str, int]] = [{} for _ in requests]
        raws: list[dict[str, list[float]]] = [{} for _ in requests]
        # The cache argument was renamed in transformers 5.x (past_key_values -> cache); the
        # cache object is updated in place, so one object serves every step.
        from transformers import DynamicCache

        cache_arg = (
            "cache"
            if "cache" in inspect.signature(self.model.forward).parameters
            else "past_key_values"
        )
        cache = {cache_arg: DynamicCache(config=self.model.config)}
        with torch.inference_mode():
            out = self.model(
                input_ids=input_ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                **cache,
            )
            logits = out.logits[:, -1, :].float()
            last_position = positions[:, -1]
            for step, dimension in enumerate(rubric.dimensions):
                probs = torch.softmax(logits[:, options], dim=-1)
                chosen = probs.argmax(dim=-1)
                for row in range(len(requests)):
                    values[row][dimension.key] = rubric.low + int(chosen[row])
                    raws[row][dimension.key] = [round(float(p), 4) for p in probs[row]]
                if step + 1 == len(rubric.dimensions):
                    break
                label = self._label_ids(rubric.dimensions[step + 1])
                chosen_ids = torch.tensor([options[int(c)] for c in chosen], device=device)
                new = torch.cat(
                    [
                        chosen_ids[:, None],
                        torch.tensor(label, device=device).expand(len(requests), -1),
                    ],
                    dim=1,
                )
                mask = torch.cat([mask, torch.ones_like(new)], dim=1)
                new_positions = (
                    last_position[:, None] + 1 + torch.arange(new.shape[1], device=device)
                )
                out = self.model(
                    input_ids=new,
                    attention_mask=mask,
                    position_ids=new_positions,
                    use_cache=True,
                    **cache,
                )
                logits = out.logits[:, -1, :].float()
                last_position = new_positions[:, -1]
        spent = (time.perf_counter() - began) / len(requests)
        return [
            RubricScore(
                values[row],
                "next-token probabilities over the scale",
                raws[row],
                1,
                spent,
                grader=self.name,
            )
            for row in range(len(requests))
        ]


# -- heuristic grader ---------------------------------------------------------------------------

_WORD = re.compile(r"[a-zA-Z]{3,}|[\u4e00-\u9fff]")


@dataclass
class HeuristicGrader:
    """Deterministic grades from text features; NOT an LLM judge.

    Each dimension gets a quality in [0, 1] from coverage of the instruction's words,
    repetition and substance (word count against ``target_words``), mapped onto the scale
    (faults get the complement). An empty response gets the bottom of the scale.
    """

    target_words: int = 300
    name: str = "heuristic"
    _weights: Mapping[str, tuple[float, float, float]] = field(
        default_factory=lambda: {
            "relevance": (0.7, 0.2, 0.1),
            "accuracy": (0.4, 0.4, 0.2),
            "coherence": (0.2, 0.7, 0.1),
            "clarity": (0.2, 0.6, 0.2),
            "breadth and depth": (0.3, 0.2, 0.5),
            "reading experience": (0.2, 0.5, 0.3),
        }
    )

    def features(self, instruction: str, response: str) -> tuple[float, float, float]:
        """(coverage, freshness = 1 - repetition, substance), each in [0, 1]."""
        asked = {w.lower() for w in _WORD.findall(instruction)}
        given = {w.lower() for w in _WORD.findall(response)}
        coverage = len(asked & given) / len(asked) if asked else 1.0
        freshness = 1.0 - repetition_rate(response)
        substance = min(1.0, math.log1p(count_words(response)) / math.log1p(self.target_words))
        return coverage, freshness, substance

    async def grade(self, requests: Sequence[RubricRequest]) -> list[RubricScore]:
        return self.grade_sync(requests)

    def grade_sync(self, requests: Sequence[RubricRequest]) -> list[RubricScore]:
        scores = []
        for request in requests:
            rubric = request.rubric
            if not request.response.strip():
                values = {
                    d.key: (rubric.high if d.negative else rubric.low) for d in rubric.dimensions
                }
                scores.append(RubricScore(values, "empty response", None, 0, 0.0, grader=self.name))
                continue
            feats = self.features(request.instruction, request.response)
            values = {}
            for d in rubric.dimensions:
                w = self._weights.get(_normalise(d.key), (0.4, 0.4, 0.2))
                quality = sum(a * b for a, b in zip(w, feats, strict=True)) / sum(w)
                if d.negative:
                    quality = 1.0 - quality
                values[d.key] = rubric.low + round(quality * (rubric.high - rubric.low))
            reason = "coverage {:.2f}, freshness {:.2f}, substance {:.2f}".format(*feats)
            scores.append(RubricScore(values, reason, list(feats), 0, 0.0, grader=self.name))
        return scores
