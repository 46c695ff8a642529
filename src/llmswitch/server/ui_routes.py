"""The admin dashboard at ``/ui``: its static files from the package, and sign-in and sign-out.

    GET  /ui                  the page (llmswitch/ui/index.html)
    GET  /ui/assets/<file>    its scripts, styles and the vendored chart library
    POST /ui/session          sign in: the key in ``Authorization: Bearer``; sets the session cookie
    GET  /ui/session          who is signed in, and the session's CSRF token (401 when no one)
    POST /ui/logout           sign out (CSRF token required)

The page itself calls only the documented admin API (``/key/*``, ``/user/*``, ``/team/*``, ``/spend/*``,
``/health``), with the session cookie instead of a key (see ui_sessions.py). Every answer under ``/ui``
carries a strict Content-Security-Policy (``default-src 'self'``, no inline script or style), refuses
framing, and turns off MIME sniffing and referrers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from llmswitch.dialects._json import dumps
from llmswitch.errors import AuthenticationError
from llmswitch.server import http
from llmswitch.server.team_scope import refused, team_admin_of
from llmswitch.server.ui_sessions import COOKIE, UISessions, check_origin, session_cookie

if TYPE_CHECKING:
    from llmswitch.server.app import Gateway

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}
_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".txt": b"text/plain; charset=utf-8",
    ".svg": b"image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: bytes
    etag: str


def _load_assets() -> dict[str, Asset]:
    """Every file of the ``llmswitch.ui`` package by name, read once (they are small and never change)."""
    out: dict[str, Asset] = {}
    for entry in resources.files("llmswitch.ui").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _TYPES:
            body = entry.read_bytes()
            out[entry.name] = Asset(body, _TYPES[suffix], '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
    return out


_ASSETS: dict[str, Asset] | None = None


def assets() -> dict[str, Asset]:
    global _ASSETS
    if _ASSETS is None:
        _ASSETS = _load_assets()
    return _ASSETS


def _is_tls(request: http.Request) -> bool:
    return bool(request.state.get("tls")) or request.headers.get("x-forwarded-proto") == "https"


async def _send_asset(request: http.Request, send: http.Send, asset: Asset) -> None:
    headers = dict(SECURITY_HEADERS) | {"cache-control": "no-cache", "etag": asset.etag}
    if request.headers.get("if-none-match") == asset.etag:
        await http.send_bytes(send, 304, b"", content_type=asset.content_type, headers=headers)
        return
    await http.send_bytes(send, 200, asset.body, content_type=asset.content_type, headers=headers)


async def page(gw: Gateway, request: http.Request, send: http.Send) -> None:
    await _send_asset(request, send, assets()["index.html"])


async def asset(gw: Gateway, request: http.Request, send: http.Send) -> None:
    found = assets().get(request.path.removeprefix("/ui/assets/"))
    if found is None or found.content_type.startswith(b"text/html"):
        body = dumps({"error": {"message": "no such file", "type": "not_found_error", "param": None, "code": None}})
        await http.send_bytes(send, 404, body, headers=SECURITY_HEADERS)
        return
    await _send_asset(request, send, found)


def sessions(gw: Gateway) -> UISessions:
    found: UISessions = gw.ui_sessions
    return found


def _who(gw: Gateway, key: str) -> dict[str, str | None]:
    """``{"role": "master"}`` or ``{"role": "team_admin", "team_id": ...}`` for a key that may sign in."""
    principal = gw.keys.authenticate(key)
    if principal.is_master:
        return {"role": "master", "team_id": None}
    team_id = team_admin_of(gw, principal)
    if team_id is None:
        raise refused("the dashboard takes the master key or a team admin's key; this key is neither")
    return {"role": "team_admin", "team_id": team_id}


def _cookie(request: http.Request, value: str, max_age: int) -> str:
    secure = "; Secure" if _is_tls(request) else ""
    return f"{COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"


async def sign_in(gw: Gateway, request: http.Request, send: http.Send) -> None:
    check_origin(request)
    key = gw.key_of(request)
    if not key:
        raise AuthenticationError(
            "send the key as 'Authorization: Bearer <key>'", status_code=401, provider="llmswitch"
        )
    who = _who(gw, key)
    store = sessions(gw)
    old = session_cookie(request)
    if old is not None:
        store.close(old)
    session_id, session = store.open(key)
    body = dumps(who | {"csrf_token": session.csrf_token, "expires_in": int(store.ttl_s)})
    headers = SECURITY_HEADERS | {
        "set-cookie": _cookie(request, session_id, int(store.ttl_s)),
        "cache-control": "no-store",
    }
    await http.send_bytes(send, 200, body, headers=headers)


async def current(gw: Gateway, request: http.Request, send: http.Send) -> None:
    session = sessions(gw).find(request)
    if session is None:
        raise AuthenticationError("not signed in", status_code=401, provider="llmswitch")
    who = _who(gw, session.key)
    await http.send_bytes(
        send,
        200,
        dumps(who | {"csrf_token": session.csrf_token}),
        headers=SECURITY_HEADERS | {"cache-control": "no-store"},
    )


async def sign_out(gw: Gateway, request: http.Request, send: http.Send) -> None:
    # the CSRF token was checked on the way in (ui_sessions.UISessions.key_for): a POST under /ui/
    session_id = session_cookie(request)
    if session_id is not None:
        sessions(gw).close(session_id)
    headers = SECURITY_HEADERS | {"set-cookie": _cookie(request, "", 0), "cache-control": "no-store"}
    await http.send_bytes(send, 200, b'{"signed_out":true}', headers=headers)


ROUTES: dict[tuple[str, str], http.Handler] = {
    ("GET", "/ui"): page,
    ("GET", "/ui/"): page,
    ("POST", "/ui/session"): sign_in,
    ("GET", "/ui/session"): current,
    ("POST", "/ui/logout"): sign_out,
}


def route(method: str, path: str) -> http.Handler | None:
    """The handler of an asset path (``GET /ui/assets/...``), which the fixed table cannot list."""
    if method in ("GET", "HEAD") and path.startswith("/ui/assets/"):
        return asset
    return None
