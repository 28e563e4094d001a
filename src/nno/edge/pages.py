"""The Pages sites the local cloud publishes. Until the console shell is built, a platform's site is
generated from its registry record (`site`: name, status, its services' addresses), rendered here
into a real, escaped HTML page. `site.json` keeps the inputs so the edge can re-render with a fresh
status at request time."""

from __future__ import annotations

import html
import json
import mimetypes
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

SITE_JSON = "site.json"
INDEX = "index.html"


def _services(site: dict[str, Any]) -> list[tuple[str, str]]:
    """`services` may be a list of {name, url|hostname|address} or a {name: address} mapping."""
    raw = site.get("services") or []
    items: Iterable[tuple[str, Any]]
    if isinstance(raw, dict):
        items = raw.items()
    else:
        items = (
            (str(s.get("name") or s.get("service") or ""), s.get("url") or s.get("hostname") or s.get("address"))
            for s in raw
            if isinstance(s, dict)
        )
    out = [(str(name), str(addr)) for name, addr in items if addr]
    # Flat `{service}Url` keys (e.g. `authUrl`) name a service's address too.
    out += [(key[:-3], str(value)) for key, value in sorted(site.items())
            if key.endswith("Url") and len(key) > 3 and isinstance(value, str) and value]
    return out


def _link(address: str) -> str:
    text = html.escape(address)
    if address.startswith(("http://", "https://")):
        return f'<a href="{html.escape(address, quote=True)}">{text}</a>'
    return f"<code>{text}</code>"


def localize(address: str, base_domain: str, port: int | None) -> str:
    """The local cloud serves every host on one port: give a portless address under the base
    domain the port the page itself was requested on, so its links open."""
    if port is None or not address.startswith(("http://", "https://")):
        return address
    parts = urlsplit(address)
    host = parts.hostname or ""
    if parts.port is not None or not (host == base_domain or host.endswith("." + base_domain)):
        return address
    return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{port}"))


def render_site(
    site: dict[str, Any], *, status: str | None = None, base_domain: str | None = None, port: int | None = None
) -> str:
    platform_id = str(site.get("platformId") or site.get("platform_id") or "")
    name = str(site.get("name") or site.get("platformName") or platform_id or "Platform")
    current = status or str(site.get("status") or "unknown")
    rows = "\n".join(
        f"      <li><strong>{html.escape(svc)}</strong> {_link(localize(addr, base_domain or '', port))}</li>"
        for svc, addr in _services(site)
    ) or "      <li>No services yet.</li>"
    esc = html.escape
    state = esc(current, quote=True)
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{esc(name)} console</title>
  <style>
    body {{ font-family: system-ui, sans-serif; max-width: 44rem; margin: 3rem auto; padding: 0 1rem; color: #1b1f24; }}
    .status {{ display: inline-block; padding: .1rem .6rem; border-radius: 1rem; background: #eef; }}
    .status-active {{ background: #dfd; }} .status-suspended {{ background: #fed; }}
    code {{ background: #f4f4f4; padding: .1rem .3rem; }}
  </style>
</head>
<body>
  <h1>{esc(name)}</h1>
  <p>Platform <code>{esc(platform_id)}</code>
     <span class="status status-{state}" data-status="{state}">{state}</span></p>
  <h2>Services</h2>
  <ul>
{rows}
  </ul>
  <p><small>Served by the NNO local cloud.</small></p>
</body>
</html>
"""


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def site_inputs(site: dict[str, Any]) -> str:
    """The site's inputs as kept (`site.json`, and the Pages project's row): one text per site."""
    return json.dumps(site, sort_keys=True, separators=(",", ":"), default=str)


def publish_site(directory: Path, site: dict[str, Any]) -> bool:
    """Write the site; returns True when its content changed. A site whose inputs carry `console`
    (the shell's configuration) is the console shell, built by `nno.console.build`."""
    directory.mkdir(parents=True, exist_ok=True)
    inputs = site_inputs(site).encode()
    site_json = directory / SITE_JSON
    if site_json.exists() and site_json.read_bytes() == inputs and (directory / INDEX).exists():
        return False
    console = site.get("console")
    if isinstance(console, dict):
        from nno.console.build import build_console_site

        for rel, content in build_console_site(console).items():
            target = directory / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(target, content)
    _atomic_write(directory / INDEX, render_site(site).encode())
    _atomic_write(site_json, inputs)
    return True


def read_site(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / SITE_JSON).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def static_file(directory: Path, path: str) -> tuple[Path, str] | None:
    """The file a request path names inside `directory`, never outside it; `/` is index.html.
    None for a path no file can have: a NUL character, or a name or path longer than the file system
    allows (the OS refuses those with an error, not a "no such file")."""
    if "\x00" in path:
        return None
    rel = path.lstrip("/") or INDEX
    if rel.endswith("/"):
        rel += INDEX
    root = directory.resolve()
    try:
        candidate = (root / rel).resolve()
        if not candidate.is_relative_to(root) or candidate.name == SITE_JSON:
            return None
        if candidate.is_dir():
            candidate = candidate / INDEX
        if not candidate.is_file():
            return None
    except OSError:  # ENAMETOOLONG and the like: nothing can be there
        return None
    ctype = mimetypes.guess_type(candidate.name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
        ctype += "; charset=utf-8"
    return candidate, ctype
