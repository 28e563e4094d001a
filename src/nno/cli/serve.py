"""`nno serve`: start the core under uvicorn."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path
from typing import Any

import typer


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
        except OSError:
            return False


def local_url(host: str, port: int) -> str:
    """The address this process serves, as a URL a browser on this machine can open."""
    if host in ("", "0.0.0.0", "::"):  # every interface: this machine reaches it on loopback
        host = "127.0.0.1"
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"http://{host}:{port}"


# `--workers N`: what the supervisor hands its child processes, which build the core themselves.
SERVICES_ENV = "NNO_SERVE_SERVICES"
_worker_lock: int | None = None  # held for the life of the one child that runs the embedded worker


def run_server(*, host: str, port: int, data_dir: Path | None, services: list[str], insecure: bool,
               workers: int = 1) -> None:
    from pydantic import ValidationError

    from nno.kernel.config import SERVICE_NAMES, Settings
    from nno.kernel.logging import configure_logging
    from nno.kernel.topology import configuration_problems, configuration_warnings, refusals

    if data_dir is not None:
        os.environ["NNO_DATA_DIR"] = str(data_dir)
    # Links NNO mails and prints (magic links, the device flow, platform hosts) point at
    # NNO_PUBLIC_URL; unset, they point at the address served here, whatever --host/--port say.
    derived = not services and not os.environ.get("NNO_PUBLIC_URL")
    try:
        settings = Settings(public_url=local_url(host, port)) if derived else Settings()
    except ValidationError as exc:
        for error in exc.errors():
            where = ", ".join(str(part) for part in error["loc"])
            typer.echo(f"error: invalid configuration {where}: {error['msg']}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_json)
    import structlog

    log = structlog.get_logger("nno.serve")
    unknown = [s for s in services if s not in SERVICE_NAMES]
    if unknown:
        typer.echo(f"error: unknown service(s) {', '.join(unknown)}; choose from {', '.join(SERVICE_NAMES)}",
                   err=True)
        raise typer.Exit(2)
    services = list(dict.fromkeys(services))
    problems = configuration_problems(settings, services, processes=workers)
    if problems:
        for problem in problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2)
    if settings.dev_bypass and not is_loopback(host) and not insecure:
        typer.echo(
            f"error: refusing to listen on {host} with AUTH_API_KEY unset (no authentication). "
            "Set AUTH_API_KEY, listen on 127.0.0.1, or pass --insecure.",
            err=True,
        )
        raise typer.Exit(2)
    refused = refusals(settings, services)  # a URL reaching a gateway or another service
    if refused:
        for message in refused:
            typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2)
    sock = bind_or_explain(host, port)
    if settings.dev_bypass:
        log.warning(
            "auth_bypass_enabled",
            message="AUTH_API_KEY is not set: the gateway lets every request through unauthenticated "
            "(local-dev bypass). Set AUTH_API_KEY for any shared or production use.",
        )
    for warning in configuration_warnings(settings, services, processes=workers):
        log.warning("shared_state_in_memory", message=warning)
    proxies = settings.trusted_proxy_list
    remote = {n: url for n in SERVICE_NAMES if n not in services and (url := settings.service_url(n))}
    log.info("nno_serving", url=local_url(host, port), publicUrl=settings.public_url,
             services=services or "all", reaches=remote or None, processes=workers,
             trustedProxies=proxies or None)
    if services:
        what = f"services {', '.join(services)}"
    else:
        what = "all services" if settings.database_url else "embedded"
    if workers > 1:
        what += f", {workers} processes"
    ready = f"NNO ready at {local_url(host, port)} ({what}; data in {settings.data_dir})"
    options: dict[str, Any] = dict(host=host, port=port, log_level="warning", access_log=False, lifespan="on",
                                   **proxy_options(proxies))
    if workers > 1:
        # Each child builds its own core from the environment (the spawned processes share nothing
        # else with this one).
        if derived:
            os.environ["NNO_PUBLIC_URL"] = settings.public_url
        os.environ[SERVICES_ENV] = ",".join(services)
        start_supervisor(sock, ready, workers=workers, **options)
        return
    start_uvicorn(build_app(settings, services), sock, ready, **options)


def build_app(settings: Any, services: list[str]) -> Any:
    """The ASGI app a server process runs: its core, started by the server's lifespan."""
    from nno.core import Core

    if services:
        core = Core(settings, services, with_gateway=False, with_edge=False, standalone=True)
    else:
        core = Core(settings)
    app = core.asgi
    app.on_started.append(freeze_startup_objects)
    return app


