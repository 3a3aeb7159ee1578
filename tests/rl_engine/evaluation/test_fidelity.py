"""Golden cases: each default score equals what the benchmark's own scorer computes.

Every expected value is worked out by hand from the peer's formula (file and function named
in each test and in docs/evaluation.md), on inputs where the project's earlier formula gave a
different number.
"""

from __future__ import annotations

import pytest

from rl_engine.evaluation.longinput import extract_choice
from rl_engine.evaluation.metrics import RubricPiece, rubric_summary, writingbench_summary
from rl_engine.evaluation.stats import fleiss_kappa


@pytest.mark.parametrize(
    ("output", "official", "lenient"),
    [
        ("The correct answer is (B)", "B", "B"),
        ("**The correct answer is (C)**", "C", "C"),
        ("Final line.\nThe correct answer is D", "D", "D"),
        # pred.py takes the first statement; the lenient variant the last.
        ("The correct answer is (A). No wait: The correct answer is (B).", "A", "B"),
        # Case-sensitive and no colon in pred.py.
        ("the correct answer is (C)", None, "C"),
        ("The correct answer is: (C)", None, "C"),
        # pred.py's second pattern reads the first letter of a word.
        ("The correct answer is Absolutely (B)", "A", None),
        ("The correct answer is (E)", None, None),
        ("I pick B", None, None),
        ("", None, None),
        (None, None, None),
    ],
)
def test_longbench_v2_extraction_matches_pred_py(output, official, lenient) -> None:
    # THUDM/LongBench pred.py, extract_answer: strip '*', first r'The correct answer is
    # \(([A-D])\)', else first r'The correct answer is ([A-D])', else None.
    assert extract_choice(output) == official
    assert extract_choice(output, "official") == official
    assert extract_choice(output, "lenient") == lenient


def test_an_unknown_extraction_is_refused() -> None:
    with pytest.raises(ValueError, match="extraction must be one of official, lenient"):
        extract_choice("The correct answer is (A)", "loose")


def test_writingbench_domains_average_per_query_means() -> None:
    # X-PLUG/WritingBench calculate_scores.py: read_scores_file (a query's score is the mean of
    # its criteria; Overall pools every criterion) and calculate_domain_scores (a domain's
    # score is the mean of its queries' scores).
    summary = writingbench_summary(
        {
            "q1": [9, 7, None],  # mean 8
            "q2": [6, 4, 5, 5],  # mean 5
            "q3": [10],  # mean 10
            "q4": [2, 4, 3, None],  # mean 3
        },
        domains={"q1": "Academic", "q2": "Academic", "q3": "Finance", "q4": "Finance"},
    )
    # Academic (8 + 5) / 2 = 6.5 and Finance (10 + 3) / 2 = 6.5; pooling criteria would give
    # 36 / 6 = 6.0 and 19 / 4 = 4.75.
    assert summary.per_domain == {"Academic": 6.5, "Finance": 6.5}
    # Overall pools the 10 valid criteria: 55 / 10.
    assert summary.overall == pytest.approx(5.5)
    assert summary.invalid == 2


def test_creative_writing_pools_every_piece() -> None:
    # EQ-bench creative-writing-bench core/scoring.py, compute_creative_scores: each piece is
    # the mean of its criteria (negatives inverted), the score the mean over all pieces, x5.
    pieces = [
        RubricPiece("p1", 1, {"Imagery": 8, "Voice": 8}),  # 40
        RubricPiece("p1", 2, {"Imagery": 12, "Voice": 12}),  # 60
        RubricPiece("p2", 1, {"Imagery": 18, "Purple prose": 6}),  # (18 + 14) / 2 * 5 = 80
        # p2's second iteration failed to be judged: p2 has one piece.
    ]
    summary = rubric_summary(pieces, negative={"Purple prose"}, bootstrap=0)
    # (40 + 60 + 80) / 3 = 60; averaging prompts first would give (50 + 80) / 2 = 65.
    assert summary.score == pytest.approx(60.0)
    assert summary.per_prompt == {"p1": 50.0, "p2": 80.0}


def test_fleiss_kappa_with_unequal_ratings_matches_irrcac() -> None:
    # afergadis/irrCAC irrCAC/raw.py, CAC.fleiss. Items A A A B | A B | B B B:
    # p_a = mean(6/12, 0/2, 6/6) = 1/2; shares averaged per item: pi_A = (3/4 + 1/2 + 0)/3
    # = 5/12, pi_B = 7/12; p_e = 25/144 + 49/144 = 37/72; kappa = (36/72 - 37/72)/(35/72).
    kappa = fleiss_kappa([["A", "A", "A", "B"], ["A", "B"], ["B", "B", "B"]])
    assert kappa == pytest.approx(-1 / 35)
    # Pooling shares over all 9 ratings (4/9, 5/9) would give -0.0125 instead.
    assert kappa != pytest.approx(-0.0125, abs=1e-3)


def test_fleiss_kappa_reproduces_irrcacs_documented_example() -> None:
    # irrCAC's raw_4raters example (missing ratings dropped): Fleiss' kappa 0.76117,
    # p_a 0.81818, p_e 0.23872, as printed in irrCAC/raw.py's module docstring. Item 12 has a
    # single rating: it counts for the shares but not for agreement.
    ratings = [
        [1, 1, 1], [2, 2, 3, 2], [3, 3, 3, 3], [3, 3, 3, 3], [2, 2, 2, 2], [1, 2, 3, 4],
        [4, 4, 4, 4], [1, 1, 2, 1], [2, 2, 2, 2], [5, 5, 5], [1, 1], [3],
    ]  # fmt: skip
    assert fleiss_kappa(ratings, table=False) == pytest.approx(0.76117, abs=5e-6)
