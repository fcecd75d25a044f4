"""The README's curl session, run as printed against the compose topology: through nginx on
localhost:8000, to two API hosts of the image, on one store (a module of its own: one topology each)."""

from __future__ import annotations

import os

from tests.readme_session import assert_readme_session

MARK = "readme-session-through-the-proxy"


def test_the_readmes_session_answers_through_the_proxy_as_the_readme_shows(topology, tmp_path):
    # The compose file refuses anonymous writes: the session's curl sends an admin key from a .curlrc, as a
    # user who configured curl would, so every command still runs exactly as printed.
    curl_home = tmp_path / "curl-home"
    curl_home.mkdir()
    (curl_home / ".curlrc").write_text(
        f'header = "Authorization: Api-Key {topology.admin_key}"\nheader = "X-Request-ID: {MARK}"\n'
    )
    workdir = tmp_path / "session"
    workdir.mkdir()

    steps = assert_readme_session(
        "http://localhost:8000",
        workdir,
        prefix=["ip", "netns", "exec", topology.proxy.netns],
        env={**os.environ, "CURL_HOME": str(curl_home)},
    )

    # Every step went through the proxy, and it spread them over both hosts (each logs the request id).
    served = topology.requests_by_host({MARK})
    assert len(steps) >= 15 and sum(served.values()) >= len(steps) - 2, served
    assert all(served.values()), served
