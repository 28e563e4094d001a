"""Paths written to logs never carry a password-reset token (gateway access lines, edge crashes)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nno.kernel.logging import loggable_path

_segment = st.text(alphabet=st.characters(blacklist_characters="/", blacklist_categories=("Cs",)), min_size=1)


@given(prefix=st.lists(_segment.filter(lambda s: s != "reset-password"), max_size=4), token=_segment)
def test_reset_token_never_reaches_the_log(prefix: list[str], token: str) -> None:
    head = "".join(f"/{p}" for p in prefix)
    assert loggable_path(f"{head}/reset-password/{token}") == f"{head}/reset-password/[redacted]"


@given(st.text().filter(lambda p: "/reset-password/" not in p))
def test_other_paths_are_kept(path: str) -> None:
    assert loggable_path(path) == path
