"""Writers: models that produce references (an OpenAI-compatible endpoint or a local model),
with a plan-then-write mode for long targets.

Plan-then-write (AgentWrite, from LongWriter): first ask for an outline that gives each
section a main point and a word budget summing to the required length, then write the
sections — one after another, each seeing the text so far, or all at once ("+Parallel",
faster, less coherent) — and join them. Models that stop after ~1-2k words reach 10k+ words
this way.

Every writer is synchronous (``write(tasks) -> list[WriterOutput]``) and batches internally:
an endpoint writer sends up to ``max_concurrency`` requests at once, a local writer batches
prompts through ``model.generate``. A failed generation is an output with ``text=None`` and
the ``error``, never an empty string.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "LocalWriter",
    "OpenAIWriter",
    "PlanSection",
    "Writer",
    "WriterOutput",
    "WriterSpec",
    "WritingTask",
    "make_writer",
    "parse_plan",
]

Messages = list[dict[str, str]]
WRITER_KINDS = ("openai", "local")

PLAN_PROMPT = (
    "I need you to help me break down the following long-form writing instruction into "
    "{sections} subtasks. Each subtask will guide the writing of one section of the text, and "
    "should specify the main point and the word count of that section. The word counts must "
    "add up to about {words} words.\n\n"
    "The writing instruction is as follows:\n\n{instruction}\n\n"
    "Answer with one line per section, in this format and nothing else:\n"
    "Section 1 - Main point: [the main point of the section] - Word count: [N] words\n"
)
SECTION_PROMPT = (
    "You are an excellent writing assistant. I will give you an original writing instruction "
    "and my planned writing steps{so_far_note}. Please help me continue writing the next "
    "section according to the plan.\n\n"
    "Writing instruction:\n{instruction}\n\n"
    "Writing plan:\n{plan}\n\n"
    "{so_far}"
    "Now write section {index} of {count}: {point}\n"
    "Write about {budget} words. Output only the text of this section, without a heading that "
    "repeats the plan and without commenting on the task."
)
_PLAN_LINE = re.compile(
    r"main\s*point\s*[:：]\s*(?P<point>.+?)\s*[-–—|]+\s*word\s*count\s*[:：]\s*(?P<words>\d[\d,]*)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class WritingTask:
    """One instruction to write for; ``required_words`` switches plan-then-write on."""

    instruction: str
    required_words: int | None = None


@dataclass(frozen=True)
class PlanSection:
    point: str
    words: int


@dataclass
class WriterOutput:
    """A writer's answer: ``text`` or, when generation failed, ``error``."""

    text: str | None
    error: str | None = None
    plan: list[PlanSection] | None = None
    calls: int = 1


@dataclass
class WriterSpec:
    """How to build a writer (JSON-safe, for pipeline jobs and the dashboard).

    ``plan_then_write`` applies to tasks whose required words are at least
    ``plan_min_words``; each section gets about ``section_words`` words.
    """

    name: str
    kind: str = "local"
    model: str = ""
    base_url: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    system_prompt: str = ""
    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 1024
    max_concurrency: int = 16
    timeout_s: float = 300.0
    max_retries: int = 3
    plan_then_write: bool = False
    plan_min_words: int = 1500
    section_words: int = 500
    parallel_sections: bool = False
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("WriterSpec.name is empty: name the writer (it labels references)")
        if self.kind not in WRITER_KINDS:
            raise ValueError(f"WriterSpec.kind must be one of {', '.join(WRITER_KINDS)}")
        if self.max_new_tokens < 1:
            raise ValueError("WriterSpec.max_new_tokens must be at least 1")
        if self.temperature < 0:
            raise ValueError("WriterSpec.temperature must be >= 0 (0 decodes greedily)")
        if self.section_words < 50:
            raise ValueError("WriterSpec.section_words must be at least 50")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> WriterSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise ValueError(f"unknown WriterSpec field(s): {', '.join(unknown)}")
        return cls(**dict(payload))


class Writer(Protocol):
    name: str

    def write(self, tasks: Sequence[WritingTask]) -> list[WriterOutput]: ...


