"""The TRL reward function: one judge batch per step, None for INVALID, one record per sample."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import pytest

from rl_engine.curriculum import InMemoryStore, ReferenceScheduler, Transition
from rl_engine.judging import HeuristicJudge, Judgment, PairRequest, Score, Verdict
from rl_engine.reward import PairwiseReward, PointwiseReward
from rl_engine.training import InMemoryReporter, TrainingInstruction
from rl_engine.training.reward_fn import PairwiseRewardFunction


class ScriptedJudge:
    """Answers from the rollout text (its second response): 'win', 'tie', 'lose' or 'broken'."""

    name = "scripted"

    def __init__(self) -> None:
        self.batches: list[list[PairRequest]] = []

    def compare_sync(self, requests: Sequence[PairRequest]) -> list[Judgment]:
        self.batches.append(list(requests))
        verdicts = {"win": Verdict.B, "tie": Verdict.TIE, "lose": Verdict.A}
        out = []
        for request in requests:
            word = request.second.split()[0]
            verdict = verdicts.get(word, Verdict.INVALID)
            error = None if word in verdicts else "no verdict tag after 2 re-asks"
            out.append(Judgment(verdict, f"said {word}", None, 1, 0.01, error, judge=self.name))
        return out

    async def compare(self, requests: Sequence[PairRequest]) -> list[Judgment]:
        return self.compare_sync(requests)


def _setup(
    reward_terms: dict[str, float] | None = None,
) -> tuple[PairwiseRewardFunction, ScriptedJudge, InMemoryStore, InMemoryReporter]:
    instructions = {
        "a": TrainingInstruction("a", "Write 4 words.", ["ref a0", "ref a1"], required_words=4),
        "b": TrainingInstruction("b", "Write.", ["ref b0", "ref b1", "ref b2"], criteria="Be kind"),
    }
    store = InMemoryStore({"a": 2, "b": 3})
    judge = ScriptedJudge()
    reporter = InMemoryReporter()
    reward = PairwiseRewardFunction(
        instructions,
        ReferenceScheduler(store, "dynamic", min_wins=1),
        PairwiseReward(judge, position="disadvantage"),
        reporter,
        reward_terms,
    )
    return reward, judge, store, reporter


def _call(reward: PairwiseRewardFunction, step: int, ids: list[str], texts: list[str]) -> list:  # type: ignore[type-arg]
    completions = [[{"role": "assistant", "content": t}] for t in texts]
    prompts = [[{"role": "user", "content": "x"}]] * len(ids)
    state = SimpleNamespace(global_step=step - 1)
    return reward(prompts, completions, None, sample_id=ids, trainer_state=state)


def test_it_judges_the_whole_step_in_one_batch_and_records_each_sample_once() -> None:
    reward, judge, store, reporter = _setup()
    rewards = _call(
        reward, 1, ["a", "a", "b", "b"], ["win one", "win two", "lose it", "broken output"]
    )
    assert rewards == [1.0, 1.0, 0.0, None]
    assert len(judge.batches) == 1 and len(judge.batches[0]) == 4
    # Against the current tier: tier 0 for both; the rollout is shown second (disadvantage).
    assert [r.first for r in judge.batches[0]] == ["ref a0", "ref a0", "ref b0", "ref b0"]
    assert judge.batches[0][2].criteria == "Be kind"
    # Two wins in one step move "a" up ONE tier; "b" lost and stays.
    assert reporter.transitions == [Transition("a", 1, 0, 1)]
    assert [(o.sample_id, o.step, o.wins, o.losses, o.invalid) for o in store.history] == [
        ("a", 1, 2, 0, 0),
        ("b", 1, 0, 1, 1),
    ]
    broken = reporter.judgments[3]
    assert (broken.verdict, broken.reward, broken.error) == ("INVALID", None, broken.error)
    assert broken.error and broken.position == "second" and broken.reference_tier == 0
    stats = reward.pop_stats(1)
    assert stats is not None and stats.invalid_rate == 0.25 and stats.rate(1.0) == 0.5


def test_it_reads_the_new_tier_next_step_and_ignores_a_replayed_step() -> None:
    reward, judge, store, _ = _setup()
    _call(reward, 1, ["a", "a"], ["win", "lose"])
    _call(reward, 2, ["a", "a"], ["tie", "tie"])
    assert [r.first for r in judge.batches[1]] == ["ref a1", "ref a1"]
    _call(reward, 2, ["a", "a"], ["win", "win"])  # the same step again: no second advance
    assert store.read_tiers(["a"])["a"].tier == 1
    assert not store.read_tiers(["a"])["a"].mastered


def test_it_adds_weighted_length_only_to_valid_pairwise_rewards() -> None:
    reward, _, store, _ = _setup(reward_terms={"length": 0.5})
    rewards = _call(reward, 1, ["a", "a", "b"], ["tie one two three", "broken", "tie"])
    # "a" asks for 4 words: 4 words score S_l = 100 -> +0.5; "b" has no required_words -> +0.
    assert rewards[0] == pytest.approx(1.0)
    assert rewards[1] is None
    assert rewards[2] == pytest.approx(0.5)
    # The curriculum saw the pairwise term: a tie is not a win.
    assert store.read_tiers(["a"])["a"].tier == 0


def test_it_works_with_the_heuristic_judge_and_plain_string_completions() -> None:
    instructions = {"s": TrainingInstruction("s", "Write something.", ["so so so so so so so"])}
    store = InMemoryStore({"s": 1})
    reporter = InMemoryReporter()
    reward = PairwiseRewardFunction(
        instructions,
        ReferenceScheduler(store),
        PairwiseReward(HeuristicJudge(), position="both"),
        reporter,
    )
    rewards = reward(["p", "p"], ["A varied, fresh sentence here.", "so so so so so so so"],
                     sample_id=["s", "s"])  # fmt: skip
    assert rewards == [1.0, 0.5]
    assert len(reporter.judgments) == 4  # both orders of both rollouts
    assert store.read_tiers(["s"])["s"].mastered  # the only reference was beaten


def test_it_requires_the_sample_id_column() -> None:
    reward, *_ = _setup()
    with pytest.raises(ValueError, match="no 'sample_id' column"):
        reward(["p"], ["c"])


class ScriptedScorer:
    """Grades a text by its first word: 'score7' -> 7; anything else fails (value None)."""

    name = "scripted-scorer"

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, str, str | None]]] = []

    def score_many_sync(self, requests: Sequence[tuple[str, str, str | None]]) -> list[Score]:
        self.batches.append(list(requests))
        scores = []
        for _, text, _ in requests:
            word = text.split()[0]
            if word.startswith("score"):
                scores.append(Score(int(word[5:]), "ok", None, 1, 0.01))
            else:
                scores.append(Score(None, "", None, 3, 0.01, error="no JSON score"))
        return scores

    async def score_many(self, requests: Sequence[tuple[str, str, str | None]]) -> list[Score]:
        return self.score_many_sync(requests)

    async def score(self, instruction: str, response: str, criteria: str | None = None) -> Score:
        return self.score_many_sync([(instruction, response, criteria)])[0]


def test_it_rewards_the_pointwise_score_and_climbs_on_beating_the_references_score() -> None:
    instructions = {"a": TrainingInstruction("a", "Write.", ["score5 weak", "score8 strong"])}
    store = InMemoryStore({"a": 2})
    scorer = ScriptedScorer()
    reporter = InMemoryReporter()
    reward = PairwiseRewardFunction(
        instructions,
        ReferenceScheduler(store, "dynamic", min_wins=1),
        PointwiseReward(scorer),
        reporter,
    )
    rewards = _call(reward, 1, ["a", "a", "a"], ["score7 x", "score5 y", "broken z"])
    # (score - 1) / 9; a failed score is no reward, never zero.
    assert rewards == [pytest.approx(6 / 9), pytest.approx(4 / 9), None]
    # One grading batch; the shared reference text is graded once.
    assert len(scorer.batches) == 1 and len(scorer.batches[0]) == 4
    # 7 > 5 beats tier 0: the sample moves up one tier; the records carry the comparison.
    assert store.read_tiers(["a"])["a"].tier == 1
    assert [r.verdict for r in reporter.judgments] == ["B", "TIE", "INVALID"]
    assert [r.reward for r in reporter.judgments] == [1.0, 0.5, None]
    # Next step the reference is tier 1 (score 8): a 7 no longer wins.
    _call(reward, 2, ["a"], ["score7 again"])
    assert reporter.judgments[-1].verdict == "A"
