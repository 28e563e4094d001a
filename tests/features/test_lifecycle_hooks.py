"""Lifecycle hooks run inside the feature's Worker, after its migrations: on_activate at the first
activation, on_upgrade (with the previous version) when the Registry records another version of it,
on_deactivate (told whether the data goes) before its Worker is removed."""

from __future__ import annotations

import httpx

from nno.core import Core
from tests.d1sql import d1_rows
from tests.features.conftest import activate, deactivate, provisioned_platform


async def events(core: Core, pid: str) -> list[tuple[str, str | None, int]]:
    cloud = core.context("edge").extras["cloud"]
    return await d1_rows(cloud, f"{pid}-default-hooked-db",  # type: ignore[return-value]
                         "SELECT name, previous, delete_data FROM events ORDER BY seq")


async def test_hooks_see_activate_upgrade_deactivate(client: httpx.AsyncClient, service_headers: dict[str, str],
                                                     core: Core) -> None:
    h = service_headers
    pid, tenant = await provisioned_platform(client, h)
    assert (await activate(client, h, pid, tenant, "hooked"))["status"] == "COMPLETED"
    assert (await events(core, pid)) == [("activate", None, 0)]

    # The Registry says 0.9.0 runs here (an older package was activated before): this is an upgrade.
    resp = await client.post(f"/api/v1/platforms/{pid}/features", headers=h, json={
        "featureId": "hooked", "version": "0.9.0", "environment": "prod", "entityId": tenant, "status": "active"})
    assert resp.status_code in (200, 201), resp.text
    done = await activate(client, h, pid, tenant, "hooked")
    assert done["status"] == "COMPLETED", done
    assert (await events(core, pid))[-1] == ("upgrade", "0.9.0", 0)
    feats = (await client.get(f"/api/v1/platforms/{pid}/features", headers=h)).json()["data"]
    assert [(f["featureId"], f["version"]) for f in feats] == [("hooked", "1.0.0")]

    # Activating the same version again is a plain (idempotent) activation.
    assert (await activate(client, h, pid, tenant, "hooked"))["status"] == "COMPLETED"
    assert (await events(core, pid))[-1] == ("activate", None, 0)

    assert (await deactivate(client, h, pid, tenant, "hooked"))["status"] == "COMPLETED"
    assert (await events(core, pid))[-1] == ("deactivate", None, 0)
