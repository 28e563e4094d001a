"""What every Portal page needs: the gateway as the signed-in user, the templates, CSRF checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from nno.kernel.errors import NNOError
from nno.portal.gateway_client import Answer, GatewayClient
from nno.portal.security import CSRF_FIELD, CSRF_HEADER, SAFE_METHODS, csrf_token, csrf_valid

SESSION_COOKIE = "nno_session"  # the cookie IAM issues and the gateway accepts
TEMPLATES_DIR = Path(__file__).parent / "templates"
IAM = "/api/v1/iam"
PLATFORMS = "/api/v1/platforms"
ONBOARDING = "/api/v1/onboarding"
JOBS = "/api/v1/provisioning/provision/jobs"
DEAD_LETTERS = "/api/v1/provisioning/provision/dead-letters"
KEYS = f"{IAM}/api/nno/apikey"


def when(value: Any) -> str:
    """Epoch milliseconds as a short UTC time."""
    if not isinstance(value, int | float) or value <= 0:
        return ""
    return datetime.fromtimestamp(value / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def money(cents: Any) -> str:
    """Cents as dollars: 4900 -> $49.00 (a credit shows as -$1.50)."""
    if not isinstance(cents, int):
        return ""
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def amount(value: Any, metric: str = "") -> str:
    """A usage figure for people: 2.5M, 10 GB, 1,234."""
    if value is None:
        return "unlimited"
    if not isinstance(value, int | float):
        return ""
    def short(x: float) -> str:  # three significant digits, never in exponent form
        return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"

    if metric.endswith("_bytes"):
        for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
            if value >= size:
                return f"{short(value / size)} {unit}"
        return f"{value:,} B"
    for unit, size in (("T", 10**12), ("B", 10**9), ("M", 10**6)):
        if value >= size:
            return f"{short(value / size)}{unit}"
    return f"{value:,}"


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters["money"] = money
templates.env.filters["amount"] = amount
templates.env.filters["when"] = when
templates.env.filters["urlq"] = lambda v: quote(str(v), safe="")


@dataclass
class PortalConfig:
    gateway: GatewayClient
    secret: bytes
    secure_cookies: bool
    public_url: str


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class Web:
    """One request's view of NNO: calls the gateway as the browser's user and renders pages."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.config: PortalConfig = request.app.state.portal
        self.token = request.cookies.get(SESSION_COOKIE) or None
        self._me: dict[str, Any] | None = None
        self._me_loaded = False

    @property
    def csrf(self) -> str:
        return csrf_token(self.config.secret, self.request.state.csrf_nonce)

    async def api(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                  token: str | None = None) -> Answer:
        client = self.request.client
        return await self.config.gateway.call(
            method, path, token=token or self.token, json=json, params=params,
            client_addr=(client.host, client.port) if client else None,
            user_agent=self.request.headers.get("user-agent"))

    async def me(self) -> dict[str, Any] | None:
        """The signed-in user (IAM's session view), or None."""
        if not self._me_loaded:
            self._me_loaded = True
            if self.token:
                answer = await self.api("GET", f"{IAM}/api/nno/session")
                self._me = answer.data if answer.ok and isinstance(answer.data, dict) else None
        return self._me

    async def require_me(self) -> dict[str, Any]:
        me = await self.me()
        if me is None:
            query = self.request.url.query
            raise SignInRequired(self.request.url.path + (f"?{query}" if query else ""))
        return me

    async def must(self, answer: Answer) -> Any:
        """The answer's data, or the page that explains its error (sign in again on 401)."""
        if answer.status == 401:
            raise SignInRequired(self.request.url.path)
        if not answer.ok:
            raise PortalError(answer)
        return answer.data

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("me", self._me)
        context.update(request=self.request, csrf=self.csrf, csrf_field=CSRF_FIELD)
        return templates.TemplateResponse(self.request, template, context, status_code=status_code)

    def set_session(self, response: Response, token: str, max_age: int | None = None) -> None:
        response.set_cookie(SESSION_COOKIE, token, max_age=max_age, path="/", httponly=True, samesite="lax",
                            secure=self.config.secure_cookies)

    def clear_session(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                               secure=self.config.secure_cookies)


class PortalError(Exception):
    """A gateway refusal to show on an error page, in the gateway's own words."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer


async def form_data(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v.strip() if k != "password" and k != "newPassword" else v
            for k, v in form.items() if isinstance(v, str)}


async def check_csrf(request: Request) -> None:
    """Every unsafe request carries the token: the `csrf` form field, or htmx's header."""
    if request.method in SAFE_METHODS:
        return
    presented = request.headers.get(CSRF_HEADER)
    if presented is None:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get(CSRF_FIELD)
            presented = value if isinstance(value, str) else None
    nonce = request.cookies.get("nno_csrf")
    if not csrf_valid(request.app.state.portal.secret, nonce, presented):
        raise NNOError(403, "CSRF_REFUSED", "This form has expired or did not come from the NNO Portal. "
                       "Reload the page and try again.")


def web(request: Request) -> Web:
    return Web(request)


WebDep = Annotated[Web, Depends(web)]


def redirect(url: str, request: Request | None = None) -> Response:
    """A redirect that htmx follows as a full page load, and a browser as a 303."""
    if request is not None and request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)
