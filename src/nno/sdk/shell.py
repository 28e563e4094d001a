"""The signed `ShellContext` the console shell hands every feature page.

The shell puts it in the cookie `nno_shell` (scoped to the platform's domain `.{platformId}.{base}`,
HttpOnly, SameSite=Lax, a few minutes long) each time it renders a page, so a feature page opened
from its sidebar knows the platform, user, role, permissions, tenant, stack and the features'
service URLs, and the sidebar the user may see. It is an HMAC-SHA256 over the JSON body with the
platform's own key (derived by the host with HKDF from a dedicated secret, `nno.console.keys`; the
feature's `FeatureEnv.shell_key`, several while a rotation runs): a page believes it only when the
signature holds, it has not expired, it names this platform and its user is the session's own user,
so neither a user nor another platform can forge or replay one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from nno.sdk.definition import ShellContext

SHELL_COOKIE = "nno_shell"
SHELL_CONTEXT_TTL_S = 600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_shell_context(key: bytes, context: ShellContext, *, ttl_s: int = SHELL_CONTEXT_TTL_S,
                       now: float | None = None) -> str:
    body = {"ctx": context.model_dump(mode="json"), "exp": int((now or time.time()) + ttl_s)}
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    sig = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{sig}"


def verify_shell_context(key: bytes | Sequence[bytes], token: str, *, platform_id: str,
                         user_id: str | None = None, now: float | None = None) -> ShellContext | None:
    """The context when `token` is genuine (signed with `key`, or any of several while a rotation
    runs), current, of `platform_id` (and of `user_id`); else None."""
    payload, dot, sig = token.partition(".")
    if not dot or len(token) > 16_384:
        return None
    keys = [key] if isinstance(key, bytes) else list(key)
    try:
        given = sig.encode("utf-8", "replace")
        if not any(hmac.compare_digest(_b64(hmac.new(k, payload.encode(), hashlib.sha256).digest()).encode(), given)
                   for k in keys):
            return None
        body: Any = json.loads(_unb64(payload))
        if not isinstance(body, dict) or not isinstance(body.get("exp"), int):
            return None
        if body["exp"] < (now or time.time()):
            return None
        context = ShellContext.model_validate(body.get("ctx"))
    except (ValueError, ValidationError, TypeError):
        return None
    if context.platformId != platform_id:
        return None
    if user_id is not None and (context.user is None or context.user.id != user_id):
        return None
    return context
