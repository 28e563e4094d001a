"""The shell's rules without a server: the build, the ShellContext signature, the permission gates."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from nno.console import keys
from nno.console.app import ShellUserView, feature_allowed, route_permission, sidebar
from nno.console.build import (
    CONFIG_PATH,
    STATIC_PREFIX,
    WORKER_MARKER,
    ShellConfig,
    ShellFeature,
    build_console_site,
    check_icon,
    initials,
    initials_icon,
)
from nno.kernel.config import Settings
from nno.sdk.definition import (
    FeatureNavItem,
    FeaturePermission,
    FeatureRoute,
    ShellContext,
    ShellNavGroup,
    ShellNavLink,
    ShellUser,
)
from nno.sdk.shell import sign_shell_context, verify_shell_context

SECRET = b"a dedicated shell secret of 32+ characters"
KEY = keys.derive(SECRET, "p1")


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
    assert verify_shell_context(keys.derive(SECRET, "p2"), token, platform_id="p1", now=1001) is None
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


def test_each_platform_has_its_own_key_and_rotation_keeps_the_old_one_believed(tmp_path: Path) -> None:
    old, new = "o" * 40, "n" * 40
    settings = Settings(NNO_DATA_DIR=tmp_path, NNO_SHELL_SECRET=old)
    a, b = keys.platform_keys(settings, "pa"), keys.platform_keys(settings, "pb")
    assert len(a[0]) == 32 and a[0] != b[0]
    # Not the installation's signing secret, nor anything derived the old way from it.
    assert settings.signing_secret not in a and keys.derive(settings.signing_secret, "pa") != a[0]
    token = sign_shell_context(a[0], context().model_copy(update={"platformId": "pa"}), now=1000)
    assert verify_shell_context(b, token, platform_id="pa", now=1001) is None  # B's key never fits
    rotated = keys.platform_keys(Settings(NNO_DATA_DIR=tmp_path, NNO_SHELL_SECRET=f"{new},{old}"), "pa")
    assert rotated[0] != a[0] and rotated[1] == a[0]
    assert verify_shell_context(rotated, token, platform_id="pa", now=1001) is not None
    dropped = keys.platform_keys(Settings(NNO_DATA_DIR=tmp_path, NNO_SHELL_SECRET=new), "pa")
    assert verify_shell_context(dropped, token, platform_id="pa", now=1001) is None
    with pytest.raises(keys.ShellSecretError):
        keys.shell_secrets(Settings(NNO_DATA_DIR=tmp_path, NNO_SHELL_SECRET="short"))


def test_without_a_configured_secret_one_is_made_once_and_kept(tmp_path: Path) -> None:
    settings = Settings(NNO_DATA_DIR=tmp_path)
    first = keys.platform_keys(settings, "pa")
    path = keys.key_file(settings)
    assert path.exists() and path.stat().st_mode & 0o777 == 0o600
    keys._file_secrets.cache_clear()
    assert keys.platform_keys(Settings(NNO_DATA_DIR=tmp_path), "pa") == first


def test_the_icon_defaults_to_initials_and_takes_an_upload_or_an_https_url() -> None:
    files = build_console_site(config())
    assert files[STATIC_PREFIX + "icon.svg"] == initials_icon("Acme") and b"&#65;</text>" in initials_icon("Acme")
    assert initials("Blue Ocean Labs") == "BO" and initials("") == "?"
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 20
    uploaded = config().model_copy(update={"icon": None})
    up = ShellConfig.model_validate({**uploaded.model_dump(),
                                     "icon": "data:image/png;base64," + base64.b64encode(png).decode()})
    assert up.icon_path() == "/_shell/static/icon.png" and build_console_site(up)[STATIC_PREFIX + "icon.png"] == png
    url = ShellConfig.model_validate({**uploaded.model_dump(), "icon": "https://cdn.example.com/acme.png"})
    assert url.icon_path() == "https://cdn.example.com/acme.png" and url.icon_origin == "https://cdn.example.com"
    for bad in ("javascript:alert(1)", "http://cdn.example.com/a.png", "data:image/svg+xml;base64,PHN2Zz4=",
                "https://x.example/a\"onerror=\"x", "data:image/png;base64,!!", "https://user:pw@x.example/a.png"):
        with pytest.raises(ValidationError):
            ShellConfig.model_validate({**uploaded.model_dump(), "icon": bad})


@given(st.one_of(st.text(max_size=200), st.from_regex(r"https://[a-z.]{1,20}/[ -~]{0,40}", fullmatch=True),
                 st.from_regex(r"data:image/[a-z+]{1,10};base64,[ -~]{0,40}", fullmatch=True)))
def test_an_icon_value_is_a_clean_https_url_or_a_raster_upload_or_refused(value: str) -> None:
    try:
        checked = check_icon(value)
    except ValueError:
        return
    if checked is None:
        assert value == ""
    elif checked.startswith("https://"):
        assert not any(c in checked for c in "\"'<>` \\") and all(ord(c) >= 32 for c in checked)
    else:
        assert checked.split(";", 1)[0] in ("data:image/png", "data:image/jpeg", "data:image/webp", "data:image/gif")


@given(st.text(max_size=120))
def test_no_platform_name_breaks_out_of_the_initials_icon(name: str) -> None:
    svg = initials_icon(name).decode()
    body = svg.split('font-weight="700">', 1)[1].rsplit("</text>", 1)[0]
    assert "<" not in body and ">" not in body and svg.count("<") == 5


def test_the_signed_context_carries_the_sidebar_and_stays_a_small_cookie() -> None:
    nav = [ShellNavGroup(featureId=f"feature{i}", label=f"Feature number {i}",
                         items=[ShellNavLink(label=f"Page {j}", href=f"f/feature{i}/page-{j}") for j in range(4)])
           for i in range(5)]
    ctx = context().model_copy(update={
        "nav": nav, "services": {f"feature{i}": f"http://feature{i}.svc.default.p1.nno.localhost:8787"
                                 for i in range(5)},
        "features": [f"feature{i}" for i in range(5)], "shellUrl": "http://p1.nno.localhost:8787/",
        "icon": "http://p1.nno.localhost:8787/_shell/static/icon.svg", "tenantName": "Blue team"})
    token = sign_shell_context(KEY, ctx, now=1000)
    assert verify_shell_context(KEY, token, platform_id="p1", now=1001) == ctx
    assert len(token) < 4000  # browsers keep cookies up to 4096 bytes


async def test_the_csp_allows_images_from_an_icon_url_only() -> None:
    import httpx

    from nno.console.app import create_console_app

    async def no_workers(*_: object) -> object:
        raise AssertionError("no auth call for an anonymous sign-in page")

    for icon, origin in ((None, None), ("https://cdn.example.com/acme.png", "https://cdn.example.com")):
        cfg = ShellConfig.model_validate({**config().model_dump(), "icon": icon})
        app = create_console_app(cfg, no_workers, key=KEY, base_domain="nno.localhost")  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p1.nno.localhost") as c:
            page = await c.get("/sign-in", headers={"accept": "text/html"})
        img = next(d for d in page.headers["content-security-policy"].split("; ") if d.startswith("img-src"))
        assert img == ("img-src 'self' data:" + (f" {origin}" if origin else ""))
        assert f'src="{cfg.icon_path()}"' in page.text and f'rel="icon" href="{cfg.icon_path()}"' in page.text
