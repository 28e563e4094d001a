"""A split deployment with one shared environment file (issue 18, goal 7): a process started for
some services serves them even though the environment also names their own URL, and reaches the
others at theirs."""

from __future__ import annotations

from collections.abc import Callable

from structlog.testing import capture_logs

from nno.core import Core
from nno.kernel.bindings import ASGIBinding, HTTPBinding
from nno.kernel.config import Settings


async def test_its_own_service_wins_over_its_url_in_a_shared_environment(
        make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(registry_url="http://registry.internal:8001", iam_url="http://iam.internal:8002")
    core = Core(settings, services=["registry"], with_gateway=False, with_edge=False, standalone=True)
    with capture_logs() as logs:
        await core.start()
    try:
        assert sorted(core.apps) == ["registry"]  # served here, not forwarded to itself
        assert isinstance(core.bindings.get("registry"), ASGIBinding)
        assert isinstance(core.bindings.get("iam"), HTTPBinding)  # the others stay remote
        started = next(e for e in logs if e["event"] == "core_started")
        assert started["services"] == ["registry"]
        assert started["remote"] == {"iam": "http://iam.internal:8002"}
        assert any(e["event"] == "own_service_url_ignored" and e["service"] == "registry" for e in logs)
    finally:
        await core.stop()


async def test_an_embedded_core_still_delegates_a_service_given_a_url(make_settings: Callable[..., Settings]) -> None:
    core = Core(make_settings(registry_url="http://registry.internal:8001"), with_gateway=False, with_edge=False)
    await core.start()
    try:
        assert "registry" not in core.apps
        assert isinstance(core.bindings.get("registry"), HTTPBinding)
    finally:
        await core.stop()
