"""Stopping the `nno` processes a test or bench started: a signal to each still running, then at most
`timeout` seconds for each to exit before it is killed, so a hung process never hangs the run."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterable
from typing import Any


def stop(procs: Iterable[subprocess.Popen[Any]], sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(sig)
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
