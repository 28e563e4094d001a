"""How fast does `nno` start? Mean wall and CPU time of `nno --help`, sub-command helps and a real
local command, against a bare `python -c pass`, each run N times in a fresh interpreter.

    .venv/bin/python bench/cli_startup.py [N]

Also times `nno platform list` (an HTTP call and a table) against a local `nno serve` it starts in
the local-dev bypass, and checks that `--help` imported none of the heavy libraries.
"""

from __future__ import annotations

import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

HEAVY = ("httpx", "rich", "fastapi", "sqlalchemy", "uvicorn", "starlette", "pydantic")

CASES: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "python -c 'import typer'": [sys.executable, "-c", "import typer"],
    "nno --help": [sys.executable, "-m", "nno", "--help"],
    "nno platform --help": [sys.executable, "-m", "nno", "platform", "--help"],
    "nno login --help": [sys.executable, "-m", "nno", "login", "--help"],
    # A real command with no network: reads the (empty) credentials file, prints one line.
    "nno logout": [sys.executable, "-m", "nno", "logout"],
}


def timed(cmd: list[str], runs: int, env: dict[str, str]) -> tuple[list[float], list[float]]:
    """Wall times and CPU times (user + system of the child); CPU time is steadier on a busy host."""
    subprocess.run(cmd, capture_output=True, check=True, env=env)  # warm the file cache
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True, env=env)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


@contextmanager
def local_server() -> Iterator[str]:
    """`nno serve` in the local-dev bypass (loopback, no AUTH_API_KEY) on a free port, fresh data."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = tempfile.mkdtemp(prefix="nno-bench-data-")
    env = {k: v for k, v in os.environ.items() if k not in ("AUTH_API_KEY", "NNO_DATABASE_URL", "NNO_REDIS_URL")}
    env.update({"NNO_LOG_LEVEL": "warning"})
    proc = subprocess.Popen([sys.executable, "-m", "nno", "serve", "--port", str(port), "--data-dir", data],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("nno serve did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def heavy_imports() -> str:
    probe = (
        "import sys\nfrom nno.cli.main import app\n"
        "try:\n    app(['--help'], prog_name='nno')\nexcept SystemExit:\n    pass\n"
        f"sys.stderr.write(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stderr.strip()


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    home = tempfile.mkdtemp(prefix="nno-bench-")
    env = {**os.environ, "NNO_HOME": home}
    env.pop("NNO_API_TOKEN", None)
    base: tuple[float, float] | None = None
    print(f"{'command':<32} {'wall ms':>8} {'stdev':>6} {'x python':>9} {'cpu ms':>7} {'x python':>9}   (N={runs})")
    for label, cmd in CASES.items():
        walls, cpus = timed(cmd, runs, env)
        wall, cpu = statistics.mean(walls), statistics.mean(cpus)
        base = base or (wall, cpu)
        print(f"{label:<32} {wall * 1000:8.1f} {statistics.pstdev(walls) * 1000:6.1f} {wall / base[0]:9.1f} "
              f"{cpu * 1000:7.1f} {cpu / base[1]:9.1f}")
    with local_server() as url:
        for label, cmd in {
            "nno platform list (HTTP+table)": [sys.executable, "-m", "nno", "--api-url", url, "platform", "list"],
            "nno platform list --json": [sys.executable, "-m", "nno", "--api-url", url, "platform", "list", "--json"],
        }.items():
            walls, cpus = timed(cmd, runs, env)
            wall, cpu = statistics.mean(walls), statistics.mean(cpus)
            assert base is not None
            print(f"{label:<32} {wall * 1000:8.1f} {statistics.pstdev(walls) * 1000:6.1f} {wall / base[0]:9.1f} "
                  f"{cpu * 1000:7.1f} {cpu / base[1]:9.1f}")
    heavy = heavy_imports()
    print(f"heavy modules imported by `nno --help`: {heavy or 'none'}")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} (machine has {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
