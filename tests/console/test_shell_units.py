"""The shell's rules without a server: the build, the ShellContext signature, the permission gates."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from nno.console.app import ShellUserView, feature_allowed, route_permission, sidebar
from nno.console.build import CONFIG_PATH, STATIC_PREFIX, WORKER_MARKER, ShellConfig, ShellFeature, build_console_site
from nno.sdk.definition import FeatureNavItem, FeaturePermission, FeatureRoute, ShellContext, ShellUser
from nno.sdk.shell import shell_key, sign_shell_context, verify_shell_context

KEY = shell_key(b"secret", "p1")


def feature(fid: str, order: int, required: str | None = None, extra: str | None = None) -> ShellFeature:
    perms = [FeaturePermission(key=f"{fid}:read", label="read", required=True)] if required else []
    if extra:
        perms.append(FeaturePermission(key=extra, label="extra"))
    return ShellFeature(
        id=fid, version="1.0.0", displayName=fid.title(), url=f"http://{fid}.p1.nno.localhost",
        navigation=[FeatureNavItem(label=fid.title(), path="/", order=order),
                    FeatureNavItem(label="Admin", path="/admin", order=order + 1, permission=extra)],
        routes=[FeatureRoute(path="/items/{itemId}", permission=required),
                FeatureRoute(path="/admin", permission=extra)],
        permissions=perms)


def config(*features: ShellFeature) -> ShellConfig:
    return ShellConfig(platformId="p1", name="Acme", authWorker="p1-default-auth",
                       authUrl="http://auth.p1.nno.localhost", features=list(features))


def user(*perms: str, role: str | None = "user") -> ShellUserView:
    return ShellUserView(id="u1", email="u@example.com", name=None, role=role, session_id="s", tenant_id="o",
                         permissions=perms, token="t")


def test_the_build_is_deterministic_ordered_and_small() -> None:
    a = build_console_site(config(), [feature("zeta", 90), feature("alpha", 10)])
    b = build_console_site(config(), [feature("alpha", 10), feature("zeta", 90)])
    assert a == b
    order = [f["id"] for f in json.loads(a[CONFIG_PATH])["features"]]
    assert order == ["alpha", "zeta"]
    assert json.loads(a[WORKER_MARKER]) == {"kind": "console"}
    assert {STATIC_PREFIX + "htmx.min.js", STATIC_PREFIX + "shell.css"} <= set(a)
    assert sum(len(v) for k, v in a.items() if k.startswith(STATIC_PREFIX)) < 100_000


def test_gates_follow_required_and_item_permissions() -> None:
    tasks = feature("tasks", 20, required="tasks:read", extra="tasks:manage")
    cfg = config(tasks, feature("open", 5))
    nobody = user()
    reader = user("tasks:read")
    admin = user(role="platform-admin")
    assert not feature_allowed(tasks, nobody) and feature_allowed(tasks, reader)
    assert [g["feature"].id for g in sidebar(cfg, nobody)] == ["open"]
    reader_items = next(g["items"] for g in sidebar(cfg, reader) if g["feature"].id == "tasks")
    assert [i.label for i in reader_items] == ["Tasks"]  # not Admin: tasks:manage is not held
    assert [i.label for i in next(g["items"] for g in sidebar(cfg, admin) if g["feature"].id == "tasks")] == [
        "Tasks", "Admin"]
    assert route_permission(tasks, "/items/42") == (True, "tasks:read")
    assert route_permission(tasks, "/admin") == (True, "tasks:manage")
    assert route_permission(tasks, "/items/42/x")[0] is False
    assert route_permission(tasks, "/elsewhere")[0] is False
    assert user("tasks:*").can("tasks:manage") and not user("tasks:*").can("other:read")


def context() -> ShellContext:
    return ShellContext(platformId="p1", tenantId="o1", user=ShellUser(id="u1", email="u@example.com"),
                        permissions=["tasks:read"], features=["tasks"])


def test_a_signed_context_round_trips_for_its_platform_and_user_only() -> None:
    token = sign_shell_context(KEY, context(), now=1000)
    assert verify_shell_context(KEY, token, platform_id="p1", user_id="u1", now=1001) == context()
    assert verify_shell_context(KEY, token, platform_id="p2", now=1001) is None
    assert verify_shell_context(KEY, token, platform_id="p1", user_id="u2", now=1001) is None
    assert verify_shell_context(shell_key(b"secret", "p2"), token, platform_id="p1", now=1001) is None
    assert verify_shell_context(KEY, token, platform_id="p1", now=1000 + 601) is None  # expired


@given(st.integers(min_value=0, max_value=10_000), st.characters(codec="ascii"))
def test_any_changed_character_is_refused(position: int, char: str) -> None:
    token = sign_shell_context(KEY, context(), now=1000)
    i = position % len(token)
    if token[i] == char:
        return
    forged = token[:i] + char + token[i + 1:]
    assert verify_shell_context(KEY, forged, platform_id="p1", now=1001) is None


@given(st.text(max_size=300))
def test_garbage_is_refused_not_raised(token: str) -> None:
    assert verify_shell_context(KEY, token, platform_id="p1") is None
