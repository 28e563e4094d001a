"""Who may create the first operator: the service key from anywhere; under the local-dev bypass
(no AUTH_API_KEY) only a caller on the server's own machine, since the operator it makes keeps its
rights once authentication is turned on."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from nno.kernel.config import Settings
from tests.conftest import BASE_URL, SERVICE_KEY, running_core

BOOTSTRAP = "/api/v1/iam/api/nno/bootstrap"
BODY = {"email": "op@example.com", "password": "operator-password-123"}


def _client(app: object, host: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(host, 40000)),  # type: ignore[arg-type]
                             base_url=BASE_URL)


@pytest.mark.parametrize("remote", ["203.0.113.7", "10.0.0.2", "2001:db8::1", "not-an-address"])
async def test_dev_bypass_refuses_bootstrap_from_another_machine(
    make_settings: Callable[..., Settings], remote: str
) -> None:
    async with running_core(make_settings(auth_api_key=None)) as core:
        async with _client(core.asgi, remote) as c:
            refused = await c.post(BOOTSTRAP, json=BODY)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "FORBIDDEN" and "AUTH_API_KEY" in refused.json()["error"]["message"]
        async with _client(core.asgi, "127.0.0.1") as local:
            assert (await local.get(BOOTSTRAP)).json() == {"bootstrapped": False}  # nothing was made


@pytest.mark.parametrize("local", ["127.0.0.1", "::1"])
async def test_dev_bypass_bootstraps_from_this_machine(make_settings: Callable[..., Settings], local: str) -> None:
    async with running_core(make_settings(auth_api_key=None)) as core, _client(core.asgi, local) as c:
        made = await c.post(BOOTSTRAP, json=BODY)
        assert made.status_code == 201, made.text
        assert (await c.get(BOOTSTRAP)).json() == {"bootstrapped": True}


async def test_the_service_key_bootstraps_from_anywhere(make_settings: Callable[..., Settings]) -> None:
    async with running_core(make_settings(auth_api_key=SERVICE_KEY)) as core, _client(core.asgi, "203.0.113.7") as c:
        anonymous = await c.post(BOOTSTRAP, json=BODY)
        assert anonymous.status_code == 401
        made = await c.post(BOOTSTRAP, json=BODY, headers={"Authorization": f"Bearer {SERVICE_KEY}"})
        assert made.status_code == 201, made.text
