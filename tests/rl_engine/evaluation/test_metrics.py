"""LongBench-Write, WritingBench and creative-writing aggregation on hand-computed cases."""

from __future__ import annotations

import pytest

from rl_engine.evaluation import (
    QUALITY_DIMENSIONS,
    LongWriteRecord,
    RubricPiece,
    count_words,
    length_bucket,
    length_quality_table,
    length_score,
    quality_score,
    rubric_piece_score,
    rubric_summary,
    writingbench_summary,
)


def test_it_re_exports_the_text_measures() -> None:
    assert count_words("写作 is fun") == 4
    assert length_score(100, 400) == 0.0


def test_it_scores_quality_by_hand() -> None:
    # (5-1)*25=100, 75, 50, 25, 0, 50 -> 300/6 = 50
    scores = {
        "Relevance": 5,
        "Accuracy": 4,
        "Coherence": 3,
        "Clarity": 2,
        "Breadth and Depth": 1,
        "Reading Experience": 3,
    }
    assert quality_score(scores) == 50.0
    assert quality_score(dict.fromkeys(QUALITY_DIMENSIONS, 1)) == 0.0
    assert quality_score({**dict.fromkeys(QUALITY_DIMENSIONS[:4], 2), "breadth_and_depth": 2,
                          "reading-experience": 2}) == 25.0  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"Clarity": 6}, "'Clarity' must be scored 1-5, got 6"),
        ({"Clarity": 0}, "must be scored 1-5"),
        ({"Clarity": "5"}, "is not a number"),
        ({"Style": 3}, "unknown quality dimension 'Style'"),
        ({"clarity": 3}, "quality dimension 'clarity' given twice"),
    ],
)
def test_it_rejects_bad_quality_dimensions(change, message) -> None:
    scores = {name.title(): 3 for name in QUALITY_DIMENSIONS}
    with pytest.raises(ValueError, match=message):
        quality_score({**scores, **change})


def test_it_names_missing_quality_dimensions() -> None:
    with pytest.raises(ValueError, match=r"missing quality dimensions: \['reading experience'\]"):
        quality_score(dict.fromkeys(QUALITY_DIMENSIONS[:5], 3))


@pytest.mark.parametrize(
    ("required", "bucket"),
    [
        (0, "[0, 500)"),
        (499, "[0, 500)"),
        (500, "[500, 2000)"),
        (1999, "[500, 2000)"),
        (2000, "[2000, 4000)"),
        (4000, "[4000, 20000)"),
        (20000, "[4000, 20000)"),
    ],
)
def test_it_buckets_required_lengths(required, bucket) -> None:
    assert length_bucket(required) == bucket


def test_it_tabulates_length_and_quality_per_bucket_by_hand() -> None:
    records = [
        LongWriteRecord(required=100, produced=100, quality=50.0),  # S_l 100
        LongWriteRecord(required=1000, produced=500, quality=None),  # S_l 50, judge failed
        LongWriteRecord(required=1000, produced=2000, quality=100.0),  # S_l 66.67
        LongWriteRecord(required=3000, produced=0, quality=None),  # no output: S_l 0
    ]
    rows = {row.bucket: row for row in length_quality_table(records)}
    assert list(rows) == ["[0, 500)", "[500, 2000)", "[2000, 4000)", "[4000, 20000)", "overall"]
    small = rows["[0, 500)"]
    assert (small.count, small.length, small.quality, small.overall) == (1, 100.0, 50.0, 75.0)
    middle = rows["[500, 2000)"]
    assert middle.count == 2 and middle.quality_count == 1
    assert middle.length == pytest.approx((50 + 200 / 3) / 2)  # 58.33
    assert middle.overall == pytest.approx(((50 + 200 / 3) / 2 + 100) / 2)  # 79.17
    assert rows["[2000, 4000)"].length == 0.0 and rows["[2000, 4000)"].overall is None
    assert rows["[4000, 20000)"].count == 0 and rows["[4000, 20000)"].length is None
    overall = rows["overall"]
    assert overall.length == pytest.approx((100 + 50 + 200 / 3 + 0) / 4)  # 54.17
    assert overall.quality == 75.0
    assert overall.overall == pytest.approx(((100 + 50 + 200 / 3) / 4 + 75) / 2)  # 64.58


