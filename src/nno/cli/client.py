"""The CLI's HTTP client: httpx (sync) against the Gateway, every failure turned into a CLIError.

Success bodies come back as parsed JSON. An error answer becomes a CLIError carrying the envelope's
code, message and request id (`{"error": {"code", "message", "details", "requestId"}}`); an OAuth
error (`{"error": "authorization_pending"}`, RFC 8628) keeps its code; anything else still gets a
clear message and the `X-Request-Id` header. Transport failures become one line saying which
address did not answer and what to do.
"""

from __future__ import annotations

from typing import Any

import httpx

from nno.cli.errors import CLIError, ExitCode

USER_AGENT = "nno-cli/0.1"

# What to do next, by HTTP status; shown under the error line.
HINTS: dict[int, str] = {
    401: "Your login is missing, expired or revoked. Run: nno login",
    410: "The platform is cancelled or deleted.",
    451: "The platform is suspended. An NNO operator can restore it: nno platform restore <id>",
}


def is_api_key(token: str) -> bool:
    return token.startswith("nno_")


def auth_headers(token: str | None) -> dict[str, str]:
    if not token:
        return {}
    if is_api_key(token):
        return {"x-api-key": token}
    return {"Authorization": f"Bearer {token}"}


# A 403's hint, by the caller's role: an owner is not told to ask a platform admin.
FORBIDDEN_HINTS: dict[str | None, str] = {
    "platform-admin": "Only an NNO operator can do this on a platform.",
    "nno-operator": "Not even operators may do this; the message above says why.",
    "apikey": "This API key does not allow it (a key holds at most its maker's rights, and only the "
              "permissions it was created with). Create a key that does: nno apikey create.",
    None: "Your role does not allow this. Ask a platform admin or an NNO operator.",
}

DEV_BYPASS_HEADER = "x-nno-auth-mode"
_dev_bypass_told: set[str] = set()


def tell_dev_bypass(response: httpx.Response, base_url: str) -> None:
    """Once per command and server: say that this server checks no credentials."""
    if response.headers.get(DEV_BYPASS_HEADER) == "dev-bypass" and base_url not in _dev_bypass_told:
        import sys

        _dev_bypass_told.add(base_url)
        sys.stderr.write(f"note: NNO at {base_url} runs without authentication (AUTH_API_KEY is unset): "
                         "everyone who can reach it can do everything.\n")


def error_from_response(response: httpx.Response, role: str | None = None) -> CLIError:
    status = response.status_code
    header_request_id = response.headers.get("x-request-id")
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    code: str | None = None
    message: str | None = None
    details: Any = None
    request_id = header_request_id
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            code = _str_or_none(error.get("code"))
            message = _str_or_none(error.get("message"))
            details = error.get("details")
            request_id = _str_or_none(error.get("requestId")) or header_request_id
        elif isinstance(error, str):  # OAuth / RFC 8628 shape
            code = error
            message = _str_or_none(body.get("error_description")) or error.replace("_", " ")
    if not message:
        reason = response.reason_phrase or "error"
        message = f"the server answered HTTP {status} {reason} to {response.request.method} {response.request.url.path}"
    hint = HINTS.get(status)
    if status == 403:
        hint = FORBIDDEN_HINTS.get(role, FORBIDDEN_HINTS[None])
    if status == 429:
        retry = response.headers.get("retry-after")
        hint = f"Too many requests; try again in {retry} s." if retry else "Too many requests; try again later."
    elif status == 404 and code == "NOT_FOUND" and message == "Route not found":
        hint = "This server does not serve that route; check --api-url, or the service is not installed."
    return CLIError(
        message,
        code=code,
        status=status,
        request_id=request_id,
        details=details,
        hint=hint,
        exit_code=ExitCode.AUTH if status in (401, 403) else ExitCode.ERROR,
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class APIClient:
    """One base address, one credential (session token or API key), one httpx connection pool."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        role: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.role = role
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,
            transport=transport,
        )

    def __enter__(self) -> APIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
        anonymous: bool = False,
    ) -> Any:
        sent_headers = {} if anonymous else auth_headers(token or self.token)
        if headers:
            sent_headers.update(headers)
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, json=json, params=clean_params or None,
                                          headers=sent_headers)
        except httpx.TimeoutException as exc:
            raise CLIError(
                f"NNO at {self.base_url} did not answer in time ({type(exc).__name__})",
                hint="The server may be overloaded; try again, or check --api-url / NNO_API_URL.",
                exit_code=ExitCode.UNREACHABLE,
            ) from exc
        except httpx.InvalidURL as exc:
            raise CLIError(f"invalid API address {self.base_url!r}: {exc}",
                           hint="Pass a full URL, e.g. --api-url http://127.0.0.1:8787",
                           exit_code=ExitCode.USAGE) from exc
        except (httpx.TransportError, OSError) as exc:
            raise CLIError(
                f"cannot reach NNO at {self.base_url}: {_transport_reason(exc)}",
                hint="Is the server running (nno serve)? Choose another address with --api-url or NNO_API_URL.",
                exit_code=ExitCode.UNREACHABLE,
            ) from exc
        tell_dev_bypass(response, self.base_url)
        if response.is_success:
            if response.status_code == 204 or not response.content:
                return None
            try:
                return response.json()
            except ValueError as exc:
                raise CLIError(
                    f"the server answered {method} {path} with something that is not JSON",
                    request_id=response.headers.get("x-request-id"),
                    hint="Check that --api-url points at an NNO gateway.",
                ) from exc
        raise error_from_response(response, self.role)

    def probe(self, path: str) -> tuple[int, str | None]:
        """(status, envelope code) of a GET with this client's credential; (0, None) if unreachable."""
        try:
            response = self._http.get(path, headers=auth_headers(self.token))
        except (httpx.HTTPError, OSError):
            return 0, None
        code: str | None = None
        try:
            body = response.json()
            if isinstance(body, dict) and isinstance(body.get("error"), dict):
                code = _str_or_none(body["error"].get("code"))
        except ValueError:
            pass
        return response.status_code, code

    def get_text(self, path: str) -> str:
        """A plain-text GET (e.g. `/health`), every failure a CLIError like `request`'s."""
        try:
            response = self._http.get(path)
        except (httpx.TransportError, OSError) as exc:
            raise CLIError(f"cannot reach NNO at {self.base_url}: {_transport_reason(exc)}",
                           hint="Is the server running (nno serve)?", exit_code=ExitCode.UNREACHABLE) from exc
        if not response.is_success:
            raise error_from_response(response, self.role)
        return response.text

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)


def _transport_reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    # httpx words it "[Errno 111] Connection refused" (or "All connection attempts failed").
    if "refused" in text.lower() or "all connection attempts failed" in text.lower():
        return "connection refused"
    return text
