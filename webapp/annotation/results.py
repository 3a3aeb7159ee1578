"""A campaign's results: win/tie/loss per pair of systems, ratings, agreement, the judge.

Conventions (shown on the results page too):

* Votes are counted in the item's canonical order (``a`` / ``b``), never by screen side.
* "Both bad" counts as a tie in win rates and ratings (neither system won), and as its own
  label in inter-annotator agreement (annotators did agree on "both bad").
* Skips are not votes: they appear nowhere here.
* The judge sees each item in both orders; orders that disagree make a tie (MT-Bench). An
  INVALID verdict in either order leaves the item out of the judge's numbers and is counted.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

from rl_engine.evaluation.stats import (
    Rating,
    agreement_rate,
    bradley_terry,
    cohen_kappa,
    fleiss_kappa,
    ratings_table,
)
from rl_engine.evaluation.winrate import combine_orders
from rl_engine.outcomes import Outcome
from webapp.annotation.models import Campaign, JudgeRun, JudgeVote, System, Vote
from webapp.annotation.quality import Quality, annotator_quality, campaign_votes
from webapp.studio.token_usage import TokenTotals, totals_sum

COUNTED = (Vote.Outcome.A, Vote.Outcome.B, Vote.Outcome.TIE, Vote.Outcome.BOTH_BAD)


@dataclass(frozen=True)
class PairRow:
    """``first`` against ``second``: counts from ``first``'s side."""

    first: str
    second: str
    wins: int
    ties: int
    both_bad: int
    losses: int

    @property
    def total(self) -> int:
        return self.wins + self.ties + self.both_bad + self.losses

    @property
    def adjusted_win_rate(self) -> float | None:
        """(wins + (ties + both bad) / 2) / total, for ``first``."""
        if not self.total:
            return None
        return (self.wins + 0.5 * (self.ties + self.both_bad)) / self.total


def counted_votes(campaign: Campaign) -> list[Vote]:
    """The campaign's counted votes (skips left out) with their items, in one query. The
    functions below take them as ``votes`` so a page that shows several of them loads the
    votes once (see :func:`campaign_results`); without it each loads them itself."""
    return list(
        Vote.objects.filter(item__campaign=campaign, outcome__in=COUNTED)
        .select_related("item")
        .order_by("item_id", "annotator_id")
    )


def _votes(campaign: Campaign, votes: Sequence[Vote] | None) -> Sequence[Vote]:
    return counted_votes(campaign) if votes is None else votes


def pair_table(campaign: Campaign, votes: Sequence[Vote] | None = None) -> list[PairRow]:
    """One row per pair of systems (in system order), even pairs without votes yet."""
    systems = list(campaign.systems.order_by("pk"))
    counts: dict[tuple[int, int], Counter[str]] = defaultdict(Counter)
    for vote in _votes(campaign, votes):
        counts[(vote.item.system_a_id, vote.item.system_b_id)][vote.outcome] += 1
    rows = []
    for first, second in combinations(systems, 2):
        forward = counts[(first.pk, second.pk)]
        backward = counts[(second.pk, first.pk)]
        rows.append(
            PairRow(
                first=first.label,
                second=second.label,
                wins=forward["a"] + backward["b"],
                ties=forward["tie"] + backward["tie"],
                both_bad=forward["both_bad"] + backward["both_bad"],
                losses=forward["b"] + backward["a"],
            )
        )
    return rows


def battles(campaign: Campaign, votes: Sequence[Vote] | None = None) -> list[tuple[str, str, str]]:
    """Every counted vote as a ``(label_a, label_b, outcome)`` battle; both bad is a tie."""
    labels = dict(campaign.systems.values_list("pk", "label"))
    return [
        (
            labels[vote.item.system_a_id],
            labels[vote.item.system_b_id],
            "tie" if vote.outcome == Vote.Outcome.BOTH_BAD else vote.outcome,
        )
        for vote in _votes(campaign, votes)
    ]


