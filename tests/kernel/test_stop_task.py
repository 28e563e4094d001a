"""Background tasks stop within a bound: one that ignores its cancellation cannot hold a shutdown up."""

from __future__ import annotations

import asyncio
import contextlib

from structlog.testing import capture_logs

from nno.kernel.aio import stop_task


async def test_a_task_that_honours_cancellation_is_awaited() -> None:
    task = asyncio.create_task(asyncio.sleep(3600))
    await stop_task(task)
    assert task.cancelled()


async def test_a_task_that_ignores_cancellation_is_left_after_the_bound() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await release.wait()

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    with capture_logs() as logs:
        await stop_task(task, timeout_s=0.05)
    assert not task.done()
    assert [e["task"] for e in logs if e["event"] == "background_task_stuck"] == ["stubborn"]
    release.set()
    await task


async def test_a_failed_task_is_logged_not_raised() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(fails(), name="fails")
    await asyncio.sleep(0)
    with capture_logs() as logs:
        await stop_task(task)
    assert [e["event"] for e in logs] == ["background_task_failed"]
    await stop_task(None)