Completion = tuple[str | None, str | None]  # (text, error)
CompleteBatch = Callable[[Sequence[Messages]], list[Completion]]


def parse_plan(text: str) -> list[PlanSection]:
    """The sections of an outline answer (lines with "Main point: ... - Word count: N")."""
    sections = []
    for match in _PLAN_LINE.finditer(text):
        words = int(match.group("words").replace(",", ""))
        point = match.group("point").strip().strip("[]").strip()
        if words > 0 and point:
            sections.append(PlanSection(point=point, words=words))
    return sections


def _even_plan(required: int, count: int) -> list[PlanSection]:
    share = max(required // count, 1)
    return [PlanSection(point=f"part {i + 1} of the text", words=share) for i in range(count)]


def _user(system_prompt: str, content: str) -> Messages:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*messages, {"role": "user", "content": content}]


class _BaseWriter:
    spec: WriterSpec
    name: str

    def complete_batch(self, conversations: Sequence[Messages]) -> list[Completion]:
        raise NotImplementedError

    def _plans(self, tasks: Sequence[WritingTask]) -> list[bool]:
        return [
            self.spec.plan_then_write
            and task.required_words is not None
            and task.required_words >= self.spec.plan_min_words
            for task in tasks
        ]

    def write(self, tasks: Sequence[WritingTask]) -> list[WriterOutput]:
        """Write every task: direct tasks in one batch, long ones plan-then-write."""
        outputs: list[WriterOutput | None] = [None] * len(tasks)
        planned = self._plans(tasks)
        direct = [i for i, plan in enumerate(planned) if not plan]
        if direct:
            answers = self.complete_batch(
                [_user(self.spec.system_prompt, tasks[i].instruction) for i in direct]
            )
            for i, (text, error) in zip(direct, answers, strict=True):
                outputs[i] = WriterOutput(text=text, error=error)
        long_tasks = [i for i, plan in enumerate(planned) if plan]
        if long_tasks:
            for i, output in zip(
                long_tasks, self._plan_then_write([tasks[i] for i in long_tasks]), strict=True
            ):
                outputs[i] = output
        return [output for output in outputs if output is not None]

    def _plan_then_write(self, tasks: Sequence[WritingTask]) -> list[WriterOutput]:
        spec = self.spec
        counts = [
            max(2, math.ceil((task.required_words or spec.section_words) / spec.section_words))
            for task in tasks
        ]
        plan_answers = self.complete_batch(
            [
                _user(
                    spec.system_prompt,
                    PLAN_PROMPT.format(
                        sections=count, words=task.required_words, instruction=task.instruction
                    ),
                )
                for task, count in zip(tasks, counts, strict=True)
            ]
        )
        plans: list[list[PlanSection]] = []
        for task, count, (text, _) in zip(tasks, counts, plan_answers, strict=True):
            # An outline that cannot be read still gets written, in even parts.
            parsed = parse_plan(text or "")
            plans.append(parsed or _even_plan(task.required_words or 0, count))
        written: list[list[str]] = [[] for _ in tasks]
        errors: list[str | None] = [None] * len(tasks)
        calls = [1] * len(tasks)

        def section_messages(t: int, s: int, previous: list[str]) -> Messages:
            plan_text = "\n".join(
                f"Section {k + 1} - Main point: {p.point} - Word count: {p.words} words"
                for k, p in enumerate(plans[t])
            )
            so_far = f"Text written so far:\n{chr(10).join(previous)}\n\n" if previous else ""
            return _user(
                spec.system_prompt,
                SECTION_PROMPT.format(
                    so_far_note=" and the text written so far" if previous else "",
                    instruction=tasks[t].instruction,
                    plan=plan_text,
                    so_far=so_far,
                    index=s + 1,
                    count=len(plans[t]),
                    point=plans[t][s].point,
                    budget=plans[t][s].words,
                ),
            )

        if spec.parallel_sections:
            jobs = [(t, s) for t in range(len(tasks)) for s in range(len(plans[t]))]
            answers = self.complete_batch([section_messages(t, s, []) for t, s in jobs])
            for (t, _), (text, error) in zip(jobs, answers, strict=True):
                calls[t] += 1
                if text is None:
                    errors[t] = errors[t] or error or "a section failed"
                else:
                    written[t].append(text.strip())
        else:
            # Section s of every task in one batch, then section s + 1 (which sees section s).
            rounds = max(len(plan) for plan in plans)
            for s in range(rounds):
                pending = [t for t in range(len(tasks)) if s < len(plans[t]) and errors[t] is None]
                if not pending:
                    break
                answers = self.complete_batch([section_messages(t, s, written[t]) for t in pending])
                for t, (text, error) in zip(pending, answers, strict=True):
                    calls[t] += 1
                    if text is None:
                        errors[t] = error or f"section {s + 1} failed"
                    else:
                        written[t].append(text.strip())
        return [
            WriterOutput(
                text=None if errors[t] else "\n\n".join(written[t]),
                error=errors[t],
                plan=plans[t],
                calls=calls[t],
            )
            for t in range(len(tasks))
        ]


