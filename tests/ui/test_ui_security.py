"""The dashboard's security at the HTTP level: headers, the session cookie, CSRF, what a session may reach."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from importlib import resources

import pytest
from gateway_harness import MASTER_KEY, ServedGateway, dialect_error, gateway_config

from llmswitch.server.ui_sessions import UISessions
from llmswitch.testing import FakeUpstream


@pytest.fixture(scope="module")
def gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    store = str(tmp_path_factory.mktemp("security") / "store.db")
    with ServedGateway(gateway_config(upstream, store, num_retries=0)) as served:
        yield served


def _sign_in(gw: ServedGateway, key: str = MASTER_KEY, **headers: str) -> tuple[str, str]:
    """(cookie header value, CSRF token) of a new session."""
    r = gw.call("POST", "/ui/session", key=key, headers=headers)
    assert r.status == 200, r.body
    cookie = r.headers["set-cookie"].split(";")[0]
    return cookie, r.json()["csrf_token"]


def test_every_ui_answer_carries_the_security_headers(gw: ServedGateway) -> None:
    for path in ("/ui", "/ui/", "/ui/assets/app.js", "/ui/assets/app.css", "/ui/assets/uPlot.iife.min.js"):
        r = gw.call("GET", path, key=None)
        assert r.status == 200, path
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
    assert gw.call("GET", "/ui", key=None).headers["content-type"].startswith("text/html")
    assert gw.call("GET", "/ui/assets/app.js", key=None).headers["content-type"].startswith("text/javascript")


def test_only_the_packaged_files_are_served(gw: ServedGateway) -> None:
    for path in (
        "/ui/assets/../server/app.py",
        "/ui/assets/__init__.py",
        "/ui/assets/index.html",
        "/ui/assets/nope.js",
    ):
        assert gw.call("GET", path, key=None).status == 404, path
    first = gw.call("GET", "/ui/assets/app.js", key=None)
    again = gw.call("GET", "/ui/assets/app.js", key=None, headers={"if-none-match": first.headers["etag"]})
    assert again.status == 304 and again.body == b""


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []
        self.handlers: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handlers += [name for name, _ in attrs if name.startswith("on") or name == "style"]
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True
        if tag == "style":
            self.inline.append("<style>")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data)


def test_the_page_has_no_inline_script_style_or_handler() -> None:
    page = _Page()
    page.feed(resources.files("llmswitch.ui").joinpath("index.html").read_text())
    assert page.scripts and all((s.get("src") or "").startswith("/ui/assets/") for s in page.scripts)
    assert page.inline == [] and page.handlers == []


def test_the_script_never_writes_html() -> None:
    script = resources.files("llmswitch.ui").joinpath("app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    assert not re.search(r"localStorage|sessionStorage", script)


def test_sign_in_sets_a_strict_httponly_cookie_and_never_returns_the_key(gw: ServedGateway) -> None:
    r = gw.call("POST", "/ui/session")
    assert r.status == 200 and MASTER_KEY.encode() not in r.body
    attrs = [a.strip() for a in r.headers["set-cookie"].split(";")]
    assert attrs[0].startswith("llmswitch_ui=") and MASTER_KEY not in attrs[0]
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= set(attrs) and "Secure" not in attrs
    assert any(a.startswith("Max-Age=") and int(a[8:]) > 0 for a in attrs)
    assert r.json()["role"] == "master" and len(r.json()["csrf_token"]) >= 32
    behind_tls = gw.call("POST", "/ui/session", headers={"x-forwarded-proto": "https"})
    assert "Secure" in [a.strip() for a in behind_tls.headers["set-cookie"].split(";")]


def test_a_session_reads_the_admin_api(gw: ServedGateway) -> None:
    cookie, _ = _sign_in(gw)
    r = gw.call("GET", "/key/list", key=None, headers={"cookie": cookie})
    assert r.status == 200, r.body
    assert gw.call("GET", "/ui/session", key=None, headers={"cookie": cookie}).json()["role"] == "master"
    assert gw.call("GET", "/ui/session", key=None).status == 401


def test_a_change_needs_the_csrf_token_and_a_same_site_origin(gw: ServedGateway) -> None:
    cookie, csrf = _sign_in(gw)
    body = {"key_alias": "made-in-the-browser"}
    for headers in (
        {"cookie": cookie},
        {"cookie": cookie, "x-csrf-token": "x" * 43},
        {"cookie": cookie, "x-csrf-token": csrf, "origin": "https://evil.example"},
        {"cookie": cookie, "x-csrf-token": csrf, "origin": "null"},
    ):
        r = gw.call("POST", "/key/generate", body, key=None, headers=headers)
        assert r.status == 403, (headers, r.body)
        assert dialect_error("openai", r)[0] == "permission_error"
    listed = gw.call("GET", "/key/list?return_full_object=true&size=1000").json()["keys"]
    assert "made-in-the-browser" not in {k["key_alias"] for k in listed}
    origin = f"http://127.0.0.1:{gw.port}"
    ok = gw.call(
        "POST", "/key/generate", body, key=None, headers={"cookie": cookie, "x-csrf-token": csrf, "origin": origin}
    )
    assert ok.status == 200, ok.body
    proxied = {
        "cookie": cookie,
        "x-csrf-token": csrf,
        "origin": "https://llm.example",
        "x-forwarded-host": "llm.example",
    }
    assert gw.call("POST", "/key/generate", {"key_alias": "via-proxy"}, key=None, headers=proxied).status == 200


def test_a_session_cannot_reach_the_model_routes(gw: ServedGateway) -> None:
    cookie, csrf = _sign_in(gw)
    chat = {"model": "m-openai", "messages": [{"role": "user", "content": "hi"}]}
    r = gw.call("POST", "/v1/chat/completions", chat, key=None, headers={"cookie": cookie, "x-csrf-token": csrf})
    assert r.status == 401, r.body


def test_who_may_sign_in(gw: ServedGateway) -> None:
    assert gw.call("POST", "/ui/session", key=None).status == 401
    assert gw.call("POST", "/ui/session", key="sk-not-a-key-at-all").status == 401
    plain = gw.new_key(key_alias="plain")
    r = gw.call("POST", "/ui/session", key=plain)
    assert r.status == 403 and "master key or a team admin's key" in dialect_error("openai", r)[1]
    assert "set-cookie" not in r.headers
    foreign = gw.call("POST", "/ui/session", headers={"origin": "https://evil.example"})
    assert foreign.status == 403


def test_sign_out_ends_the_session(gw: ServedGateway) -> None:
    cookie, csrf = _sign_in(gw)
    assert gw.call("POST", "/ui/logout", key=None, headers={"cookie": cookie}).status == 403  # no CSRF token
    r = gw.call("POST", "/ui/logout", key=None, headers={"cookie": cookie, "x-csrf-token": csrf})
    assert r.status == 200 and "Max-Age=0" in r.headers["set-cookie"]
    assert gw.call("GET", "/key/list", key=None, headers={"cookie": cookie}).status == 401


def test_a_session_expires(gw: ServedGateway) -> None:
    now = [1000.0]
    sessions = gw.gateway.ui_sessions
    gw.gateway.ui_sessions = UISessions(ttl_s=60.0, clock=lambda: now[0])
    try:
        cookie, _ = _sign_in(gw)
        assert gw.call("GET", "/key/list", key=None, headers={"cookie": cookie}).status == 200
        now[0] += 61
        assert gw.call("GET", "/key/list", key=None, headers={"cookie": cookie}).status == 401
    finally:
        gw.gateway.ui_sessions = sessions


def test_a_blocked_key_ends_its_sessions(gw: ServedGateway) -> None:
    assert gw.call("POST", "/user/new", {"user_id": "dee", "auto_create_key": False}).status == 200
    team = {"team_id": "ops", "members_with_roles": [{"user_id": "dee", "role": "admin"}]}
    assert gw.call("POST", "/team/new", team).status == 200
    key = gw.new_key(team_id="ops", user_id="dee")
    cookie, _ = _sign_in(gw, key)
    assert gw.call("GET", "/spend/logs", key=None, headers={"cookie": cookie}).status == 200
    assert gw.call("POST", "/key/update", {"key": key, "blocked": True}).status == 200
    r = gw.call("GET", "/spend/logs", key=None, headers={"cookie": cookie})
    assert r.status == 401 and "blocked" in dialect_error("openai", r)[1]
