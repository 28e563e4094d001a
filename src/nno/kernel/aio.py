"""asyncio helpers."""

from __future__ import annotations

import asyncio
import weakref

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
