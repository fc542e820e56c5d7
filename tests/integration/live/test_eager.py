"""Eager sends: finished in place when nothing waits, handed to a task when something does."""

from __future__ import annotations

import asyncio

import pytest

from bi_engine.live.eager import run_eagerly

pytestmark = pytest.mark.unit


async def test_a_coroutine_that_never_waits_completes_in_place() -> None:
    done: list[int] = []

    async def write() -> None:
        done.append(1)

    assert run_eagerly(write()) is None
    assert done == [1]


async def test_a_coroutine_that_waits_is_finished_by_a_task() -> None:
    writable = asyncio.Event()
    done: list[str] = []

    async def write() -> None:
        done.append("started")
        await writable.wait()
        await asyncio.sleep(0)
        done.append("written")

    pending = run_eagerly(write())
    assert pending is not None
    assert done == ["started"]
    writable.set()
    await asyncio.wait_for(pending, 1)
    assert done == ["started", "written"]


async def test_errors_and_cancellation_reach_the_coroutine_and_the_caller() -> None:
    async def fails_later() -> None:
        await asyncio.sleep(0)
        raise ValueError("broken pipe")

    failing = run_eagerly(fails_later())
    assert failing is not None
    with pytest.raises(ValueError, match="broken pipe"):
        await failing

    cleaned: list[bool] = []

    async def blocked() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append(True)

    waiting = run_eagerly(blocked())
    assert waiting is not None
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert cleaned == [True]


async def test_an_error_before_the_first_wait_is_raised_at_once() -> None:
    async def fails_now() -> None:
        raise RuntimeError("closed")

    with pytest.raises(RuntimeError, match="closed"):
        run_eagerly(fails_now())
