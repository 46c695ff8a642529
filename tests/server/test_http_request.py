"""The request value's headers: names decoded once and remembered, within a bound a client cannot push."""

from __future__ import annotations

from typing import Any

import pytest

from llmswitch.server import http


def request(headers: list[tuple[bytes, bytes]]) -> http.Request:
    scope: dict[str, Any] = {"method": "POST", "path": "/v1/chat/completions", "headers": headers}
    return http.Request(scope, None)  # type: ignore[arg-type]


def test_headers_decode_as_latin_1_and_the_last_of_a_repeated_name_wins() -> None:
    raw = [
        (b"authorization", b"Bearer sk-1"),
        (b"x-caf\xe9", b"cr\xe8me"),
        (b"x-stainless-retry-count", b"0"),
        (b"x-stainless-retry-count", b"1"),
    ]
    for _ in range(2):  # decoded the first time, remembered the second: the same either way
        assert request(raw).headers == {
            "authorization": "Bearer sk-1",
            "x-caf\xe9": "cr\xe8me",
            "x-stainless-retry-count": "1",
        }


def test_a_client_inventing_header_names_cannot_grow_what_is_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "_NAMES", {})  # this test's own, left full of made-up names
    for i in range(5 * http._NAMES_MAX):
        name = f"x-made-up-{i}".encode()
        assert request([(name, b"v")]).headers == {name.decode(): "v"}
    assert len(http._NAMES) <= http._NAMES_MAX
    # names past the bound still decode, every time
    assert request([(b"x-made-up-late", b"v"), (b"host", b"h")]).headers == {"x-made-up-late": "v", "host": "h"}