def ratings(
    campaign: Campaign,
    *,
    bootstrap: int = 200,
    seed: int = 0,
    votes: Sequence[Vote] | None = None,
) -> list[Rating]:
    """Bradley-Terry ratings on the Elo scale with bootstrap 95% intervals, best first."""
    found = battles(campaign, votes)
    if not found:
        return []
    return ratings_table(bradley_terry(found, bootstrap=bootstrap, seed=seed))


@dataclass(frozen=True)
class Agreement:
    """Inter-annotator agreement. ``method`` names the kappa used ("cohen" for exactly two
    annotators, "fleiss" for more); ``items`` counts items with two or more votes."""

    method: str
    raw: float | None
    kappa: float | None
    items: int
    annotators: int


def _labels_by_item(campaign: Campaign, votes: Sequence[Vote] | None) -> dict[int, dict[int, str]]:
    labels: dict[int, dict[int, str]] = defaultdict(dict)
    for vote in _votes(campaign, votes):
        labels[vote.item_id][vote.annotator_id] = vote.outcome
    return labels


def human_agreement(campaign: Campaign, votes: Sequence[Vote] | None = None) -> Agreement:
    """Raw agreement and Cohen's (two annotators) or Fleiss' (more) kappa over items that at
    least two annotators voted on."""
    labels = _labels_by_item(campaign, votes)
    shared = {item: by for item, by in labels.items() if len(by) >= 2}
    annotators = sorted({annotator for by in labels.values() for annotator in by})
    if not shared:
        return Agreement("none", None, None, 0, len(annotators))
    if len(annotators) == 2:
        first, second = annotators
        column_a = [by.get(first) for by in shared.values()]
        column_b = [by.get(second) for by in shared.values()]
        kappa = cohen_kappa(column_a, column_b)
        return Agreement(
            "cohen",
            agreement_rate(column_a, column_b),
            None if math.isnan(kappa) else kappa,
            len(shared),
            2,
        )
    # Raw agreement for many raters: the mean, over items, of the share of agreeing rater pairs.
    per_item = []
    for by in shared.values():
        values = list(by.values())
        pairs = list(combinations(values, 2))
        per_item.append(sum(1 for x, y in pairs if x == y) / len(pairs))
    kappa = fleiss_kappa([list(by.values()) for by in shared.values()], table=False)
    return Agreement(
        "fleiss",
        sum(per_item) / len(per_item),
        None if math.isnan(kappa) else kappa,
        len(shared),
        len(annotators),
    )


def human_majority(campaign: Campaign, votes: Sequence[Vote] | None = None) -> dict[int, str]:
    """Per item with votes, the humans' plurality verdict as a / b / tie (both bad is a tie;
    an a-versus-b deadlock is a tie)."""
    tallies: dict[int, Counter[str]] = defaultdict(Counter)
    for vote in _votes(campaign, votes):
        tallies[vote.item_id]["tie" if vote.outcome == "both_bad" else vote.outcome] += 1
    majority = {}
    for item_id, tally in tallies.items():
        ranked = tally.most_common()
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            majority[item_id] = "tie"
        else:
            majority[item_id] = ranked[0][0]
    return majority


@dataclass(frozen=True)
class JudgeAgreement:
    """How one judge run compares with the humans on a campaign.

    ``agreement``: share of items (both orders valid, with human votes) where the judge's
    combined verdict equals the humans' majority; ``agreement_without_ties`` the same over
    items where neither is a tie; ``position_flip_rate``: share of items (both orders valid)
    whose verdict changed when the order changed; ``first_shown_rate``: share of the judge's
    decisive verdicts that picked the text shown first.
    """

    judge_run_id: int
    judge: str
    status: str
    items: int
    invalid: int
    agreement: float | None
    agreement_without_ties: float | None
    position_flip_rate: float | None
    first_shown_rate: float | None
    # The row itself, for the page (what a queued run waits for).
    judge_run: JudgeRun | None = field(default=None, compare=False, repr=False)
    error: str = ""  # why a failed run failed
    tokens: TokenTotals = field(default_factory=TokenTotals)


