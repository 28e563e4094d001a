"""GET /health and the merged GET /openapi.json."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tests.gateway.conftest import Harness
from tests.gateway.fakes import FakeIAM, FakeRegistry, echo_app


async def test_health_is_plain_ok_without_auth(gw: Harness) -> None:
    resp = await gw.client.get("/health")
    assert resp.status_code == 200 and resp.text == "ok"
    assert resp.headers["content-type"].startswith("text/plain")
    assert (await gw.client.head("/health")).status_code == 200
    wrong = await gw.client.post("/health")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


def _doc(paths: dict, schemas: dict | None = None) -> dict:
    return {"openapi": "3.1.0", "info": {"title": "x", "version": "1"}, "paths": paths,
            "components": {"schemas": schemas or {}}}


_ids = iter(range(1000))


def _op(ref: str | None = None) -> dict:
    op: dict = {"operationId": f"op{next(_ids)}", "responses": {"200": {"description": "ok"}}}
    if ref:
        op["responses"]["200"]["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}
    return op


async def test_openapi_merges_services_under_public_paths(make_gateway: Callable[..., Awaitable[Harness]]) -> None:
    iam_doc = _doc({"/api/auth/sign-up/email": {"post": _op("User")}, "/api/nno/roles": {"get": _op()}},
                   {"User": {"type": "object"}})
    registry_doc = _doc({"/{platformId}": {"get": _op("Platform")}, "/onboarding": {"post": _op()},
                         "/onboarding/{sessionId}": {"get": _op()}, "/": {"get": _op()}},
                        {"Platform": {"type": "object", "properties": {"u": {"$ref": "#/components/schemas/User"}}},
                         "User": {"type": "string"}})
    billing_doc = _doc({"/webhooks/stripe": {"post": _op()}, "/plans": {"get": _op()}})
    gw = await make_gateway(with_defaults=False, services={
        "iam": FakeIAM().app(iam_doc), "registry": FakeRegistry().app(registry_doc),
        "billing": echo_app(billing_doc), "provisioning": echo_app(),  # no document: listed unavailable
    })
    resp = await gw.client.get("/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    paths = doc["paths"]
    assert {"/health", "/openapi.json", "/api/v1/iam/api/auth/sign-up/email", "/api/v1/iam/api/nno/roles",
            "/api/v1/platforms/{platformId}", "/api/v1/platforms", "/api/v1/onboarding",
            "/api/v1/onboarding/{sessionId}", "/api/v1/billing/webhooks/stripe", "/api/v1/billing/plans"} == set(paths)
    assert "/api/v1/platforms/onboarding" not in paths  # onboarding is only under its own prefix
    # Components are namespaced per service and refs follow.
    schemas = doc["components"]["schemas"]
    assert {"iam_User", "registry_Platform", "registry_User"} <= set(schemas)
    assert schemas["registry_Platform"]["properties"]["u"]["$ref"] == "#/components/schemas/registry_User"
    sign_up = paths["/api/v1/iam/api/auth/sign-up/email"]["post"]
    assert sign_up["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] == \
        "#/components/schemas/iam_User"
    # Public routes are marked as needing no security; others inherit the global requirement.
    assert sign_up["security"] == [] and paths["/api/v1/billing/webhooks/stripe"]["post"]["security"] == []
    assert "security" not in paths["/api/v1/iam/api/nno/roles"]["get"]
    assert doc["security"] and "bearer" in doc["components"]["securitySchemes"]
    assert doc["x-nno-unavailable"] == ["provisioning"]
    operation_ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))


async def test_openapi_with_no_services_has_the_gateways_own_routes(
    make_gateway: Callable[..., Awaitable[Harness]]
) -> None:
    gw = await make_gateway(with_defaults=False)
    doc = (await gw.client.get("/openapi.json")).json()
    assert set(doc["paths"]) == {"/health", "/openapi.json"}
