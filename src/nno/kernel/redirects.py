"""Redirect targets judged the way a browser reads them.

A target string is parsed with the WHATWG URL Standard (the `ada-url` parser, the one Node.js uses),
as a browser parses a `Location` header or `window.location = url`: leading and trailing C0 controls
and spaces stripped, tabs and newlines removed anywhere, `\\` read as `/` in http(s) URLs, relative
references resolved against the app's own URL. A target is accepted only if that parsed URL is http(s)
on the allowed origin with no user info, and what is handed on is the parsed URL's serialization, so
the redirect a browser follows is exactly the one judged here (`/\\t/evil.example/x` is read as
`//evil.example/x` and refused; a check on the raw string would have passed it).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from ada_url import URL

_WEB_SCHEMES = ("http:", "https:")


def _parse(target: str, base: str | None = None) -> URL | None:
    try:
        return URL(target, base) if base is not None else URL(target)
    except ValueError:
        return None


def same_origin_target(target: str | None, base: str) -> str | None:
    """The absolute URL `target` leads to when read against `base` (the app's own public URL), if it
    stays on `base`'s origin; None for a missing, unparseable or foreign target."""
    if not target:
        return None
    own = _parse(base)
    url = _parse(target, base)
    if own is None or url is None or url.protocol not in _WEB_SCHEMES:
        return None
    if url.origin != own.origin or url.username or url.password:
        return None
    return str(url.href)


def with_query(target: str, params: dict[str, str]) -> str:
    """`target` (an absolute URL from `same_origin_target`) with `params` added to its query."""
    url = URL(target)
    query = parse_qsl(url.search.removeprefix("?"), keep_blank_values=True)
    url.search = urlencode([*query, *params.items()])
    return str(url.href)
