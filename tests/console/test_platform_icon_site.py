"""The Registry's platform icon reaches the built shell: the next build of the console site (a
feature's activation rebuilds it) serves the uploaded image and names it in every page's header and
favicon; an icon URL is named as it is and allowed by the CSP."""

from __future__ import annotations

import base64

import httpx

from nno.core import Core
from tests.features.conftest import At, activate, at, provisioned_platform

__all__ = ["at"]

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9"
                       "awAAAABJRU5ErkJggg==")
P = "/api/v1/platforms"


async def test_the_next_build_shows_the_platforms_icon(core: Core, client: httpx.AsyncClient,
                                                      service_headers: dict[str, str], at: At) -> None:
    pid, tenant = await provisioned_platform(client, service_headers)
    shell = at(f"{pid}.nno.localhost")
    page = await shell.get("/sign-in", headers={"accept": "text/html"})
    assert "/_shell/static/icon.svg" in page.text  # the initials until an icon is set

    upload = "data:image/png;base64," + base64.b64encode(PNG).decode()
    resp = await client.patch(f"{P}/{pid}", json={"icon": upload}, headers=service_headers)
    assert resp.status_code == 200, resp.text
    assert (await activate(client, service_headers, pid, tenant, "settings"))["status"] == "COMPLETED"
    page = await shell.get("/sign-in", headers={"accept": "text/html"})
    assert "/_shell/static/icon.png" in page.text, page.text
    served = await shell.get("/_shell/static/icon.png")
    assert served.status_code == 200 and served.content == PNG

    url = "https://cdn.example.com/brand/icon.png"
    assert (await client.patch(f"{P}/{pid}", json={"icon": url}, headers=service_headers)).status_code == 200
    assert (await activate(client, service_headers, pid, tenant, "tasks"))["status"] == "COMPLETED"
    page = await shell.get("/sign-in", headers={"accept": "text/html"})
    assert url in page.text and "https://cdn.example.com" in page.headers["content-security-policy"]
