"""A small fault run in CI (issue 18, goal 9): `bench/faults.py` with a few worker kills aimed at
running jobs, one Redis outage (a private redis-server behind a proxy the run cuts) and a few seconds
of PostgreSQL connections terminated under load. The full run is `.venv/bin/python bench/faults.py`."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import BACKEND
from tests.netfaults import PrivateRedis

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(BACKEND != "scaled", reason="needs PostgreSQL: NNO_TEST_BACKEND=scaled"),
    pytest.mark.skipif(not PrivateRedis.available(), reason="needs redis-server"),
]


def bench() -> ModuleType:
    path = Path(__file__).parents[2] / "bench" / "faults.py"
    spec = importlib.util.spec_from_file_location("nno_bench_faults", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_small_fault_run_loses_nothing() -> None:
    faults = bench()
    kills = await faults.worker_kills(platforms=4, kills=3, lease_s=1.5, deadline_s=120)
    assert kills["kills"] >= 1, kills
    assert (kills["active"], kills["failed"], kills["stuck"], kills["duplicated"]) == (4, 0, 0, 0), kills

    redis = await faults.redis_outages(outages=1, platforms=3, ttl_s=1.0, outage_s=1.0)
    [outage] = redis["outages"]
    assert outage["right_during_s"] is not None and outage["right_during_s"] < redis["ttl_s"], outage
    assert outage["warnings"] == 1, outage
    assert outage["stale_after_restore_s"] < redis["ttl_s"], outage
    assert outage["redis_attempts"] < outage["lookups"] / 10, outage  # backed off

    pg = await faults.pg_drops(seconds=3, clients=4)
    assert pg["http_500"] == 0, pg
    assert set(pg["answers"]) <= {"read 200", "write 201", "write 503+Retry-After"}, pg
    assert "unhandled_error" not in pg["logged"], pg