def test_it_counts_a_response_into_a_record() -> None:
    assert LongWriteRecord.from_response(10, None).length == 0.0  # no output
    record = LongWriteRecord.from_response(4, "春眠不觉", quality=75.0)
    assert (record.produced, record.length, record.quality) == (4, 100.0, 75.0)


def test_it_aggregates_writingbench_criteria_by_hand() -> None:
    summary = writingbench_summary(
        {"q1": [8, 6, 7, 9, 10], "q2": [3, None, 5, 4, None], "q3": [None]},
        domains={"q1": "Academic", "q2": "Finance", "q3": "Finance"},
    )
    assert summary.per_instruction == {"q1": 8.0, "q2": 4.0, "q3": None}
    assert summary.overall == pytest.approx(52 / 8)  # all 8 valid criterion scores
    assert summary.overall_x10 == pytest.approx(65.0)
    assert (summary.invalid, summary.scored) == (3, 8)
    assert summary.per_domain == {"Academic": 8.0, "Finance": 4.0}


def test_it_rejects_bad_writingbench_scores() -> None:
    with pytest.raises(ValueError, match="instruction 'q2', criterion 1: score must be an integer"):
        writingbench_summary({"q1": [5], "q2": [5, 11]})
    with pytest.raises(ValueError, match="instruction 'q1' has no domain"):
        writingbench_summary({"q1": [5]}, domains={})
    assert writingbench_summary({}).overall is None


def test_it_scores_creative_writing_rubrics_by_hand() -> None:
    # Positive 12 and 18, negative 6 -> 14; mean 44/3, x5 = 73.33
    piece = {"Imagery": 12, "Voice": 18, "Purple prose": 6}
    assert rubric_piece_score(piece, negative={"Purple prose"}) == pytest.approx(220 / 3)
    assert rubric_piece_score({"Imagery": 20, "Cliche": 0}, negative={"Cliche"}) == 100.0
    with pytest.raises(ValueError, match="'Voice' must be scored 0-20, got 21"):
        rubric_piece_score({"Voice": 21})


def test_it_summarises_rubric_iterations_with_a_seeded_bootstrap() -> None:
    pieces = [
        RubricPiece("p1", 0, {"Voice": 10}),  # 50
        RubricPiece("p1", 1, {"Voice": 14}),  # 70 -> p1 mean 60
        RubricPiece("p2", 0, {"Voice": 20}),  # 100
        RubricPiece("p2", 1, {"Voice": 16}),  # 80 -> p2 mean 90
        RubricPiece("p3", 0, {"Voice": 6, "Cliche": 14}),  # (6 + 6)/2*5 = 30
    ]
    summary = rubric_summary(pieces, negative={"Cliche"}, bootstrap=500, seed=1)
    assert summary.per_prompt == {"p1": 60.0, "p2": 90.0, "p3": 30.0}
    # EQ-Bench pools pieces: (50 + 70 + 100 + 80 + 30) / 5 = 66 (not the mean of prompts, 60).
    assert summary.score == pytest.approx(66.0)
    assert 30.0 <= summary.low < summary.score < summary.high <= 100.0
    again = rubric_summary(pieces, negative={"Cliche"}, bootstrap=500, seed=1)
    assert (again.low, again.high) == (summary.low, summary.high)
    same = [RubricPiece("p1", 0, {"Voice": 12}), RubricPiece("p2", 0, {"Voice": 12})]
    flat = rubric_summary(same, bootstrap=200)
    assert (flat.low, flat.score, flat.high) == (60.0, 60.0, 60.0)  # equal pieces: no spread
    with pytest.raises(ValueError, match="prompt 'p1' iteration 0 given twice"):
        rubric_summary([pieces[0], pieces[0]])
    with pytest.raises(ValueError, match="prompt 'p9' iteration 0: criterion 'Voice' must be"):
        rubric_summary([RubricPiece("p9", 0, {"Voice": -1})])
