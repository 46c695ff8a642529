"""Where an HTTP request goes and its head on the wire: a URL parsed to its origin, Host and path (with the
credentials it carries), and the request line and headers, both cached (a provider's repeat)."""

from __future__ import annotations

import base64
from typing import NamedTuple
from urllib.parse import quote, unquote, urlsplit

Origin = tuple[str, str, int]  # scheme, host, port


class InvalidURL(ValueError):
    """A URL this client cannot send to (not http/https, no host, a bad port)."""


class Target(NamedTuple):
    origin: Origin
    authority: str  # the Host header
    path: str  # path and query, as sent on the request line
    basic_auth: str | None = None  # the Authorization header for a URL's user:password@
    proxy_auth: str | None = None  # the Proxy-Authorization header, for requests to an http proxy


_targets: dict[str, Target] = {}
# everything printable but space stays as written: a valid URL goes out verbatim
_VERBATIM = "".join(chr(c) for c in range(0x21, 0x7F))


def parse_url(url: str) -> Target:
    """Where ``url`` points (cached: a provider's URLs repeat)."""
    target = _targets.get(url)
    if target is None:
        target = _parse_url(url)
        if len(_targets) >= 1024:
            _targets.clear()
        _targets[url] = target
    return target


def _parse_url(url: str) -> Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"{url!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidURL(f"{url!r}: only http:// and https:// URLs are supported")
    host = parts.hostname
    if not host:
        raise InvalidURL(f"{url!r}: no host")
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    default = 443 if scheme == "https" else 80
    if port is None:
        port = default
    shown = f"[{host}]" if ":" in host else host
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    auth = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        auth = f"Basic {base64.b64encode(pair).decode('ascii')}"
    authority = shown if port == default else f"{shown}:{port}"
    return Target((scheme, host, port), authority, quote(path, safe=_VERBATIM), auth)


_heads: dict[tuple[object, ...], bytes] = {}


def request_head(method: str, target: Target, headers: dict[str, str], body_size: int) -> bytes:
    """The request line and headers: ``Host`` and ``Content-Length`` added unless the caller set them.

    Cached by content: a provider sends the same headers again and again, and looking them up costs
    a quarter of writing them out.
    """
    key = (method, target, body_size, *headers.items())
    head = _heads.get(key)
    if head is None:
        if len(_heads) >= 256:
            _heads.clear()
        head = _heads[key] = _request_head(method, target, headers, body_size)
    return head


def _request_head(method: str, target: Target, headers: dict[str, str], body_size: int) -> bytes:
    lines = [f"{name}: {value}\r\n" for name, value in headers.items()]
    text = "".join(lines)
    if text.count("\n") != len(lines) or text.count("\r") != len(lines):
        bad = next(name for name, value in headers.items() if "\r" in f"{name}{value}" or "\n" in f"{name}{value}")
        raise ValueError(f"the request header {bad.strip()!r} contains a line break")  # never show the value
    add_host = add_length = True
    add_auth = target.basic_auth is not None
    for name in headers:
        if len(name) == 4 or len(name) == 14 or len(name) == 13:
            low = name.lower()
            if low == "host":
                add_host = False
            elif low == "content-length":
                add_length = False
            elif low == "authorization":
                add_auth = False
    start = f"{method} {target.path} HTTP/1.1\r\n"
    if add_host:
        start = f"{start}Host: {target.authority}\r\n"
    if add_auth:
        text = f"Authorization: {target.basic_auth}\r\n{text}"
    if add_length and (body_size or method in ("POST", "PUT", "PATCH")):
        text = f"{text}Content-Length: {body_size}\r\n"
    if target.proxy_auth is not None:
        text = f"{text}Proxy-Authorization: {target.proxy_auth}\r\n"
    return f"{start}{text}\r\n".encode()
