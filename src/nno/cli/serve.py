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


def run_server(*, host: str, port: int, data_dir: Path | None, services: list[str], insecure: bool) -> None:
    import uvicorn
    from pydantic import ValidationError

    from nno.core import Core
    from nno.kernel.config import SERVICE_NAMES, Settings
    from nno.kernel.logging import configure_logging

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
    if settings.dev_bypass:
        log.warning(
            "auth_bypass_enabled",
            message="AUTH_API_KEY is not set: the gateway lets every request through unauthenticated "
            "(local-dev bypass). Set AUTH_API_KEY for any shared or production use.",
        )
        if not is_loopback(host) and not insecure:
            typer.echo(
                f"error: refusing to listen on {host} with AUTH_API_KEY unset (no authentication). "
                "Set AUTH_API_KEY, listen on 127.0.0.1, or pass --insecure.",
                err=True,
            )
            raise typer.Exit(2)
    proxies = settings.trusted_proxy_list
    log.info("nno_serving", url=local_url(host, port), publicUrl=settings.public_url,
             services=services or "all", trustedProxies=proxies or None)
    if services:
        core = Core(settings, services, with_gateway=False, with_edge=False, standalone=True)
    else:
        core = Core(settings)
    uvicorn.run(core.asgi, host=host, port=port, log_level="warning", access_log=False, lifespan="on",
                **proxy_options(proxies))


def proxy_options(proxies: list[str]) -> dict[str, Any]:
    """uvicorn's proxy-header options. uvicorn's own default believes X-Forwarded-For from loopback,
    so any local client could choose the address the rate limit, the sign-in throttle and the
    audit log see: NNO believes it only from the proxies `NNO_TRUSTED_PROXIES` names."""
    if not proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(proxies)}