class OpenAIWriter(_BaseWriter):
    """A writer behind an OpenAI-compatible chat endpoint (OpenAI, vLLM, DashScope)."""

    def __init__(self, spec: WriterSpec, api_key: str | None = None) -> None:
        from rl_engine.judging._aio import BackgroundLoop
        from rl_engine.judging.transport import ChatTransport, RetryPolicy

        self.spec = spec
        self.name = spec.name
        self.transport = ChatTransport(
            spec.base_url,
            spec.model,
            api_key=api_key if api_key is not None else os.environ.get(spec.api_key_env),
            max_concurrency=spec.max_concurrency,
            timeout_s=spec.timeout_s,
            retry=RetryPolicy(max_retries=spec.max_retries),
            temperature=spec.temperature,
            max_tokens=spec.max_new_tokens,
            extra_body={"top_p": spec.top_p} if spec.top_p < 1 else None,
            seed=spec.seed,
        )
        self._loop = BackgroundLoop(f"writer-{spec.name}")

    def complete_batch(self, conversations: Sequence[Messages]) -> list[Completion]:
        async def run() -> list[Completion]:
            results = await asyncio.gather(*(self.transport.complete(m) for m in conversations))
            return [
                (r.content, None) if r.content is not None else (None, r.error or "no answer")
                for r in results
            ]

        return self._loop.run(run())


class LocalWriter(_BaseWriter):
    """A writer running a local transformers model (e.g. SmolLM2) in this process.

    Local chat templates often add their own system prompt, so ``system_prompt`` is put at the
    top of the user turn.
    """

    def __init__(self, spec: WriterSpec, model: Any = None, tokenizer: Any = None) -> None:
        self.spec = spec
        self.name = spec.name
        if model is None or tokenizer is None:
            from rl_engine.models import load_policy

            model, tokenizer = load_policy(spec.model or "smollm2-135m-instruct", device="cpu")
        self.model, self.tokenizer = model, tokenizer

    def complete_batch(self, conversations: Sequence[Messages]) -> list[Completion]:
        from rl_engine.models import generate

        prompts = [
            "\n\n".join(m["content"] for m in messages if m["role"] in {"system", "user"})
            for messages in conversations
        ]
        try:
            texts = generate(
                self.model,
                self.tokenizer,
                prompts,
                max_new_tokens=self.spec.max_new_tokens,
                temperature=self.spec.temperature,
                top_p=self.spec.top_p,
                batch_size=int(self.spec.extra.get("batch_size", 8)),
                seed=self.spec.seed,
            )
        except (RuntimeError, ValueError) as error:
            return [(None, f"local generation failed: {error}")] * len(prompts)
        return [
            (text.strip(), None) if text.strip() else (None, "empty generation") for text in texts
        ]


def make_writer(spec: WriterSpec | Mapping[str, Any], **local: Any) -> Writer:
    """The writer a spec describes; ``local`` may pass ``model`` and ``tokenizer`` to share a
    loaded model between several local writers."""
    if not isinstance(spec, WriterSpec):
        spec = WriterSpec.from_dict(spec)
    if spec.kind == "openai":
        return OpenAIWriter(spec)
    return LocalWriter(spec, **local)