def freeze_startup_objects() -> None:
    """What the started process holds for its whole life (apps, routes, models, pools) is moved out of
    the cyclic garbage collector's sight, so a full collection in the middle of a request scans only
    what requests made, not the whole heap: those pauses were the tail of request latency
    (docs/reliability.md, "Embedded under load")."""
    import gc

    gc.collect()
    gc.freeze()


def child_app() -> Any:
    """The ASGI app of one `--workers` child process: the same core, and the embedded job worker in
    exactly one child at a time (whichever holds the data directory's lock; a replacement for a dead
    holder takes it over)."""
    import fcntl

    from nno.kernel.config import Settings
    from nno.kernel.logging import configure_logging

    global _worker_lock
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    services = [s for s in os.environ.get(SERVICES_ENV, "").split(",") if s]
    if settings.embedded_worker:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(settings.data_dir / "serve-worker.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _worker_lock = fd
        except BlockingIOError:
            os.close(fd)
            settings = settings.model_copy(update={"embedded_worker": False})
    return build_app(settings, services)


def start_supervisor(sock: socket.socket, ready: str, *, workers: int, **options: Any) -> None:
    """uvicorn's process supervisor on the socket already taken: `workers` children accept on it,
    a dead child is replaced; `ready` is printed once every child accepts requests."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        def init_processes(self) -> None:
            super().init_processes()
            if all(p.wait_until_ready(600, self.should_exit) for p in self.processes):
                print(ready, flush=True)

    config = uvicorn.Config("nno.cli.serve:child_app", factory=True, workers=workers, **options)
    Supervisor(config, sockets=[sock]).run()


def start_uvicorn(asgi: Any, sock: socket.socket, ready: str, **options: Any) -> None:
    """Serve on the socket already taken; `ready` is printed once requests are accepted."""
    import uvicorn

    ReadyServer(uvicorn.Config(asgi, **options), ready).run(sockets=[sock])


class ReadyServer:
    """uvicorn's server, saying one plain line once it accepts requests (the JSON logs go on)."""

    def __new__(cls, config: Any, line: str) -> Any:
        import uvicorn

        class _Server(uvicorn.Server):
            async def startup(self, sockets: Any = None) -> None:
                await super().startup(sockets=sockets)
                if self.started:
                    print(line, flush=True)

        return _Server(config)


def bind_or_explain(host: str, port: int) -> socket.socket:
    """Take the port before starting anything, so a taken one is one clear error, not a stack of logs."""
    import errno

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            reason = f"port {port} on {host} is already in use (another nno serve?)"
            hint = "Stop the other server, or choose another port: nno serve --port 8788"
        elif exc.errno == errno.EACCES:
            reason, hint = f"not allowed to listen on port {port}", "Choose a port above 1023: nno serve --port 8787"
        else:
            reason, hint = f"cannot listen on {host}:{port}: {exc.strerror or exc}", "Check --host and --port."
        typer.echo(f"error: {reason}\n{hint}", err=True)
        raise typer.Exit(1) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def proxy_options(proxies: list[str]) -> dict[str, Any]:
    """uvicorn's proxy-header options. uvicorn's own default believes X-Forwarded-For from loopback,
    so any local client could choose the address the rate limit, the sign-in throttle and the
    audit log see: NNO believes it only from the proxies `NNO_TRUSTED_PROXIES` names."""
    if not proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(proxies)}
