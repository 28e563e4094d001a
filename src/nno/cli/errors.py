"""The one exception every CLI failure becomes, and the exit codes (stdlib only)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # the server refused the request, or a local failure
    USAGE = 2  # bad flag or argument (click's own code)
    UNREACHABLE = 3  # no answer from the server
    AUTH = 4  # not signed in, or the session/key was rejected (401)


class CLIError(Exception):
    """A user-facing failure: one clear line, the request id when the server gave one, and a hint."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        details: object = None,
        hint: str | None = None,
        exit_code: int = ExitCode.ERROR,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.request_id = request_id
        self.details = details
        self.hint = hint
        self.exit_code = int(exit_code)

    def render(self) -> str:
        line = f"error: {self.message}"
        extras = []
        if self.code:
            extras.append(self.code)
        if self.request_id:
            extras.append(f"request id {self.request_id}")
        if extras:
            line += f" ({', '.join(extras)})"
        for detail in describe_details(self.details):
            line += f"\n  {detail}"
        if self.hint:
            line += f"\n{self.hint}"
        return line

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code or "CLI_ERROR", "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        if self.status is not None:
            body["status"] = self.status
        body["requestId"] = self.request_id
        return {"error": body}


def describe_details(details: object) -> list[str]:
    """The envelope's `details` as lines a person reads: each invalid field with the server's rule
    (which names the allowed values), or `key: value` for a flat object."""
    lines: list[str] = []
    if isinstance(details, list):
        for item in details[:20]:
            if isinstance(item, dict):
                where = item.get("field") or item.get("in") or ""
                message = item.get("message") or item.get("type") or "invalid"
                lines.append(f"{where}: {message}" if where else str(message))
            else:
                lines.append(str(item))
    elif isinstance(details, dict):
        # Only what tells the user what would work; ids and echoes of the message stay in --json.
        for key, value in list(details.items())[:20]:
            if not any(word in key.lower() for word in HELPFUL_DETAIL_KEYS):
                continue
            if isinstance(value, list | tuple):
                value = ", ".join(str(v) for v in value)
            elif isinstance(value, dict):
                continue
            lines.append(f"{key}: {value}")
    return lines


HELPFUL_DETAIL_KEYS = ("allowed", "expected", "limit", "required", "upgrade", "choices", "max", "min")
