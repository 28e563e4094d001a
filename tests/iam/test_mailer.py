"""The mailer: outbox row always; SMTP delivery when configured (against a tiny local SMTP server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from nno.iam.auth_app import AUTH_MIGRATIONS_DIR
from nno.iam.mailer import Mailer
from nno.kernel.db import Database, sqlite_url
from nno.kernel.migrations import upgrade


class FakeSMTP:
    """Just enough of RFC 5321 for smtplib: greeting, EHLO, MAIL, RCPT, DATA, QUIT."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 fake ESMTP\r\n")
        while line := await reader.readline():
            cmd = line.decode().strip().upper()
            if cmd.startswith(("EHLO", "HELO")):
                writer.write(b"250 fake\r\n")
            elif cmd.startswith("DATA"):
                writer.write(b"354 go on\r\n")
                await writer.drain()
                body = []
                while (data := await reader.readline()) not in (b".\r\n", b""):
                    body.append(data.decode())
                self.messages.append("".join(body))
                writer.write(b"250 queued\r\n")
            elif cmd.startswith("QUIT"):
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()

    async def stop(self) -> None:
        if self.server:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def mail_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(sqlite_url(tmp_path / "mail.db"))
    await upgrade(db, AUTH_MIGRATIONS_DIR)
    yield db
    await db.dispose()


async def _send(mailer: Mailer, db: Database) -> None:
    async with db.session() as s:
        mail = mailer.enqueue(s, kind="magic_link", to="to@example.com", subject="Hello", body="The link: x")
    await mailer.deliver(mail)


async def test_smtp_delivery(mail_db: Database) -> None:
    server = FakeSMTP()
    await server.start()
    try:
        await _send(Mailer(mail_db, f"smtp://127.0.0.1:{server.port}", "NNO <no-reply@nno.localhost>"), mail_db)
    finally:
        await server.stop()
    assert len(server.messages) == 1 and "Subject: Hello" in server.messages[0]
    async with mail_db.session() as s:
        status = (await s.execute(text("SELECT status FROM mail_outbox"))).scalar_one()
    assert status == "sent"


async def test_unreachable_smtp_is_recorded_as_failed(mail_db: Database) -> None:
    await _send(Mailer(mail_db, "smtp://127.0.0.1:1", "NNO <no-reply@nno.localhost>"), mail_db)
    async with mail_db.session() as s:
        status, error = (await s.execute(text("SELECT status, error FROM mail_outbox"))).one()
    assert status == "failed" and error


async def test_without_smtp_the_dev_outbox_logs_the_mail(mail_db: Database) -> None:
    await _send(Mailer(mail_db, None, "NNO <no-reply@nno.localhost>", dev_outbox=True), mail_db)
    async with mail_db.session() as s:
        assert (await s.execute(text("SELECT status FROM mail_outbox"))).scalar_one() == "logged"


async def test_without_smtp_nor_dev_outbox_the_mail_is_undelivered(mail_db: Database) -> None:
    await _send(Mailer(mail_db, None, "NNO <no-reply@nno.localhost>"), mail_db)
    async with mail_db.session() as s:
        status, error = (await s.execute(text("SELECT status, error FROM mail_outbox"))).one()
    assert status == "undelivered" and "NNO_SMTP_URL" in error
