"""Scratch PostgreSQL databases for tests and benches: each made under a unique name and dropped
with everything its platforms' D1s left in the cluster (their login roles outlive the database)."""

from __future__ import annotations

import uuid

import asyncpg


async def create_db(admin_url: str, prefix: str) -> str:
    """A new, empty database on `admin_url`'s server; its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin_url.rsplit("/", 1)[0] + "/" + name


async def drop_db(admin_url: str, url: str) -> None:
    from nno.edge.d1 import drop_roles_of

    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
    await drop_roles_of(admin_url, name)
