"""A prompt sampler whose order depends only on (seed, epoch), so a resume replays it exactly.

TRL's RepeatSampler draws each epoch's permutation from one generator that is seeded once; a
run resumed in epoch 2 starts that generator afresh and sees epoch 1's order again, so the
resumed run trains on other prompts than the uninterrupted one would have. The trainer calls
``set_epoch`` on the sampler every epoch (accelerate forwards it), and this sampler reseeds from
the epoch number.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from trl.trainer.utils import RepeatSampler

# Keeps (seed, epoch) pairs apart: seed * _STRIDE + epoch.
_STRIDE = 1_000_003


class EpochSeededRepeatSampler(RepeatSampler):
    """RepeatSampler with a per-epoch permutation that a fresh process reproduces."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.epoch = 0

    @classmethod
    def like(cls, sampler: RepeatSampler) -> EpochSeededRepeatSampler:
        return cls(
            data_source=sampler.data_source,
            mini_repeat_count=sampler.mini_repeat_count,
            batch_size=sampler.batch_size,
            repeat_count=sampler.repeat_count,
            shuffle=sampler.shuffle,
            seed=sampler.seed,
        )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            self.generator.manual_seed((self.seed or 0) * _STRIDE + self.epoch)
        yield from super().__iter__()


class ResumableSamplerMixin:
    """Mixed into GRPO/RLOO trainers: train prompts come from EpochSeededRepeatSampler."""

    def _get_train_sampler(self, dataset: Any = None) -> Any:
        sampler = super()._get_train_sampler(dataset)  # type: ignore[misc]
        if isinstance(sampler, RepeatSampler):
            return EpochSeededRepeatSampler.like(sampler)
        return sampler
