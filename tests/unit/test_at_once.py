"""`at_once`: calls started in one loop turn and driven in the caller's task behave as `gather` would."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hermes.application.at_once import all_at_once, at_once


class Batching:
    """A store that, like the batching Redis client, answers what was issued in one loop turn together."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self._pending: list[tuple[str, asyncio.Future[str]]] = []

    async def command(self, name: str) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append((name, future))
        return await future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        self.batches.append([name for name, _ in pending])
        for name, future in pending:
            if not future.done():
                future.set_result(name.upper())


async def test_calls_are_issued_in_one_round_trip_and_answered_in_order() -> None:
    store = Batching()

    async def two_steps(name: str) -> str:
        first = await store.command(name)
        return first + await store.command(name + "-again")

    results = await at_once(store.command("a"), two_steps("b"), store.command("c"))
    assert results == ["A", "BB-AGAIN", "C"]
    assert store.batches[0] == ["a", "b", "c"]  # all three went out together
    assert store.batches[1:] == [["b-again"]]


async def test_a_failure_is_returned_in_its_place_and_the_others_still_run() -> None:
    store = Batching()

    async def fails() -> None:
        await store.command("x")
        raise ValueError("refused")

    async def done_at_once() -> int:
        return 7

    results = await at_once(fails(), store.command("y"), done_at_once())
    assert isinstance(results[0], ValueError)
    assert results[1:] == ["Y", 7]


async def test_futures_bare_yields_and_tasks_are_awaited_too() -> None:
    store = Batching()

    async def yields_to_the_loop() -> str:
        await asyncio.sleep(0)
        await asyncio.sleep(0.001)
        return "slept"

    task = asyncio.ensure_future(store.command("t"))
    assert await at_once(yields_to_the_loop(), task, store.command("u")) == ["slept", "T", "U"]


async def test_something_other_than_a_future_awaited_is_an_error_of_that_call() -> None:
    class Odd:
        def __await__(self) -> Any:
            yield "not a future"

    async def odd() -> None:
        await Odd()

    results = await at_once(odd(), asyncio.sleep(0, "fine"))
    assert isinstance(results[0], RuntimeError)
    assert results[1] == "fine"


async def test_cancelling_the_caller_cancels_each_call_once_lets_it_clean_up_and_raises() -> None:
    seen: list[str] = []
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def waits(name: str) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append(f"{name} cancelled")
            await asyncio.sleep(0.001)  # its cleanup may wait too: it is not cancelled again
            seen.append(f"{name} cleaned up")
            raise

    caller = asyncio.ensure_future(at_once(waits("a"), waits("b"), never))
    await asyncio.sleep(0.01)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert seen == ["a cancelled", "a cleaned up", "b cancelled", "b cleaned up"]
    assert never.cancelled()


async def test_a_deadline_around_it_still_ends_as_a_timeout() -> None:
    async def slow() -> None:
        await asyncio.sleep(10)

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await at_once(slow(), slow())
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # the deadline's cancellation was taken back


async def test_all_at_once_raises_the_first_failure_in_order_once_every_call_has_ended() -> None:
    store = Batching()
    ended: list[str] = []

    async def fails(name: str, after: int) -> None:
        for _ in range(after):
            await store.command(name)
        ended.append(name)
        raise ValueError(name)

    async def succeeds() -> str:
        result = await store.command("ok")
        ended.append("ok")
        return result

    with pytest.raises(ValueError, match=r"^late$"):
        await all_at_once(fails("late", 2), fails("early", 1), succeeds())
    assert sorted(ended) == ["early", "late", "ok"]  # every call ran to its end first
    assert await all_at_once(succeeds(), store.command("x")) == ["OK", "X"]
