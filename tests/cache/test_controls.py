"""Per-request cache controls: LiteLLM's body object and Cache-Control headers; hostile values are 400s."""

from __future__ import annotations

from typing import Any

import pytest

from llmswitch.cache.controls import read_controls
from llmswitch.errors import BadRequestError


def test_body_controls_are_read() -> None:
    c = read_controls({"no-cache": True, "no-store": False, "ttl": 60, "s-maxage": 0, "namespace": "n1"}, None)
    assert (c.no_cache, c.no_store, c.ttl, c.max_age, c.namespace) == (True, False, 60.0, 0.0, "n1")


def test_cache_control_header_is_read_and_the_body_wins() -> None:
    c = read_controls(None, 'no-store, max-age="15", private, max-age=oops')
    assert c.no_store and c.max_age == 15.0 and not c.no_cache
    assert read_controls({"s-maxage": 5}, "max-age=15").max_age == 5.0


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ("no-cache", "cache"),
        ([1], "cache"),
        ({"no-cache": "yes"}, "cache.no-cache"),
        ({"ttl": -1}, "cache.ttl"),
        ({"ttl": 0}, "cache.ttl"),
        ({"ttl": 1e300}, "cache.ttl"),
        ({"ttl": float("nan")}, "cache.ttl"),
        ({"ttl": "60"}, "cache.ttl"),
        ({"ttl": True}, "cache.ttl"),
        ({"s-maxage": -5}, "cache.s-maxage"),
        ({"namespace": ""}, "cache.namespace"),
        ({"namespace": "x" * 129}, "cache.namespace"),
        ({"namespace": "a\nb"}, "cache.namespace"),
        ({"namespace": {"$ne": 1}}, "cache.namespace"),
        ({"flush": True}, "cache.flush"),
    ],
)
def test_hostile_controls_are_refused_naming_the_field(body: Any, param: str) -> None:
    with pytest.raises(BadRequestError) as info:
        read_controls(body, None)
    assert info.value.status_code == 400
    assert info.value.param == param


def test_a_huge_header_is_read_in_bounded_time() -> None:
    c = read_controls(None, "no-cache," + "x" * 1_000_000)
    assert c.no_cache
