"""The datasets the project ships parse cleanly and have the shape their users rely on."""

from __future__ import annotations

from collections import Counter

from webapp.studio.demo import ABLATION_INSTRUCTIONS, INSTRUCTIONS
from webapp.studio.importers import parse_dataset


def test_the_demo_instructions_parse_without_problems() -> None:
    parsed = parse_dataset(INSTRUCTIONS, "auto")
    assert parsed.problems == []
    assert len(parsed.instructions) >= 12


def test_the_ablation_set_has_48_training_and_24_held_out_tasks_with_length_targets() -> None:
    parsed = parse_dataset(ABLATION_INSTRUCTIONS, "auto")
    assert parsed.problems == []
    splits = Counter(instruction.split for instruction in parsed.instructions)
    assert splits == {"train": 48, "eval": 24}
    targets = [instruction.required_words for instruction in parsed.instructions]
    assert all(target is not None and 30 <= target <= 150 for target in targets)
    # Varied: many task kinds in both splits, and both short and long targets held out.
    for split in ("train", "eval"):
        domains = {i.domain for i in parsed.instructions if i.split == split}
        assert len(domains) >= 8
    held_out = [i.required_words or 0 for i in parsed.instructions if i.split == "eval"]
    assert min(held_out) <= 50 and max(held_out) >= 120
    # No prompt is shared between training and held-out instructions.
    train = {i.prompt for i in parsed.instructions if i.split == "train"}
    assert not train & {i.prompt for i in parsed.instructions if i.split == "eval"}
