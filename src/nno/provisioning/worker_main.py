"""`nno worker`: a provisioning worker process (scaled mode).

It claims jobs from the provisioning table (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so any number of
these processes share the queue) and runs them. The services a job calls are reached at their
`NNO_<SERVICE>_URL` when set, otherwise hosted in this process on the same databases. SIGTERM or
SIGINT stops it cleanly: interrupted jobs are released for another worker at once; a worker killed
outright is covered by its lease expiring (NNO_JOB_LEASE).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import structlog


async def serve_worker(concurrency: int | None = None) -> None:
    from nno.core import Core
    from nno.kernel.config import Settings
    from nno.provisioning.worker import JobWorker

    # This process is the worker: the service's own embedded worker stays off, and provisioning is
    # hosted here even when the gateway reaches it over HTTP.
    settings = Settings().model_copy(update={"embedded_worker": False, "provisioning_url": None,
                                             "cli_url": None})
    log = structlog.get_logger("nno.worker")
    core = Core(settings, with_gateway=False, with_edge=False)
    await core.start()
    if "provisioning" not in core.contexts:
        await core.stop()
        raise RuntimeError("the provisioning service could not be loaded")
    worker = JobWorker(core.context("provisioning"), concurrency=concurrency)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await worker.start()
    builds = None
    if "cli" in core.contexts:  # the CLI Service's console builds share these worker processes
        from nno.repos.runner import BuildRunner

        builds = BuildRunner(core.context("cli"))
        await builds.start()
    log.info("nno_worker_ready", worker=worker.worker_id, scaled=settings.scaled, provider=settings.provider)
    try:
        await stop.wait()
    finally:
        if builds is not None:
            await builds.stop()
        await worker.stop()
        await core.stop()


def run_worker(*, concurrency: int | None, data_dir: Path | None) -> None:
    from nno.kernel.config import Settings
    from nno.kernel.logging import configure_logging

    if data_dir is not None:
        os.environ["NNO_DATA_DIR"] = str(data_dir)
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    from nno.kernel.topology import refusals

    # A URL that reaches a gateway or another service cannot work: refused before any job is claimed.
    refused = refusals(settings.model_copy(update={"provisioning_url": None, "cli_url": None}), [])
    if refused:
        for message in refused:
            print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)
    asyncio.run(serve_worker(concurrency))
