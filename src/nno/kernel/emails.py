"""Email addresses as NNO accepts them everywhere (IAM accounts, billing contacts, invitations)."""

from __future__ import annotations

import re
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator

_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Local installations use addresses like admin@nno.localhost; email-validator refuses those
# special-use domains, so their syntax is checked here instead.
_LOCAL_DOMAINS = ("localhost", "test", "local")


def normalize_email(value: str) -> str:
    value = value.strip()
    if len(value) > 320:
        raise ValueError("email is too long")
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        local, sep, domain = value.rpartition("@")
        domain = domain.lower()
        if sep and domain.split(".")[-1] in _LOCAL_DOMAINS and all(_LABEL_RE.fullmatch(p) for p in domain.split(".")):
            try:
                checked = validate_email(f"{local}@example.com", check_deliverability=False)
            except EmailNotValidError:
                raise ValueError(str(exc)) from None
            return f"{checked.local_part}@{domain}".lower()
        raise ValueError(str(exc)) from None


Email = Annotated[str, AfterValidator(normalize_email)]
