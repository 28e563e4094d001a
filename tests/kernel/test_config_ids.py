from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from nno.kernel.config import Settings, parse_rate
from nno.kernel.ids import ID_LENGTH, new_id, new_token, token_hash


def test_parse_rate_units() -> None:
    assert parse_rate("600/60s") == (600, 60.0)
    assert parse_rate("10/2m") == (10, 120.0)
    assert parse_rate("5/1h") == (5, 3600.0)
    assert parse_rate(" 7 / 3 ") == (7, 3.0)


@given(st.text(max_size=20))
def test_parse_rate_rejects_or_parses(value: str) -> None:
    try:
        count, window = parse_rate(value)
    except ValueError:
        return
    assert count > 0 and window > 0


def test_bad_rate_setting_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(rate_limit="lots")


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_API_KEY", "k")
    monkeypatch.setenv("NNO_CORS_ORIGINS", "https://a.example, https://b.example,")
    monkeypatch.setenv("NNO_STACK_REGISTRY_URL", "http://127.0.0.1:9000")
    s = Settings()
    assert not s.dev_bypass
    assert s.cors_origin_list == ["https://a.example", "https://b.example"]
    assert s.service_url("stacks") == "http://127.0.0.1:9000"
    monkeypatch.delenv("AUTH_API_KEY")
    assert Settings().dev_bypass


def test_ids_are_nanoids() -> None:
    ids = {new_id() for _ in range(500)}
    assert len(ids) == 500
    assert all(re.fullmatch(rf"[a-z0-9]{{{ID_LENGTH}}}", i) for i in ids)


def test_tokens_hash_stably_and_differ() -> None:
    t1, t2 = new_token(), new_token()
    assert t1 != t2 and len(t1) >= 40
    assert token_hash(t1) == token_hash(t1) != token_hash(t2)
    assert t1 not in token_hash(t1)
