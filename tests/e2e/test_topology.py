"""The deployment of `deploy/compose.yaml`, started from plain processes (issue 18, goal 6): PostgreSQL
and Redis, one process of services, two gateways behind nginx, two job workers, every NNO process
with the environment of `deploy/nno.env`. Someone signs up and onboards a platform through nginx,
sees it become active, creates a tenant; one gateway is killed and NNO keeps serving.

The processes and their environment are read from the compose file and the env file themselves,
with only addresses made local (`LOCAL`), so this test and what operators run cannot drift apart.
There is no Docker engine here: the image itself is not built by any test."""

from __future__ import annotations

import os
import re
import shutil
import socket
import string
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from nno.kernel.config import SERVICE_NAMES
from tests import processes
from tests.conftest import BACKEND, PG_ADMIN_URL, REDIS_URL, create_pg_database, drop_pg_database

DEPLOY = Path(__file__).parents[2] / "deploy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# What differs between the containers and this machine: addresses, and the data directory.
# NNO_DATA_DIR is shared by every process (until D1, R2 and Pages live in PostgreSQL); it is set here
# and in nno.env only.
LOCAL = ("AUTH_API_KEY", "NNO_SERVICE_TOKEN_SECRET", "NNO_DATABASE_URL", "NNO_REDIS_URL", "NNO_DATA_DIR",
         "NNO_PUBLIC_URL", "NNO_TRUSTED_PROXIES")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def env_file() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (DEPLOY / "nno.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def nno_processes() -> dict[str, list[str]]:
    """The compose services that run NNO (they read nno.env), by name: their `nno` arguments."""
    return {name: [str(a) for a in spec["command"]] for name, spec in compose()["services"].items()
            if spec.get("env_file") == "nno.env"}


def port_of(args: list[str]) -> int | None:
    return int(args[args.index("--port") + 1]) if "--port" in args else None


# --- the files operators use, checked here (no Docker engine to build them) ------------------------

def test_compose_names_the_topology_and_one_environment() -> None:
    spec = compose()["services"]
    procs = nno_processes()
    assert {"postgres", "redis", "proxy"} <= set(spec)
    gateways = [n for n, a in procs.items() if a[0] == "serve" and "--service" not in a]
    services = [n for n, a in procs.items() if "--service" in a]
    workers = [n for n, a in procs.items() if a == ["worker"]]
    assert len(gateways) == 2 and len(workers) == 2 and services == ["services"], procs
    served = [a for i, a in enumerate(procs["services"]) if i and procs["services"][i - 1] == "--service"]
    assert sorted(served) == sorted(SERVICE_NAMES)
    for name in procs:
        assert spec[name]["image"] == "nno:local" and spec[name]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert spec[name]["volumes"] == ["nno-data:/data"]

    env = env_file()
    assert env["NNO_DATA_DIR"] == "/data" and env["NNO_EMBEDDED_WORKER"] == "false"
    assert env["NNO_DATABASE_URL"].startswith("postgresql://") and env["NNO_REDIS_URL"].startswith("redis://")
    svc_port = port_of(procs["services"])
    for name in SERVICE_NAMES:  # every service where the services process serves it, under its name
        assert env[f"NNO_{name.upper()}_URL"] == f"http://services:{svc_port}/{name}"
    assert set(LOCAL) <= set(env)
    proxy = spec["proxy"]
    assert env["NNO_TRUSTED_PROXIES"] == proxy["networks"]["nno"]["ipv4_address"]
    assert {f"{g}:{port_of(procs[g])}" for g in gateways} == {
        proxy["environment"]["NNO_GATEWAY_1"], proxy["environment"]["NNO_GATEWAY_2"]}
    template = (DEPLOY / "nginx" / "nno.conf.template").read_text()
    assert set(re.findall(r"\$\{(NNO_[A-Z0-9_]+)\}", template)) == set(proxy["environment"])

    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile and "\nUSER nno\n" in dockerfile
    assert "pip install . " in dockerfile and "HEALTHCHECK" in dockerfile
    assert spec["services"]["environment"]["NNO_HEALTH_PORT"] == str(svc_port)  # its health check's port


# --- the same topology from plain processes ----------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_health(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None, f"{url} exited: {log.read_text()[-3000:]}"
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer: {log.read_text()[-3000:]}")


class Topology:
    def __init__(self, root: Path, db_url: str) -> None:
        self.root = root
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        self.ports = {name: _free_port() for name, args in nno_processes().items() if port_of(args)}
        self.proxy_port = _free_port()
        shared = env_file()
        svc_port = port_of(nno_processes()["services"])
        local = {
            "AUTH_API_KEY": "topology-" + uuid.uuid4().hex,
            "NNO_SERVICE_TOKEN_SECRET": uuid.uuid4().hex * 2,
            "NNO_DATABASE_URL": db_url,
            "NNO_REDIS_URL": REDIS_URL,
            "NNO_DATA_DIR": str(root / "data"),
            "NNO_PUBLIC_URL": f"http://127.0.0.1:{self.proxy_port}",
            "NNO_TRUSTED_PROXIES": "127.0.0.1",
        }
        assert set(local) == set(LOCAL)
        shared.update(local)
        for key, value in shared.items():
            if key.endswith("_URL") and value.startswith(f"http://services:{svc_port}/"):
                shared[key] = value.replace(f"services:{svc_port}", f"127.0.0.1:{self.ports['services']}")
        self.key = local["AUTH_API_KEY"]
        self.prefix = f"nnotopo:{uuid.uuid4().hex[:10]}:"
        base = {k: v for k, v in os.environ.items() if not k.startswith("NNO_") and k != "AUTH_API_KEY"}
        self.env = {**base, **shared, "NNO_REDIS_PREFIX": self.prefix, "NNO_LOG_LEVEL": "info",
                    "NNO_WORKER_POLL_INTERVAL": "0.2"}

    def start(self, name: str) -> subprocess.Popen[bytes]:
        args = nno_processes()[name]
        if "--host" in args:
            args[args.index("--host") + 1] = "127.0.0.1"
        if "--port" in args:
            args[args.index("--port") + 1] = str(self.ports[name])
        self.logs[name] = self.root / f"{name}.log"
        with self.logs[name].open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "nno", *args], env=self.env, stdout=out, stderr=out)
        self.procs[name] = proc
        return proc

    def start_proxy(self) -> subprocess.Popen[bytes]:
        spec = compose()["services"]["proxy"]["environment"]
        values = {key: re.sub(r"^([a-z0-9-]+):\d+$", lambda m: f"127.0.0.1:{self.ports[m.group(1)]}", str(v))
                  for key, v in spec.items()}
        values["NNO_PROXY_LISTEN"] = f"127.0.0.1:{self.proxy_port}"
        server = string.Template((DEPLOY / "nginx" / "nno.conf.template").read_text()).safe_substitute(values)
        prefix = self.root / "nginx"
        for sub in ("client", "proxy", "fastcgi", "uwsgi", "scgi"):
            (prefix / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        (prefix / "nno.conf").write_text(server)
        (prefix / "nginx.conf").write_text(f"""
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/client;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {prefix}/nno.conf;
}}
""")
        self.logs["proxy"] = prefix / "error.log"
        proc = subprocess.Popen([NGINX, "-e", "stderr", "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                                 "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs["proxy"] = proc
        return proc

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def stop(self) -> None:
        processes.stop(self.procs.values(), timeout=30)


@contextmanager
def topology(tmp_path: Path) -> Iterator[Topology]:
    import asyncio

    db_url = asyncio.run(create_pg_database())
    topo = Topology(tmp_path, db_url)
    try:
        yield topo
    finally:
        topo.stop()
        asyncio.run(drop_pg_database(db_url))
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        try:
            keys = list(client.scan_iter(match=topo.prefix + "*", count=500))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "scaled", reason="the scaled topology: NNO_TEST_BACKEND=scaled")
@pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="needs Debian's nginx (apt-get install nginx)")
def test_the_compose_topology_from_plain_processes(tmp_path: Path) -> None:
    assert PG_ADMIN_URL
    with ExitStack() as stack:
        topo = stack.enter_context(topology(tmp_path))
        names = nno_processes()
        services = topo.start("services")
        _wait_health(topo.url("services"), services, topo.logs["services"])
        for name in names:
            if name != "services":
                topo.start(name)
        for name in names:
            if name in topo.ports and name != "services":
                _wait_health(topo.url(name), topo.procs[name], topo.logs[name])
        proxy = topo.start_proxy()
        front = f"http://127.0.0.1:{topo.proxy_port}"
        _wait_health(front, proxy, topo.logs["proxy"], timeout_s=30)

        with httpx.Client(base_url=front, timeout=60) as client:
            email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
            signed = client.post("/api/v1/iam/api/auth/sign-up/email",
                                 json={"name": "Owner", "email": email, "password": "correct-horse-9"})
            assert signed.status_code == 200, signed.text
            client.cookies.clear()
            owner = {"Authorization": f"Bearer {signed.json()['token']}"}
            onboarding = client.post("/api/v1/onboarding", headers=owner,
                                     json={"platformName": "Behind Nginx", "slug": "behind-nginx", "tier": "starter"})
            assert onboarding.status_code == 201, onboarding.text
            pid, session_id = onboarding.json()["platformId"], onboarding.json()["id"]
            session: dict[str, Any] = {}
            for _ in range(1800):  # the job runs in one of the two `nno worker` processes
                session = client.get(f"/api/v1/onboarding/{session_id}", headers=owner).json()
                if session["status"] in ("completed", "failed"):  # completed: the console is built too
                    break
                time.sleep(0.1)
            steps = {s["name"]: s["status"] for s in session["steps"]}
            assert steps["provision_infra"] == "completed" and steps["verify"] == "completed", session["steps"]
            assert client.get(f"/api/v1/platforms/{pid}", headers=owner).json()["status"] == "active"
            ran = [n for n in names if names[n] == ["worker"] and "job_completed" in topo.logs[n].read_text()]
            assert ran, "no worker ran the job"

            tenants = f"/api/v1/platforms/{pid}/tenants"
            made = client.post(tenants, headers=owner, json={"name": "Sales", "slug": "sales"})
            assert made.status_code == 201, made.text
            # The platform's own hosts go through nginx to a gateway's edge router too.
            host = {"Host": f"{pid}.nno.localhost:{topo.proxy_port}", "accept": "text/html"}
            console = client.get("/sign-in", headers=host)
            assert console.status_code == 200 and "Behind Nginx" in console.text, console.text[:500]

            # One gateway dies: nginx sends everything to the other.
            gateways = [n for n, a in names.items() if a[0] == "serve" and "--service" not in a]
            topo.procs[gateways[0]].kill()
            topo.procs[gateways[0]].wait()
            for _ in range(20):
                listed = client.get(tenants, headers=owner)
                assert listed.status_code == 200, listed.text
            more = client.post(tenants, headers=owner, json={"name": "Ops", "slug": "ops"})
            assert more.status_code == 201, more.text
            slugs = {t["slug"] for t in client.get(tenants, headers=owner).json()["data"]}
            assert {"sales", "ops"} <= slugs
        # Each process said at start what it serves and where it reaches the others.
        started = topo.logs["services"].read_text()
        assert '"services": ["iam", "registry", "billing", "provisioning", "stacks", "cli"]' in started
        assert "nno_serving" in topo.logs[gateways[1]].read_text()
        assert "remote_service_misconfigured" not in "".join(topo.logs[n].read_text() for n in names)
