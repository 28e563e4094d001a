"""How fast does `nno` start? Mean wall and CPU time of `nno --help`, sub-command helps and a real
local command, against a bare `python -c pass`, each run N times in a fresh interpreter.

    .venv/bin/python bench/cli_startup.py [N]

Also checks that `--help` imported none of the heavy libraries (httpx, rich, fastapi, ...).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

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
    base = None
    print(f"{'command':<28} {'wall ms':>8} {'stdev':>6} {'x python':>9} {'cpu ms':>7} {'x python':>9}   (N={runs})")
    for label, cmd in CASES.items():
        walls, cpus = timed(cmd, runs, env)
        wall, cpu = statistics.mean(walls), statistics.mean(cpus)
        base = base or (wall, cpu)
        print(f"{label:<28} {wall * 1000:8.1f} {statistics.pstdev(walls) * 1000:6.1f} {wall / base[0]:9.1f} "
              f"{cpu * 1000:7.1f} {cpu / base[1]:9.1f}")
    heavy = heavy_imports()
    print(f"heavy modules imported by `nno --help`: {heavy or 'none'}")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} (machine has {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
