"""Prompt templates for LLM judges: pairwise (default, and with per-query criteria) and
pointwise.

The pairwise prompts follow the shape of MT-Bench's pairwise judge (an impartial comparison of
two assistants, position and length not to sway the decision, an explanation and then a
bracketed verdict) with one rule of Writing-RL's judge added: a response that repeats itself
severely loses. The wording is ours. Every template is a plain dataclass, so a caller can pass
their own; its ``identity`` (a hash of its text) is part of every cache key, so editing a
template never serves judgments made with the old one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from rl_engine.judging.types import PairRequest

__all__ = [
    "CRITERIA_PAIRWISE",
    "DEFAULT_PAIRWISE",
    "DEFAULT_POINTWISE",
    "LOCAL_PAIRWISE",
    "Message",
    "PairwisePrompts",
    "PairwiseTemplate",
    "PointwiseTemplate",
]

Message = dict[str, str]


def _digest(*parts: str) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode("utf-8"))
        hasher.update(b"\x00")
    return hasher.hexdigest()[:16]


@dataclass(frozen=True)
class PairwiseTemplate:
    """A system message and a user message with the fields ``{instruction}``, ``{first}``,
    ``{second}`` and (for criteria templates) ``{criteria}``."""

    name: str
    system: str
    user: str

    @property
    def identity(self) -> str:
        return f"{self.name}:{_digest(self.system, self.user)}"

    def render(self, request: PairRequest) -> list[Message]:
        user = self.user.format(
            instruction=request.instruction,
            first=request.first,
            second=request.second,
            criteria=request.criteria or "",
        )
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


@dataclass(frozen=True)
class PairwisePrompts:
    """The pair of templates a judge uses: ``with_criteria`` when a request carries criteria,
    ``default`` otherwise."""

    default: PairwiseTemplate
    with_criteria: PairwiseTemplate

    def for_request(self, request: PairRequest) -> PairwiseTemplate:
        return self.with_criteria if request.criteria else self.default

    @property
    def identity(self) -> str:
        return f"{self.default.identity}+{self.with_criteria.identity}"


_RULES = """\
Judge which response follows the user's instruction better and is the better piece of \
writing: consider how fully it does what was asked (including any requested length, form and \
style), its relevance, accuracy, depth, coherence, creativity and fluency.
- Be impartial. The order in which the responses are shown must not influence you.
- Length is not quality: do not prefer a response for being longer or shorter, unless the \
instruction asks for a length.
- Severe repetition (the same sentences, phrases or paragraphs over and over) is a serious \
failure: a response with severe repetition loses to one without it.
- Do not favour a response because of the name of its assistant.
First explain your comparison briefly. Then give your final verdict on the last line, in \
exactly this format: "[[A]]" if assistant A is better, "[[B]]" if assistant B is better, \
"[[C]]" for a tie."""

DEFAULT_PAIRWISE = PairwiseTemplate(
    name="pairwise-v1",
    system=(
        "You are an impartial, expert judge of writing. You compare two AI assistants' "
        "responses to the same user instruction.\n" + _RULES
    ),
    user=(
        "[User instruction]\n{instruction}\n\n"
        "[The start of assistant A's response]\n{first}\n[The end of assistant A's response]\n\n"
        "[The start of assistant B's response]\n{second}\n[The end of assistant B's response]"
    ),
)

CRITERIA_PAIRWISE = PairwiseTemplate(
    name="pairwise-criteria-v1",
    system=(
        "You are an impartial, expert judge of writing. You compare two AI assistants' "
        "responses to the same user instruction, paying particular attention to the criteria "
        "given for this instruction.\n" + _RULES
    ),
    user=(
        "[User instruction]\n{instruction}\n\n"
        "[Criteria for this instruction]\n{criteria}\n\n"
        "[The start of assistant A's response]\n{first}\n[The end of assistant A's response]\n\n"
        "[The start of assistant B's response]\n{second}\n[The end of assistant B's response]"
    ),
)

DEFAULT_PROMPTS = PairwisePrompts(default=DEFAULT_PAIRWISE, with_criteria=CRITERIA_PAIRWISE)

# For a local model read through next-token probabilities: the answer is one letter right
# after the assistant turn begins, so the prompt asks for nothing else.
LOCAL_PAIRWISE = PairwiseTemplate(
    name="pairwise-local-v1",
    system=(
        "You are an impartial judge of writing. Compare two responses to the same instruction. "
        "The order of the responses must not influence you; length is not quality; a response "
        "with severe repetition loses. Answer with one letter only: A if response A is better, "
        "B if response B is better, C for a tie."
    ),
    user=(
        "[Instruction]\n{instruction}\n\n[Criteria]\n{criteria}\n\n"
        "[Response A]\n{first}\n\n[Response B]\n{second}\n\n"
        "Which response is better? Answer A, B or C."
    ),
)


@dataclass(frozen=True)
class PointwiseTemplate:
    """A grading prompt with ``{instruction}``, ``{response}`` and ``{criteria}``, answered
    with JSON ``{"score": 1..10, "reason": "..."}``."""

    name: str
    system: str
    user: str

    @property
    def identity(self) -> str:
        return f"{self.name}:{_digest(self.system, self.user)}"

    def render(self, instruction: str, response: str, criteria: str | None) -> list[Message]:
        user = self.user.format(
            instruction=instruction,
            response=response,
            criteria=criteria or "General quality: helpfulness, relevance, depth, fluency.",
        )
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


DEFAULT_POINTWISE = PointwiseTemplate(
    name="pointwise-v1",
    system=(
        "You are an expert judge of writing. Grade one AI assistant's response to a user "
        "instruction on a scale from 1 (very poor) to 10 (excellent) against the criteria "
        "given. Severe repetition is a serious failure. Answer with JSON only, exactly in "
        'this form: {"score": <integer 1-10>, "reason": "<one or two sentences>"}'
    ),
    user=(
        "[User instruction]\n{instruction}\n\n[Criteria]\n{criteria}\n\n"
        "[The start of the response]\n{response}\n[The end of the response]"
    ),
)
