"""Outgoing mail (magic links, invitations): every message is written to the `mail_outbox` table in
the caller's transaction, then delivered after commit. Without `NNO_SMTP_URL` delivery is a log line
carrying the whole message (so a local user can follow the link); with it, smtplib in a thread.

`NNO_SMTP_URL` looks like `smtp://user:pass@host:587` (STARTTLS when offered) or
`smtps://user:pass@host:465` (implicit TLS).
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from nno.iam.models import MailOutbox
from nno.kernel.clock import now_ms
from nno.kernel.db import Database
from nno.kernel.ids import new_id

log = structlog.get_logger("nno.iam.mail")


@dataclass
class OutgoingMail:
    id: str
    to: str
    subject: str
    body: str


class Mailer:
    def __init__(self, db: Database, smtp_url: str | None, sender: str) -> None:
        self.db = db
        self.smtp_url = smtp_url
        self.sender = sender

    def enqueue(self, s: AsyncSession, *, kind: str, to: str, subject: str, body: str) -> OutgoingMail:
        """Record the message in the current transaction; call `deliver` after the commit."""
        row = MailOutbox(id=new_id(), kind=kind, to_address=to, subject=subject, body=body, status="queued",
                         created_at=now_ms())
        s.add(row)
        return OutgoingMail(row.id, to, subject, body)

    async def deliver(self, mail: OutgoingMail) -> None:
        if not self.smtp_url:
            log.info("mail_outbox", to=mail.to, subject=mail.subject, body=mail.body, mailId=mail.id)
            await self._mark(mail.id, "logged", None)
            return
        try:
            await asyncio.to_thread(self._send_smtp, mail)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("mail_send_failed", to=mail.to, mailId=mail.id, error=repr(exc))
            await self._mark(mail.id, "failed", repr(exc)[:500])
            return
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
