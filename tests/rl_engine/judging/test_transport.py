from __future__ import annotations

import asyncio
import random

import pytest

from rl_engine.judging.transport import RetryPolicy, _Slots, parse_retry_after


def test_retries_are_served_before_first_tries() -> None:
    async def scenario() -> list[str]:
        slots = _Slots(pools=1, size=1)
        served: list[str] = []
        held = await slots.acquire()

        async def waiter(name: str, priority: int) -> None:
            pool = await slots.acquire(priority)
            served.append(name)
            slots.release(pool)

        tasks = [
            asyncio.create_task(waiter("new-1", 0)),
            asyncio.create_task(waiter("new-2", 0)),
            asyncio.create_task(waiter("retry", 2)),
        ]
        await asyncio.sleep(0)
        slots.release(held)
        await asyncio.gather(*tasks)
        return served

    assert asyncio.run(scenario()) == ["retry", "new-1", "new-2"]


def test_a_cancelled_waiter_does_not_lose_a_slot() -> None:
    async def scenario() -> int:
        slots = _Slots(pools=2, size=2)
        first, second = await slots.acquire(), await slots.acquire()
        waiter = asyncio.create_task(slots.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        slots.release(first)
        slots.release(second)
        with pytest.raises(asyncio.CancelledError):
            await waiter
        a, b = await slots.acquire(), await slots.acquire()
        return len({a, b})

    assert asyncio.run(scenario()) == 2  # both slots (one per pool) are still there


def test_a_waiter_cancelled_while_queued_leaves_free_slots_usable() -> None:
    async def scenario() -> int:
        slots = _Slots(pools=1, size=1)
        held = await slots.acquire()
        waiter = asyncio.create_task(slots.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        slots.release(held)
        return await asyncio.wait_for(slots.acquire(), timeout=1.0)

    assert asyncio.run(scenario()) == 0


def test_a_slot_released_while_a_cancelled_waiter_unwinds_is_not_parked() -> None:
    # A waiter is cancelled and, before its task resumes, the holder releases and asks again
    # (a judge re-asking right after an answer): the slot must come straight back.
    async def scenario() -> int:
        slots = _Slots(pools=1, size=1)
        held = await slots.acquire()
        waiter = asyncio.create_task(slots.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        slots.release(held)
        async with asyncio.timeout(1.0):  # in this task, before the waiter's task resumes
            again = await slots.acquire()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        return again

    assert asyncio.run(scenario()) == 0


def test_backoff_is_full_jitter_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=4.0)
    rng = random.Random(0)
    delays = [policy.delay(retry, None, rng) for retry in range(8) for _ in range(50)]
    assert all(0 <= d <= 4.0 for d in delays)
    assert max(policy.delay(0, None, rng) for _ in range(50)) <= 0.5
    assert all(3.0 <= policy.delay(0, 3.0, rng) <= 3.5 for _ in range(20))


def test_it_reads_retry_after_in_its_forms() -> None:
    assert parse_retry_after({"Retry-After": "0.3"}) == pytest.approx(0.3)
    assert parse_retry_after({"Retry-After": "soon"}) is None
    http_date = parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert http_date == 0.0  # a date in the past: no wait
