"""Redirect targets on another app of the same platform (the console shell beside its auth worker)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nno.kernel.redirects import same_origin_target

BASE = "http://auth.svc.default.p1.nno.localhost:8787"
SITE = ".p1.nno.localhost"


def test_a_sibling_host_of_the_platform_is_accepted_only_with_the_site_domain() -> None:
    shell = "http://p1.nno.localhost:8787/welcome"
    assert same_origin_target(shell, BASE) is None
    assert same_origin_target(shell, BASE, site_domain=SITE) == shell
    assert same_origin_target("http://tasks.p1.nno.localhost:8787/", BASE, site_domain=SITE)


def test_other_platforms_ports_schemes_and_lookalikes_are_refused() -> None:
    for target in ("http://p2.nno.localhost:8787/", "http://evilp1.nno.localhost:8787/",
                   "http://p1.nno.localhost.evil.example:8787/", "https://p1.nno.localhost:8787/",
                   "http://p1.nno.localhost:9999/", "http://user@p1.nno.localhost:8787/",
                   "/\t/evil.example/steal", "javascript:alert(1)"):
        assert same_origin_target(target, BASE, site_domain=SITE) is None, target


@given(st.text(max_size=80))
def test_whatever_is_accepted_stays_on_the_platform(target: str) -> None:
    from ada_url import URL

    found = same_origin_target(target, BASE, site_domain=SITE)
    if found is not None:
        url = URL(found)
        assert url.hostname == "p1.nno.localhost" or url.hostname.endswith(SITE)
        assert url.protocol == "http:" and url.port == "8787" and not url.username