def judge_agreement(
    campaign: Campaign, votes: Sequence[Vote] | None = None
) -> list[JudgeAgreement]:
    majority = human_majority(campaign, votes)
    rows = []
    for judge_run in campaign.judge_runs.order_by("created_at").prefetch_related("votes"):
        by_item: dict[int, dict[str, JudgeVote]] = defaultdict(dict)
        for judge_vote in judge_run.votes.all():
            by_item[judge_vote.item_id][judge_vote.order] = judge_vote
        rows.append(_judge_row(judge_run, by_item, majority))
    return rows


def _judge_row(
    judge_run: JudgeRun, by_item: dict[int, dict[str, JudgeVote]], majority: dict[int, str]
) -> JudgeAgreement:
    valid = invalid = flips = agree = compared = agree_decisive = decisive = 0
    first_shown = decisive_verdicts = 0
    prompt = completion = attempts = 0
    for orders in by_item.values():
        for judge_vote in orders.values():
            prompt += judge_vote.prompt_tokens
            completion += judge_vote.completion_tokens
            attempts += judge_vote.attempts
            # Whichever text was shown first "wins" with the letter A.
            shown_first = Outcome.from_verdict(judge_vote.verdict, "first")
            if shown_first in (Outcome.WIN, Outcome.LOSS):
                decisive_verdicts += 1
                first_shown += shown_first is Outcome.WIN
    for item_id, orders in by_item.items():
        if set(orders) != {"ab", "ba"}:
            continue
        # System A's outcome over both orders (A shown first in "ab", second in "ba").
        combined = combine_orders(orders["ab"].verdict, orders["ba"].verdict)
        if not combined.valid:
            invalid += 1
            continue
        valid += 1
        flips += orders["ab"].outcome != orders["ba"].outcome
        judge_label = JudgeVote.LABELS[combined.value]
        human = majority.get(item_id)
        if human is None:
            continue
        compared += 1
        agree += judge_label == human
        if judge_label != "tie" and human != "tie":
            decisive += 1
            agree_decisive += judge_label == human
    return JudgeAgreement(
        judge_run_id=judge_run.pk,
        judge=judge_run.judge_name,
        status=judge_run.status,
        items=compared,
        invalid=invalid,
        agreement=agree / compared if compared else None,
        agreement_without_ties=agree_decisive / decisive if decisive else None,
        position_flip_rate=flips / valid if valid else None,
        first_shown_rate=first_shown / decisive_verdicts if decisive_verdicts else None,
        judge_run=judge_run,
        error=judge_run.error,
        tokens=TokenTotals.of(
            judge_run.judge_endpoint,
            prompt_tokens=prompt,
            completion_tokens=completion,
            attempts=attempts,
            calls=sum(len(orders) for orders in by_item.values()),
        ),
    )


@dataclass(frozen=True)
class CampaignResults:
    """Everything the results page shows of a campaign's votes and judge runs."""

    pairs: list[PairRow]
    ratings: list[Rating]
    agreement: Agreement
    judges: list[JudgeAgreement]
    quality: Quality

    @property
    def judge_tokens(self) -> TokenTotals:
        """What every judge run of the campaign cost together."""
        return totals_sum(judge.tokens for judge in self.judges)


def campaign_results(campaign: Campaign, *, bootstrap: int = 200, seed: int = 0) -> CampaignResults:
    """The results page's numbers, with the campaign's votes loaded once for all of them."""
    every_vote = campaign_votes(campaign)
    # The counted votes in the order counted_votes gives them (the ratings' bootstrap
    # resamples battles by position).
    votes = sorted(
        (vote for vote in every_vote if vote.outcome in COUNTED),
        key=lambda vote: (vote.item_id, vote.annotator_id),
    )
    return CampaignResults(
        pairs=pair_table(campaign, votes),
        ratings=ratings(campaign, bootstrap=bootstrap, seed=seed, votes=votes),
        agreement=human_agreement(campaign, votes),
        judges=judge_agreement(campaign, votes),
        quality=annotator_quality(campaign, votes=every_vote),
    )


def system_labels(campaign: Campaign) -> dict[int, str]:
    return dict(System.objects.filter(campaign=campaign).values_list("pk", "label"))
