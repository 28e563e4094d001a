"""Outgoing mail (magic links, password resets, invitations): every message is recorded in the
`mail_outbox` table in the caller's transaction, then delivered after commit.

A live one-time token (a sign-in or reset link) is never stored or logged in clear, except in the
development outbox, which exists to let a local user follow such links without a mail server:
- with `NNO_SMTP_URL`: smtplib in a thread; the outbox row keeps the message with its secrets
  redacted, and the log line has no body;
- without it, the development outbox (`Settings.dev_outbox_enabled`: on in the local-dev bypass, off
  once `AUTH_API_KEY` is set unless `NNO_DEV_OUTBOX=true`): the row and a log line carry the whole
  message, marked `devOutbox`;
- neither: the mail cannot be delivered; the row (redacted) says so (`undelivered`) and a warning is
  logged, without the body.

`NNO_SMTP_URL` looks like `smtp://user:pass@host:587` (STARTTLS when offered) or
`smtps://user:pass@host:465` (implicit TLS).
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import quote, unquote, urlsplit

import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from nno.iam.models import MailOutbox
from nno.kernel.clock import now_ms
from nno.kernel.config import Settings
from nno.kernel.db import Database
from nno.kernel.ids import new_id

log = structlog.get_logger("nno.iam.mail")

REDACTED = "[redacted]"
UNDELIVERED = ("no NNO_SMTP_URL and no development outbox: set NNO_SMTP_URL (or NNO_DEV_OUTBOX=true "
               "on a development install)")


def redact(body: str, secrets: Sequence[str]) -> str:
    """`body` without the secrets it carries (as written, or percent-encoded in a link)."""
    for secret in secrets:
        if secret:
            for form in {secret, quote(secret, safe="")}:
                body = body.replace(form, REDACTED)
    return body


@dataclass
class OutgoingMail:
    id: str
    to: str
    subject: str
    body: str


class Mailer:
    def __init__(self, db: Database, smtp_url: str | None, sender: str, *, dev_outbox: bool = False) -> None:
        self.db = db
        self.smtp_url = smtp_url
        self.sender = sender
        # The development outbox only ever stands in for SMTP.
        self.dev_outbox = dev_outbox and not smtp_url

    @classmethod
    def from_settings(cls, db: Database, settings: Settings) -> Mailer:
        return cls(db, settings.smtp_url, settings.mail_from, dev_outbox=settings.dev_outbox_enabled)

    async def announce(self) -> None:
        """Say at startup how mail leaves, loudly when live links are kept in clear or go nowhere."""
        if self.smtp_url:
            return
        if self.dev_outbox:
            log.warning("dev_mail_outbox", message="no NNO_SMTP_URL: mail goes to the development outbox, whose "
                        "sign-in and reset links are stored and logged in clear (development only)")
        else:
            log.warning("mail_undeliverable", message=UNDELIVERED)

    def enqueue(self, s: AsyncSession, *, kind: str, to: str, subject: str, body: str,
                secrets: Sequence[str] = ()) -> OutgoingMail:
        """Record the message in the current transaction; call `deliver` after the commit. `secrets` are
        the live tokens `body` carries: stored only in the development outbox."""
        stored = body if self.dev_outbox else redact(body, secrets)
        row = MailOutbox(id=new_id(), kind=kind, to_address=to, subject=subject, body=stored, status="queued",
                         created_at=now_ms())
        s.add(row)
        return OutgoingMail(row.id, to, subject, body)

    async def deliver(self, mail: OutgoingMail) -> None:
        if not self.smtp_url:
            if self.dev_outbox:
                log.info("mail_outbox", to=mail.to, subject=mail.subject, body=mail.body, mailId=mail.id,
                         devOutbox=True)
                await self._mark(mail.id, "logged", None)
            else:
                log.warning("mail_undelivered", to=mail.to, subject=mail.subject, mailId=mail.id, reason=UNDELIVERED)
                await self._mark(mail.id, "undelivered", UNDELIVERED)
            return
        try:
            await asyncio.to_thread(self._send_smtp, mail)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("mail_send_failed", to=mail.to, mailId=mail.id, error=repr(exc))
            await self._mark(mail.id, "failed", repr(exc)[:500])
            return
        log.info("mail_sent", to=mail.to, subject=mail.subject, mailId=mail.id)
        await self._mark(mail.id, "sent", None)

    async def _mark(self, mail_id: str, status: str, error: str | None) -> None:
        async with self.db.session() as s:
            await s.execute(update(MailOutbox).where(MailOutbox.id == mail_id)
                            .values(status=status, error=error, sent_at=now_ms()))

    def _send_smtp(self, mail: OutgoingMail) -> None:
        assert self.smtp_url is not None
        url = urlsplit(self.smtp_url)
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = mail.to
        msg["Subject"] = mail.subject
        msg.set_content(mail.body)
        host = url.hostname or "localhost"
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if url.scheme == "smtps":
            smtp = smtplib.SMTP_SSL(host, url.port or 465, timeout=30, context=context)
        else:
            smtp = smtplib.SMTP(host, url.port or 25, timeout=30)
        with smtp:
            if url.scheme != "smtps" and smtp.has_extn("starttls"):
                smtp.starttls(context=context)
            if url.username:
                smtp.login(unquote(url.username), unquote(url.password or ""))
            smtp.send_message(msg)
