"""Billing's mail (threshold alerts, dunning notices): SMTP when `NNO_SMTP_URL` is set, otherwise a
log line carrying the whole message, as IAM does for its mail."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import structlog

from nno.kernel.config import Settings

log = structlog.get_logger("nno.billing.mail")


async def send_mail(settings: Settings, to: str, subject: str, body: str) -> None:
    if not settings.smtp_url:
        log.info("billing_mail", to=to, subject=subject, body=body)
        return
    try:
        await asyncio.to_thread(_send_smtp, settings.smtp_url, settings.mail_from, to, subject, body)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("billing_mail_failed", to=to, subject=subject, error=repr(exc))


def _send_smtp(smtp_url: str, sender: str, to: str, subject: str, body: str) -> None:
    url = urlsplit(smtp_url)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg.set_content(body)
    host = url.hostname or "localhost"
    context = ssl.create_default_context()
    smtp: smtplib.SMTP = (smtplib.SMTP_SSL(host, url.port or 465, timeout=30, context=context)
                          if url.scheme == "smtps" else smtplib.SMTP(host, url.port or 25, timeout=30))
    with smtp:
        if url.scheme != "smtps" and smtp.has_extn("starttls"):
            smtp.starttls(context=context)
        if url.username:
            smtp.login(unquote(url.username), unquote(url.password or ""))
        smtp.send_message(msg)
