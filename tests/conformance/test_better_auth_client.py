"""Better Auth's official client (`better-auth` on npm, pinned in `better-auth/package.json`) against
NNO, as a platform's app uses it: `better-auth/conformance.mjs` makes every call of the client's
core, organization, magic-link and device-authorization APIs that NNO offers and judges each answer.

Two targets, one NNO start and one `node` run each: NNO's IAM through the gateway
(`/api/v1/iam/api/auth`), and a platform's auth worker reached through the edge by its host
(`auth.svc.default.{platformId}.nno.localhost`). NNO serves on a free loopback port, in this test's
event loop, so the test reads mailed tokens from the outbox while the client waits for them.

Needs `node` (20+) and the suite's packages (`npm ci --prefix tests/conformance/better-auth`, which
`make test` runs): without them the test fails, it does not skip.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import text

from nno.core import Core
from nno.kernel.config import Settings
from nno.kernel.db import Database
from nno.provisioning.providers.local import LocalProvider

SUITE = Path(__file__).parent / "better-auth"
SCRIPT = SUITE / "conformance.mjs"
PLATFORM = "cf0rm4nce1"
# What a mail of each kind carries: its token, in the link it holds.
TOKEN_IN_MAIL = {
    "magic_link": re.compile(r"/api/auth/magic-link/verify\?token=([^&\s]+)"),
    "password_reset": re.compile(r"/api/auth/reset-password\?token=([^&\s]+)"),
}
RUN_TIMEOUT_S = 300  # a hung run fails instead of hanging the suite; not a speed target


def node_or_fail() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("`node` is not on PATH: the Better Auth conformance suite needs Node.js 20+ "
                    "(Debian: apt-get install nodejs npm)")
    if not (SUITE / "node_modules" / "better-auth" / "package.json").is_file():
        pytest.fail(f"The suite's packages are not installed: run `npm ci --prefix {SUITE}` (`make test` does)")
    return node


@asynccontextmanager
async def serving(core: Core) -> AsyncIterator[int]:
    """The core on a free loopback port, in this event loop; yields the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(core.asgi, lifespan="off", log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield port
    finally:
        server.should_exit = True
        await task
        sock.close()


async def mailed_token(db: Database, kind: str, to: str) -> str:
    async with db.session() as s:
        body = (await s.execute(text(
            "SELECT body FROM mail_outbox WHERE to_address = :to AND kind = :kind "
            "ORDER BY created_at DESC, id DESC LIMIT 1"), {"to": to, "kind": kind})).scalar_one()
    found = TOKEN_IN_MAIL[kind].search(body)
    assert found, body
    return found.group(1)


async def run_client(node: str, base_url: str, outbox: Database) -> list[dict[str, Any]]:
    """Runs the suite against `base_url`, answering its requests for mailed tokens; its output lines."""
    proc = await asyncio.create_subprocess_exec(
        node, str(SCRIPT), base_url, cwd=SUITE, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdin and proc.stdout and proc.stderr
    lines: list[dict[str, Any]] = []

    async def converse() -> None:
        assert proc.stdin and proc.stdout
        async for raw in proc.stdout:
            line = json.loads(raw)
            lines.append(line)
            if line.get("need") == "mail":
                token = await mailed_token(outbox, line["kind"], line["to"])
                proc.stdin.write(token.encode() + b"\n")
                await proc.stdin.drain()

    try:
        await asyncio.wait_for(converse(), RUN_TIMEOUT_S)
        await asyncio.wait_for(proc.wait(), RUN_TIMEOUT_S)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stderr = (await proc.stderr.read()).decode()
    assert proc.returncode == 0, f"node exited {proc.returncode}:\n{stderr}"
    return lines


def assert_conforms(lines: list[dict[str, Any]]) -> None:
    calls = [line for line in lines if "call" in line]
    failures = [f"{c['call']}: {c.get('detail')}" for c in calls if not c["ok"]]
    assert not failures, "calls that do not conform:\n" + "\n".join(failures)
    assert lines and lines[-1].get("done") and lines[-1]["calls"] == len(calls), lines[-1:]
    names = {c["call"] for c in calls}
    # The whole surface was driven (a run cut short would pass with fewer calls).
    for expected in ("signUp.email", "getSession (bearer)", "changePassword (revokeOtherSessions)",
                     "magicLink.verify", "organization.create", "organization.acceptInvitation",
                     "organization.removeMember", "device.token", "device.deny", "resetPassword", "signOut"):
        assert expected in names, f"{expected} was not called"


@pytest.fixture
def node() -> str:
    return node_or_fail()


async def test_official_client_against_nno_iam_through_the_gateway(node: str, settings: Settings) -> None:
    core = Core(settings, services=["iam"], with_edge=False)
    await core.start()
    try:
        async with serving(core) as port:
            lines = await run_client(node, f"http://127.0.0.1:{port}/api/v1/iam/api/auth", core.context("iam").db)
    finally:
        await core.stop()
    assert_conforms(lines)


async def test_official_client_against_a_platforms_auth_worker(node: str, settings: Settings) -> None:
    core = Core(settings, services=["iam"])
    await core.start()
    provider = LocalProvider(settings)
    outbox: Database | None = None
    try:
        # The PROVISION_PLATFORM steps that make the auth worker, as the job engine runs them.
        worker, d1 = f"{PLATFORM}-default-auth", f"{PLATFORM}-default-auth-db"
        await provider.ensure_d1(d1)
        await provider.ensure_worker(worker, kind="auth", platform_id=PLATFORM, bindings={"DB": d1})
        await provider.put_secret(worker, "AUTH_SECRET", f"auth-secret-{PLATFORM}")
        host = f"auth.svc.default.{PLATFORM}.{settings.base_domain}"
        await provider.ensure_dns(host, target=worker, platform_id=PLATFORM)
        outbox = await provider.cloud.d1_database(d1)  # the D1's SQLite file, or its PostgreSQL schema
        async with serving(core) as port:
            lines = await run_client(node, f"http://{host}:{port}/api/auth", outbox)
    finally:
        if outbox is not None:
            await outbox.dispose()
        await provider.close()
        await core.stop()
    assert_conforms(lines)
