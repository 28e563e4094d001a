"""How fast does `nno` start? Mean wall time of `nno --help` (and a sub-command's help) against a
bare `python -c pass`, each run N times in a fresh interpreter.

    .venv/bin/python bench/cli_startup.py [N]

Also checks that `--help` imported none of the heavy libraries (httpx, rich, fastapi, ...).
"""

from __future__ import annotations

import os
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


def timed(cmd: list[str], runs: int, env: dict[str, str]) -> list[float]:
    subprocess.run(cmd, capture_output=True, check=True, env=env)  # warm the file cache
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True, env=env)
        samples.append(time.perf_counter() - start)
    return samples


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
    print(f"{'command':<28} {'mean ms':>9} {'stdev':>7} {'min ms':>8} {'x python':>9} {'min x':>6}   (N={runs})")
    for label, cmd in CASES.items():
        samples = timed(cmd, runs, env)
        mean = statistics.mean(samples)
        base = base or (mean, min(samples))
        print(f"{label:<28} {mean * 1000:9.1f} {statistics.pstdev(samples) * 1000:7.1f} "
              f"{min(samples) * 1000:8.1f} {mean / base[0]:9.1f} {min(samples) / base[1]:6.1f}")
    heavy = heavy_imports()
    print(f"heavy modules imported by `nno --help`: {heavy or 'none'}")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} (machine has {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
