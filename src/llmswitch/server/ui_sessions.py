"""The dashboard's sign-in sessions: a key held on the server, named by an HttpOnly cookie.

Signing in at ``/ui`` sends the master key or a team admin's key once (``POST /ui/session``); the
gateway keeps it in this process's memory under a random session id and answers with a cookie
(``HttpOnly``, ``SameSite=Strict``, ``Secure`` over TLS) that names the session, plus a CSRF token. The
page never stores the key: its later calls to the admin API carry only the cookie, and every call
that changes something must also carry the CSRF token (``x-csrf-token``) and, when the browser
sends one, an ``Origin`` of this gateway. A session expires ``ttl_s`` after sign-in (8 hours by
default) or at sign-out, and the key it holds is checked on every call as if sent in a header, so a
key blocked, deleted or demoted from team admin stops its sessions at once.

Only requests without a key of their own, to the admin API's paths, are read through a session; the
cookie cannot reach the model routes. Sessions live in one process: behind ``--workers N`` or
several replicas, sign-in needs sticky sessions (or one worker serving ``/ui``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmswitch.server.team_scope import refused

if TYPE_CHECKING:
    from llmswitch.server.http import Request

COOKIE = "llmswitch_ui"
CSRF_HEADER = "x-csrf-token"
DEFAULT_TTL_S = 8 * 3600.0
MAX_SESSIONS = 10_000
# the admin API a session may call; everything else (the model routes above all) needs a key of its own
SESSION_PATHS = ("/ui/", "/key/", "/user/", "/team/", "/spend/", "/health", "/cache/", "/model_group/")
_KEY_HEADERS = ("authorization", "x-api-key", "x-goog-api-key", "api-key")
_SAFE_METHODS = ("GET", "HEAD")


@dataclass(frozen=True, slots=True)
class Session:
    key: str
    csrf_token: str
    expires_at: float


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def session_cookie(request: Request) -> str | None:
    """The value of our session cookie in the request, if any."""
    header = request.headers.get("cookie")
    if not header:
        return None
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return value
    return None


class UISessions:
    """Sessions by the SHA-256 of their id (the id itself is only ever in the browser's cookie)."""

    def __init__(self, *, ttl_s: float = DEFAULT_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def open(self, key: str) -> tuple[str, Session]:
        """A new session holding ``key``: its id (for the cookie) and the session (its CSRF token)."""
        now = self._clock()
        self._drop_expired(now)
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.popitem(last=False)
        session_id = secrets.token_urlsafe(32)
        session = Session(key, secrets.token_urlsafe(32), now + self.ttl_s)
        self._sessions[_digest(session_id)] = session
        return session_id, session

    def close(self, session_id: str) -> None:
        self._sessions.pop(_digest(session_id), None)

    def find(self, request: Request) -> Session | None:
        """The live session the request's cookie names, or ``None``."""
        session_id = session_cookie(request)
        if session_id is None:
            return None
        digest = _digest(session_id)
        session = self._sessions.get(digest)
        if session is not None and session.expires_at <= self._clock():
            del self._sessions[digest]
            return None
        return session

    def key_for(self, request: Request, key: str | None) -> str | None:
        """The key to authenticate ``request`` with: its own (``key``) if it sent one in a header, else its
        session's, for the admin API only; a change without the session's CSRF token is refused (403)."""
        headers = request.headers
        if any(name in headers for name in _KEY_HEADERS) or not request.path.startswith(SESSION_PATHS):
            return key
        session = self.find(request)
        if session is None:
            return key
        if request.method not in _SAFE_METHODS:
            check_origin(request)
            token = headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(token.encode(), session.csrf_token.encode()):
                raise refused(f"a change made with the dashboard's session needs its CSRF token ({CSRF_HEADER})")
        return session.key

    def _drop_expired(self, now: float) -> None:
        for digest, session in list(self._sessions.items()):
            if session.expires_at <= now:
                del self._sessions[digest]


def check_origin(request: Request) -> None:
    """Refuse a browser request sent from another site: its ``Origin`` must be this gateway's host."""
    origin = request.headers.get("origin")
    if origin is None:
        return  # not a browser's cross-site request: browsers send Origin on every cross-site POST
    # behind a proxy that rewrites Host, the browser's host is in X-Forwarded-Host (a cross-site page
    # cannot set that header on a request: it is not one a browser sends without a CORS preflight)
    hosts = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "")}
    if origin.partition("://")[2] not in hosts - {""}:
        raise refused(f"a request from {origin!r} may not use the dashboard's session")
