"""The local cloud's secrets key: made once and kept with the data, so secrets survive moving the data
directory and turning authentication on; rotation; values sealed by earlier versions; clear errors.
Both backends (the sealed values live in SQLite or in the PostgreSQL schema `edge`)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from structlog.testing import capture_logs
from typer.testing import CliRunner

from nno.cli.main import app
from nno.edge.cloud import LocalCloud
from nno.edge.models import WorkerSecret
from nno.edge.secretbox import MAGIC, SecretBox, SecretsKeyError, legacy_key, sealed_key_id, sealing_key
from nno.edge.secrets_key import (
    Keyring,
    key_file_path,
    legacy_masters,
    new_key_text,
    parse_configured,
    parse_key_file,
    rotate,
    write_key_file,
)
from nno.edge.workers import WorkerEnv, register_worker_kind
from nno.kernel.config import Settings
from tests.edge.conftest import P1, deploy_echo

PID = "k3m9p2xw7q"
WORKER = f"{PID}-default-keep"
VALUES = {"AUTH_SECRET": "auth-secret-value-1", "API_TOKEN": "tok-2"}


def _keep_app(env: WorkerEnv) -> Starlette:
    async def show(_: Request) -> JSONResponse:
        return JSONResponse(env.secrets)

    return Starlette(routes=[Route("/", show)])


@pytest.fixture(autouse=True)
def keep_kind() -> Any:
    unregister = register_worker_kind("keep", _keep_app)
    yield
    unregister()


@pytest.fixture
async def clouds() -> AsyncIterator[Callable[[Settings], Any]]:
    """`await open_cloud(settings)`: a ready LocalCloud, closed at the end of the test."""
    opened: list[LocalCloud] = []

    async def open_cloud(settings: Settings) -> LocalCloud:
        cloud = LocalCloud(settings)
        opened.append(cloud)
        await cloud.ready()
        return cloud

    yield open_cloud
    for cloud in opened:
        await cloud.close()


async def _deploy(cloud: LocalCloud) -> None:
    await cloud.ensure_worker(WORKER, kind="keep", platform_id=PID, bindings={})
    for key, value in VALUES.items():
        await cloud.put_secret(WORKER, key, value)


async def _rows(cloud: LocalCloud) -> dict[str, bytes]:
    async with cloud.db.session() as s:
        rows = (await s.scalars(select(WorkerSecret).where(WorkerSecret.worker == WORKER))).all()
    return {r.key: bytes(r.ciphertext) for r in rows}


def _dev(make_settings: Callable[..., Settings], **extra: Any) -> Settings:
    """`make run`: no AUTH_API_KEY."""
    return make_settings(auth_api_key=None, **extra)


async def test_the_key_is_made_once_and_kept_with_mode_0600(make_settings, clouds) -> None:
    settings = _dev(make_settings)
    cloud = await clouds(settings)
    path = key_file_path(settings)
    assert not path.exists()  # made when the first secret is sealed, not before
    await _deploy(cloud)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    content = path.read_text()
    assert len(parse_key_file(path, content)) == 1
    other = await clouds(settings)  # another process of the same install
    await other.put_secret(WORKER, "THIRD", "v3")
    assert path.read_text() == content
    assert await cloud.worker_secrets(WORKER) == {**VALUES, "THIRD": "v3"}
    assert not list(path.parent.glob(".secrets.key.*"))  # no temporary file left behind


async def test_secrets_survive_moving_the_data_directory(make_settings, clouds, tmp_path: Path) -> None:
    before = _dev(make_settings, data_dir=tmp_path / "first")
    cloud = await clouds(before)
    await _deploy(cloud)
    await cloud.close()
    shutil.move(str(tmp_path / "first"), str(tmp_path / "moved"))
    moved = await clouds(_dev(make_settings, data_dir=tmp_path / "moved"))
    assert await moved.worker_secrets(WORKER) == VALUES


async def test_secrets_survive_a_copy_of_the_data_directory(make_settings, clouds, tmp_path: Path) -> None:
    cloud = await clouds(_dev(make_settings, data_dir=tmp_path / "a"))
    await _deploy(cloud)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    copy = await clouds(_dev(make_settings, data_dir=tmp_path / "b"))
    assert await copy.worker_secrets(WORKER) == VALUES


async def test_secrets_survive_setting_auth_api_key_after_dev_mode(make_settings, clouds) -> None:
    dev = await clouds(_dev(make_settings))
    await _deploy(dev)
    secured = await clouds(make_settings(auth_api_key="now-a-real-key-0123456789abcdef"))
    assert await secured.worker_secrets(WORKER) == VALUES
    changed = await clouds(make_settings(auth_api_key="another-key-0123456789abcdef", service_token_secret="s" * 40))
    assert await changed.worker_secrets(WORKER) == VALUES


def _legacy_seal(master: bytes, address: str, value: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + legacy_key(master).encrypt(nonce, value.encode(), address.encode())


async def _store_legacy(cloud: LocalCloud, master: bytes) -> None:
    """What an earlier NNO stored: values sealed with the key derived from its signing secret."""
    async with cloud.db.session() as s:
        for key, value in VALUES.items():
            await s.execute(update(WorkerSecret).where(WorkerSecret.worker == WORKER, WorkerSecret.key == key)
                            .values(ciphertext=_legacy_seal(master, f"{WORKER}/{key}", value)))


@pytest.mark.parametrize("first_key", [None, "the-old-service-key-0123456789ab"])
async def test_values_sealed_by_earlier_versions_are_resealed_with_the_kept_key(
    make_settings, clouds, first_key: str | None
) -> None:
    """An existing install (dev mode, or with a service key) upgrades, then turns AUTH_API_KEY on or
    changes it: its values are read with the old derivation and re-sealed with the kept key."""
    old_settings = make_settings(auth_api_key=first_key)
    old = await clouds(old_settings)
    await _deploy(old)
    await _store_legacy(old, old_settings.signing_secret)
    key_file_path(old_settings).unlink()  # the earlier version had no key file
    assert all(sealed_key_id(v) is None for v in (await _rows(old)).values())

    upgraded = await clouds(old_settings)  # the new version starts on the old data
    rows = await _rows(upgraded)
    kept = Keyring(old_settings).box().current
    assert all(sealed_key_id(v) == kept.id for v in rows.values())
    assert await upgraded.worker_secrets(WORKER) == VALUES
    secured = await clouds(make_settings(auth_api_key="the-new-service-key-0123456789ab"))
    assert await secured.worker_secrets(WORKER) == VALUES


async def test_a_legacy_value_from_a_moved_directory_names_the_fix_then_rotation_recovers_it(
    make_settings, clouds, tmp_path: Path
) -> None:
    old_settings = _dev(make_settings, data_dir=tmp_path / "old-place")
    cloud = await clouds(old_settings)
    await _deploy(cloud)
    await _store_legacy(cloud, old_settings.signing_secret)
    await cloud.close()
    key_file_path(old_settings).unlink()
    shutil.move(str(tmp_path / "old-place"), str(tmp_path / "new-place"))
    settings = _dev(make_settings, data_dir=tmp_path / "new-place")
    moved = await clouds(settings)
    with pytest.raises(SecretsKeyError) as caught:
        await moved.worker_secrets(WORKER)
    assert "--legacy-data-dir" in str(caught.value) and "InvalidTag" not in repr(caught.value)

    report = await rotate(moved.db, Keyring(settings, legacy_data_dirs=[tmp_path / "old-place"]))
    assert report.finished and report.resealed == len(VALUES)
    assert await moved.worker_secrets(WORKER) == VALUES


async def test_rotation_reseals_everything_with_a_new_key(make_settings, clouds) -> None:
    settings = _dev(make_settings)
    cloud = await clouds(settings)
    await _deploy(cloud)
    path = key_file_path(settings)
    old_key = parse_key_file(path, path.read_text())
    old_id = sealing_key(old_key[0].encode()).id
    running = await clouds(settings)  # a process that already read the old key
    assert await running.worker_secrets(WORKER) == VALUES

    report = await rotate(cloud.db, Keyring(settings))
    assert report.finished and not report.resumed and report.resealed == len(VALUES)
    new_key = parse_key_file(path, path.read_text())
    assert len(new_key) == 1 and new_key != old_key and report.retired == [old_id.hex()]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert all(sealed_key_id(v) == sealing_key(new_key[0].encode()).id for v in (await _rows(cloud)).values())
    assert await running.worker_secrets(WORKER) == VALUES  # it reads the new key file
    await running.put_secret(WORKER, "LATER", "sealed-after")
    assert sealed_key_id((await _rows(cloud))["LATER"]) == sealing_key(new_key[0].encode()).id

    again = await rotate(cloud.db, Keyring(settings))
    assert again.finished and again.resealed == len(VALUES) + 1
    assert await (await clouds(settings)).worker_secrets(WORKER) == {**VALUES, "LATER": "sealed-after"}


async def test_an_interrupted_rotation_loses_nothing_and_a_second_run_finishes_it(
    make_settings, clouds, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _dev(make_settings)
    cloud = await clouds(settings)
    await _deploy(cloud)
    path = key_file_path(settings)
    old_key = parse_key_file(path, path.read_text())
    before = await _rows(cloud)

    real_seal = SecretBox.seal
    calls = {"n": 0}

    def crash_on_second(self: SecretBox, address: str, value: str) -> bytes:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("operator pressed Ctrl-C")
        return real_seal(self, address, value)

    monkeypatch.setattr(SecretBox, "seal", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        await rotate(cloud.db, Keyring(settings))
    monkeypatch.setattr(SecretBox, "seal", real_seal)

    during = parse_key_file(path, path.read_text())
    assert len(during) == 2 and during[1:] == old_key  # the new key leads; the old one is still read
    assert await _rows(cloud) == before  # the transaction rolled back: nothing half re-sealed
    assert await (await clouds(settings)).worker_secrets(WORKER) == VALUES

    report = await rotate(cloud.db, Keyring(settings))
    assert report.resumed and report.finished
    assert parse_key_file(path, path.read_text()) == during[:1]  # the same rotation, finished
    assert await (await clouds(settings)).worker_secrets(WORKER) == VALUES


async def test_a_damaged_key_file_is_a_clear_error(make_settings, clouds) -> None:
    settings = _dev(make_settings)
    cloud = await clouds(settings)
    await _deploy(cloud)
    path = key_file_path(settings)
    path.write_text("this is not a key\n")
    with pytest.raises(SecretsKeyError) as caught:
        await (await clouds(settings)).worker_secrets(WORKER)
    message = str(caught.value)
    assert "damaged" in message and str(path) in message and "backup" in message


async def test_a_replaced_key_file_names_the_key_it_needs(make_settings, clouds) -> None:
    settings = _dev(make_settings)
    cloud = await clouds(settings)
    await _deploy(cloud)
    path = key_file_path(settings)
    needed = sealing_key(parse_key_file(path, path.read_text())[0].encode()).hex_id
    write_key_file(path, [new_key_text()], exclusive=False)
    with pytest.raises(SecretsKeyError) as caught:
        await (await clouds(settings)).worker_secrets(WORKER)
    assert needed in str(caught.value) and "Restore the key file" in str(caught.value)


async def test_a_missing_key_file_is_not_silently_replaced(make_settings, clouds) -> None:
    settings = _dev(make_settings)
    cloud = await clouds(settings)
    await _deploy(cloud)
    path = key_file_path(settings)
    path.unlink()
    fresh = await clouds(settings)
    with pytest.raises(SecretsKeyError, match="is missing"):
        await fresh.put_secret(WORKER, "NEW", "v")
    with pytest.raises(SecretsKeyError, match="is missing"):
        await rotate(fresh.db, Keyring(settings))
    assert not path.exists()
    with pytest.raises(SecretsKeyError, match="does not exist"):
        await fresh.worker_secrets(WORKER)


async def test_a_configured_key_is_used_and_rotated_by_the_documented_steps(make_settings, clouds) -> None:
    first, second = new_key_text(), new_key_text()
    settings = make_settings(secrets_key=first)
    cloud = await clouds(settings)
    await _deploy(cloud)
    assert not key_file_path(settings).exists()
    # Rotation: the new key first, the old one after it, on every process; then re-seal.
    both = await clouds(make_settings(secrets_key=f"{second},{first}"))
    report = await rotate(both.db, Keyring(make_settings(secrets_key=f"{second},{first}")))
    assert report.finished and report.retired == [sealing_key(first.encode()).hex_id]
    assert await (await clouds(make_settings(secrets_key=second))).worker_secrets(WORKER) == VALUES
    with pytest.raises(SecretsKeyError):
        await (await clouds(make_settings(secrets_key=first))).worker_secrets(WORKER)


async def test_moving_from_the_key_file_to_nno_secrets_key(make_settings, clouds) -> None:
    settings = _dev(make_settings)
    cloud = await clouds(settings)
    await _deploy(cloud)
    path = key_file_path(settings)
    key = parse_key_file(path, path.read_text())[0]
    assert await (await clouds(make_settings(secrets_key=key))).worker_secrets(WORKER) == VALUES


def test_a_short_configured_key_is_refused() -> None:
    with pytest.raises(SecretsKeyError, match="at least 32"):
        parse_configured("short")
    with pytest.raises(SecretsKeyError):
        parse_configured(new_key_text() + ",")


def test_legacy_masters_include_the_earlier_derivations(tmp_path: Path) -> None:
    dev = Settings(auth_api_key=None, data_dir=tmp_path)
    keyed = Settings(auth_api_key="k" * 40, data_dir=tmp_path)
    assert dev.signing_secret in legacy_masters(keyed)  # turning AUTH_API_KEY on
    assert keyed.signing_secret in legacy_masters(keyed)
    moved = Settings(auth_api_key=None, data_dir=tmp_path / "elsewhere")
    assert dev.signing_secret not in legacy_masters(moved)
    assert dev.signing_secret in legacy_masters(moved, [tmp_path])


@hsettings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_key_file_parser_accepts_only_keys_nno_makes(content: str) -> None:
    path = Path("/nowhere/secrets.key")
    try:
        keys = parse_key_file(path, content)
    except SecretsKeyError as exc:
        assert str(path) in str(exc)
        return
    assert keys and all(len(k) == 43 for k in keys)


@hsettings(max_examples=50, deadline=None)
@given(st.lists(st.just(None).map(lambda _: new_key_text()), min_size=1, max_size=4))
def test_key_file_round_trip(tmp_path_factory: Any, keys: list[str]) -> None:
    path = tmp_path_factory.mktemp("k") / "secrets.key"
    write_key_file(path, keys, exclusive=False)
    assert parse_key_file(path, path.read_text()) == keys
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@hsettings(max_examples=100, deadline=None)
@given(address=st.text(min_size=1, max_size=40), value=st.text(max_size=200),
       flip=st.integers(min_value=0, max_value=10_000))
def test_a_sealed_value_opens_only_as_itself(address: str, value: str, flip: int) -> None:
    box = SecretBox([sealing_key(b"k" * 43)])
    sealed = box.seal(address, value)
    assert sealed.startswith(MAGIC) and box.open(address, sealed) == value
    with pytest.raises(SecretsKeyError):
        box.open(address + "x", sealed)
    damaged = bytearray(sealed)
    damaged[flip % len(damaged)] ^= 0x01
    with pytest.raises(SecretsKeyError):  # never a bare InvalidTag, never a wrong value
        box.open(address, bytes(damaged))


async def test_nno_admin_rotate_secrets_key(make_settings, clouds, tmp_path: Path) -> None:
    settings = _dev(make_settings)
    cloud = await clouds(settings)
    await _deploy(cloud)
    path = key_file_path(settings)
    old = path.read_text()
    env = {"NNO_DATA_DIR": str(settings.data_dir), "NNO_DATABASE_URL": settings.database_url,
           "NNO_SECRETS_KEY": None, "AUTH_API_KEY": None, "NNO_HOME": str(tmp_path / "home")}
    runner = CliRunner()
    # The command runs its own event loop: invoke it from a thread that has none.
    result = await asyncio.to_thread(runner.invoke, app, ["admin", "rotate-secrets-key", "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["finished"] and report["resealed"] == len(VALUES) and len(report["retired"]) == 1
    assert path.read_text() != old
    assert await cloud.worker_secrets(WORKER) == VALUES

    text_run = await asyncio.to_thread(runner.invoke, app, ["admin", "rotate-secrets-key"], env=env)
    assert text_run.exit_code == 0 and "re-sealed with key" in text_run.stdout

    nowhere = {**env, "NNO_DATABASE_URL": None}
    missing = await asyncio.to_thread(runner.invoke, app, ["admin", "rotate-secrets-key", "--data-dir",
                                                           str(tmp_path / "no-such-dir")], env=nowhere)
    assert missing.exit_code == 1 and "no local cloud" in missing.stderr and "Traceback" not in missing.output
    assert not (tmp_path / "no-such-dir").exists()

    path.write_text("garbage\n")
    damaged = await asyncio.to_thread(runner.invoke, app, ["admin", "rotate-secrets-key"], env=env)
    assert damaged.exit_code == 1 and "damaged" in damaged.stderr and "Traceback" not in damaged.output


async def test_a_worker_that_cannot_open_its_secrets_logs_the_fix(provider, at, settings: Settings) -> None:
    """Through the edge: the Worker's host answers 503 and the log names the fix, not a bare InvalidTag."""
    name = await deploy_echo(provider, P1)
    await provider.put_secret(name, "API_TOKEN", "tok")
    key_file_path(settings).write_text("# edited by hand\nnot-a-key\n")
    with capture_logs() as logs:
        resp = await at(f"echo.svc.default.{P1}.nno.localhost").get("/")
    assert resp.status_code == 503 and resp.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    failed = [e for e in logs if e["event"] == "worker_start_failed"]
    assert failed and "is damaged" in failed[0]["error"] and "InvalidTag" not in failed[0]["error"]


def test_processes_making_the_key_together_agree_on_one(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    settings = Settings(auth_api_key=None, data_dir=tmp_path)
    rings = [Keyring(settings) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda ring: ring.create(), rings))
    assert len({ring.box().current.id for ring in rings}) == 1
    assert [p.name for p in key_file_path(settings).parent.iterdir()] == ["secrets.key"]


def test_the_key_file_is_made_where_hard_links_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(*_: Any) -> None:
        raise PermissionError("this filesystem has no hard links")

    monkeypatch.setattr(os, "link", no_links)
    settings = Settings(auth_api_key=None, data_dir=tmp_path)
    first, second = Keyring(settings), Keyring(settings)
    first.create()
    second.create()  # finds the file: keeps it
    assert first.box().current.id == second.box().current.id
    assert stat.S_IMODE(key_file_path(settings).stat().st_mode) == 0o600
