"""Short-lived signed service tokens (HS256 JWTs keyed with `settings.signing_secret`) for
service-to-service calls. Only service callers may mint them; `verify` checks one."""

from __future__ import annotations

import time
from typing import Any

import jwt

from nno.kernel.config import Settings
from nno.kernel.errors import NNOError
from nno.kernel.ids import new_id

ISSUER = "nno-iam"
ALGORITHM = "HS256"


def mint(settings: Settings, *, subject: str, audience: str, ttl_s: int) -> tuple[str, int]:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": subject, "aud": audience, "iat": now, "nbf": now, "exp": now + ttl_s,
              "jti": new_id(16), "typ": "service"}
    return jwt.encode(claims, settings.signing_secret, algorithm=ALGORITHM), (now + ttl_s) * 1000


def verify(settings: Settings, token: str, *, audience: str | None = None) -> dict[str, Any]:
    """The token's claims, or NNOError 401 INVALID_SERVICE_TOKEN (bad signature, expired, wrong
    audience or issuer, not a service token)."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, settings.signing_secret, algorithms=[ALGORITHM], issuer=ISSUER, audience=audience,
            options={"require": ["exp", "iat", "iss", "sub", "aud"], "verify_aud": audience is not None},
        )
    except jwt.ExpiredSignatureError as exc:
        raise NNOError(401, "SERVICE_TOKEN_EXPIRED", "The service token has expired") from exc
    except jwt.PyJWTError as exc:
        raise NNOError(401, "INVALID_SERVICE_TOKEN", "The service token is not valid") from exc
    if claims.get("typ") != "service":
        raise NNOError(401, "INVALID_SERVICE_TOKEN", "The service token is not valid")
    return claims
