"""asyncio helpers."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import structlog

log = structlog.get_logger("nno.kernel.aio")

_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()


def loop_lock(name: str) -> asyncio.Lock:
    """A named lock private to the running event loop. A module-level asyncio.Lock binds itself to
    the first loop that contends for it and then fails on any other (a second core in one process,
    a test's fresh loop)."""
    loop = asyncio.get_running_loop()
    per_loop = _locks.get(loop)
    if per_loop is None:
        per_loop = _locks[loop] = {}
    lock = per_loop.get(name)
    if lock is None:
        lock = per_loop[name] = asyncio.Lock()
    return lock


async def stop_task(task: asyncio.Task[Any] | None, *, timeout_s: float = 5.0) -> None:
    """Cancel a background task and wait for it to end, at most `timeout_s`: a task stuck past its
    cancellation (a call that ignores it) must not hold a shutdown up, so it is logged and left."""
    if task is None:
        return
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        log.warning("background_task_stuck", task=task.get_name(), waited_s=timeout_s)
    elif not task.cancelled() and task.exception() is not None:
        log.warning("background_task_failed", task=task.get_name(), error=repr(task.exception()))
