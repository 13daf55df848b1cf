"""``Turn``: free turns are taken at once, waiters are served in order, cancellations never
lose the turn nor let anyone in twice."""

from __future__ import annotations

import asyncio

import pytest

from bot.kraken.turn import Turn


async def test_a_free_turn_is_taken_at_once_and_only_once() -> None:
    turn = Turn()
    assert not turn.locked()
    assert turn.try_take()
    assert turn.locked()
    assert not turn.try_take()
    turn.release()
    assert not turn.locked()
    await turn.take()  # free: no suspension needed
    assert turn.locked()
    turn.release()
    with pytest.raises(RuntimeError, match="not taken"):
        turn.release()


async def test_waiters_are_served_in_arrival_order_and_nobody_barges() -> None:
    turn, order = Turn(), []
    assert turn.try_take()

    async def worker(name: str) -> None:
        await turn.take()
        order.append(name)
        await asyncio.sleep(0)
        turn.release()

    tasks = [asyncio.create_task(worker(n)) for n in "abc"]
    await asyncio.sleep(0)  # all three in line
    turn.release()  # handed to "a": still taken
    assert turn.locked()
    assert not turn.try_take()  # a newcomer cannot slip in before "a" runs
    await asyncio.gather(*tasks)
    assert order == ["a", "b", "c"]
    assert not turn.locked()


async def test_mutual_exclusion_under_many_contenders() -> None:
    turn, inside, most = Turn(), 0, 0

    async def worker() -> None:
        nonlocal inside, most
        for _ in range(20):
            await turn.take()
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0)
            inside -= 1
            turn.release()

    await asyncio.gather(*(worker() for _ in range(10)))
    assert most == 1
    assert not turn.locked()


async def test_a_waiter_cancelled_in_line_leaves_it() -> None:
    turn = Turn()
    assert turn.try_take()
    waiting = asyncio.create_task(turn.take())
    behind = asyncio.create_task(turn.take())
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.sleep(0)
    assert waiting.cancelled()
    turn.release()  # goes to the one still in line
    await behind
    assert turn.locked()
    turn.release()
    assert not turn.locked()


async def test_a_waiter_cancelled_after_the_handover_passes_the_turn_on() -> None:
    turn = Turn()
    assert turn.try_take()
    first = asyncio.create_task(turn.take())
    second = asyncio.create_task(turn.take())
    await asyncio.sleep(0)
    turn.release()  # handed to "first", which has not run yet
    first.cancel()  # cancelled before it runs: the turn must go to "second"
    await asyncio.wait([first])
    assert first.cancelled()
    async with asyncio.timeout(1):
        await second
    assert turn.locked()
    turn.release()
    assert not turn.locked()


def in_line(turn: Turn, order: list[str], name: str, priority: int) -> asyncio.Task[None]:
    """A task that waits for the turn at ``priority``, notes its turn and passes it on."""

    async def worker() -> None:
        await turn.take(priority)
        order.append(name)
        turn.release()

    return asyncio.create_task(worker())


async def test_a_lower_priority_number_goes_first_then_arrival_order() -> None:
    """Issue 10 item 3: a dead-man's switch refresh (0) no longer waits behind reads (2)
    that came first; cancels (0) and order entry (1) neither."""
    turn, order = Turn(), []
    assert turn.try_take()
    line = [("read-1", 2), ("read-2", 2), ("add", 1), ("read-3", 2), ("refresh", 0)]
    line += [("cancel", 0)]
    tasks = [in_line(turn, order, n, p) for n, p in line]
    await asyncio.sleep(0)  # all in line, in this order
    assert turn.waiting() == len(line)
    turn.release()
    await asyncio.gather(*tasks)
    assert order == ["refresh", "cancel", "add", "read-1", "read-2", "read-3"]


async def test_a_cancelled_waiter_of_any_priority_leaves_the_line() -> None:
    turn, order = Turn(), []
    assert turn.try_take()
    urgent, read = in_line(turn, order, "urgent", 0), in_line(turn, order, "read", 2)
    await asyncio.sleep(0)
    urgent.cancel()
    await asyncio.sleep(0)
    assert turn.waiting() == 1
    turn.release()
    await read
    assert order == ["read"] and urgent.cancelled() and not turn.locked()
