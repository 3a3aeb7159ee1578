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
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rl_engine.judging._aio import BackgroundLoop
from rl_engine.judging.endpoints import EndpointRegistry, EndpointSpec, default_registry
from rl_engine.judging.transport import build_transport
from rl_engine.judging.usage import Usage

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
    """A writer's answer: ``text`` or, when generation failed, ``error``. ``plan_fallback``:
    the outline could not be read, so the text was written in even sections instead.

    ``calls`` counts the model calls behind the text (outline and sections), ``attempts`` the
    requests they took (retries included), ``usage`` the tokens the endpoint reported for all
    of them (zero for a local writer)."""

    text: str | None
    error: str | None = None
    plan: list[PlanSection] | None = None
    calls: int = 1
    plan_fallback: bool = False
    usage: Usage = field(default_factory=Usage)
    attempts: int = 1


@dataclass(kw_only=True)
class WriterSpec(EndpointSpec):
    """How to build a writer (JSON-safe, for pipeline jobs and the dashboard): an
    :class:`~rl_engine.judging.endpoints.EndpointSpec` (``endpoint="local"`` for a local
    transformers model, or a declared endpoint's name) plus what only writers need.

    ``plan_then_write`` applies to tasks whose required words are at least
    ``plan_min_words``; each section gets about ``section_words`` words.
    """

    name: str = field(metadata={"help": "Labels the references, e.g. 'qwen-72b'."})
    endpoint: str = field(
        default="local", metadata=EndpointSpec.__dataclass_fields__["endpoint"].metadata
    )
    temperature: float = field(default=0.7, metadata={"help": "Sampling temperature (0 = greedy)."})
    max_tokens: int | None = field(
        default=1024, metadata={"help": "Maximum new tokens of one answer (or section)."}
    )
    max_concurrency: int = field(default=16, metadata={"help": "Calls in flight at once."})
    timeout_s: float = field(
        default=300.0, metadata={"help": "Seconds before one call is abandoned and retried."}
    )
    max_retries: int = field(default=3, metadata={"help": "Retries of a failed call."})
    hedge: bool = field(
        default=False, metadata={"help": "Send a second copy of a slow call (off for writers)."}
    )
    system_prompt: str = field(default="", metadata={"help": "System prompt of every call."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling (1 = off)."})
    plan_then_write: bool = field(
        default=False,
        metadata={
            "help": "For long targets: an outline with a word budget per section, then the "
            "sections, then joined."
        },
    )
    plan_min_words: int = field(
        default=1500, metadata={"help": "Plan-then-write only for targets of at least this."}
    )
    section_words: int = field(default=500, metadata={"help": "Words per planned section."})
    parallel_sections: bool = field(
        default=False, metadata={"help": "Write the sections at once instead of in sequence."}
    )
    extra: dict[str, Any] = field(
        default_factory=dict, metadata={"help": 'Local writers: e.g. {"batch_size": 8}.'}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.name:
            raise ValueError("WriterSpec.name is empty: name the writer (it labels references)")
        if self.max_tokens is None or self.max_tokens < 1:
            raise ValueError("WriterSpec.max_tokens must be at least 1")
        if self.section_words < 50:
            raise ValueError("WriterSpec.section_words must be at least 50")

    @property
    def max_new_tokens(self) -> int:
        return self.max_tokens or 1

    @classmethod
    def from_dict(
        cls, payload: Mapping[str, Any], registry: EndpointRegistry | None = None
    ) -> WriterSpec:
        """A spec from ``payload``; one stored before the endpoint registry (``kind``,
        ``base_url``, ``api_key_env``, ``max_new_tokens``) is mapped onto a declared endpoint
        or refused with the reason."""
        if not isinstance(payload, Mapping):
            raise ValueError(f"a WriterSpec must be an object, got {type(payload).__name__}")
        values = dict(payload)
        if "max_new_tokens" in values and "max_tokens" not in values:
            values["max_tokens"] = values.pop("max_new_tokens")
        if "endpoint" not in values and "kind" not in values:
            values["kind"] = "local"
        values = cls._from_payload(values, registry)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown WriterSpec field(s): {', '.join(unknown)}")
        return cls(**values)


class Writer(Protocol):
    name: str

    def write(self, tasks: Sequence[WritingTask]) -> list[WriterOutput]: ...


@dataclass
class Completion:
    """One model call's answer: ``text`` or the ``error``, with what it cost."""

    text: str | None
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    attempts: int = 1


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
            for i, answer in zip(direct, answers, strict=True):
                outputs[i] = WriterOutput(
                    text=answer.text, error=answer.error, usage=answer.usage,
                    attempts=answer.attempts,
                )  # fmt: skip
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
        fallbacks: list[bool] = []
        usages = [answer.usage for answer in plan_answers]
        attempts = [answer.attempts for answer in plan_answers]
        for task, count, answer in zip(tasks, counts, plan_answers, strict=True):
            # An outline that cannot be read still gets written, in even parts (and says so).
            parsed = parse_plan(answer.text or "")
            plans.append(parsed or _even_plan(task.required_words or 0, count))
            fallbacks.append(not parsed)
        written: list[list[str]] = [[] for _ in tasks]
        errors: list[str | None] = [None] * len(tasks)
        calls = [1] * len(tasks)

        def spent(t: int, answer: Completion) -> None:
            calls[t] += 1
            usages[t] = usages[t] + answer.usage
            attempts[t] += answer.attempts

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
            for (t, _), answer in zip(jobs, answers, strict=True):
                spent(t, answer)
                if answer.text is None:
                    errors[t] = errors[t] or answer.error or "a section failed"
                else:
                    written[t].append(answer.text.strip())
        else:
            # Section s of every task in one batch, then section s + 1 (which sees section s).
            rounds = max(len(plan) for plan in plans)
            for s in range(rounds):
                pending = [t for t in range(len(tasks)) if s < len(plans[t]) and errors[t] is None]
                if not pending:
                    break
                answers = self.complete_batch([section_messages(t, s, written[t]) for t in pending])
                for t, answer in zip(pending, answers, strict=True):
                    spent(t, answer)
                    if answer.text is None:
                        errors[t] = answer.error or f"section {s + 1} failed"
                    else:
                        written[t].append(answer.text.strip())
        return [
            WriterOutput(
                text=None if errors[t] else "\n\n".join(written[t]),
                error=errors[t],
                plan=plans[t],
                calls=calls[t],
                plan_fallback=fallbacks[t],
                usage=usages[t],
                attempts=attempts[t],
            )
            for t in range(len(tasks))
        ]


class OpenAIWriter(_BaseWriter):
    """A writer behind an OpenAI-compatible chat endpoint (OpenAI, vLLM, DashScope)."""

    def __init__(self, spec: WriterSpec, registry: EndpointRegistry | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        self.transport = build_transport(
            spec,
            "text",
            registry=registry,
            extra_body={"top_p": spec.top_p} if spec.top_p < 1 else None,
        )
        self._loop = BackgroundLoop(f"writer-{spec.name}")

    def complete_batch(self, conversations: Sequence[Messages]) -> list[Completion]:
        async def run() -> list[Completion]:
            results = await asyncio.gather(*(self.transport.complete(m) for m in conversations))
            return [
                Completion(
                    r.content,
                    None if r.content is not None else r.error or "no answer",
                    r.usage,
                    r.attempts,
                )
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
            return [Completion(None, f"local generation failed: {error}") for _ in prompts]
        return [
            Completion(text.strip()) if text.strip() else Completion(None, "empty generation")
            for text in texts
        ]


def make_writer(spec: WriterSpec | Mapping[str, Any], **local: Any) -> Writer:
    """The writer a spec describes; ``local`` may pass ``model`` and ``tokenizer`` to share a
    loaded model between several local writers."""
    if not isinstance(spec, WriterSpec):
        spec = WriterSpec.from_dict(spec)
    registry = local.pop("registry", None) or default_registry()
    kind = registry.resolve(spec).kind
    if kind == "openai":
        return OpenAIWriter(spec, registry)
    if kind == "heuristic":
        raise ValueError(
            "the 'heuristic' endpoint does not write: choose 'local' or a model endpoint"
        )
    return LocalWriter(spec, **local)
