"""Response headers from a decision, as OpenAI sends them."""

from __future__ import annotations

import pytest

from llmswitch.limits import Decision, LimitRef, Window, rate_limit_headers
from llmswitch.limits.headers import go_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.0004, "1ms"),
        (0.02, "20ms"),
        (0.999, "999ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (59.9986, "59.999s"),
        (59.9994, "1m0s"),  # rounded up
        (60, "1m0s"),
        (360, "6m0s"),
        (3725.25, "1h2m5.25s"),
        (7200, "2h0m0s"),
        (-3, "0s"),
    ],
)
def test_go_durations(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_an_admitted_request_gets_both_windows_and_no_retry_after() -> None:
    decision = Decision(True, requests=Window(60, 59, 1.0), tokens=Window(150_000, 149_000, 0.4))
    assert rate_limit_headers(decision) == {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-limit-tokens": "150000",
        "x-ratelimit-remaining-tokens": "149000",
        "x-ratelimit-reset-tokens": "400ms",
    }


def test_a_refusal_gets_retry_after_rounded_up() -> None:
    decision = Decision(
        False, 1.2, 60, 0, 60.0, LimitRef("key:a", "rpm_limit"), requests=Window(60, 0, 60.0), tokens=None
    )
    headers = rate_limit_headers(decision)
    assert headers["retry-after"] == "2"
    assert headers["retry-after-ms"] == "1200"
    assert "x-ratelimit-limit-tokens" not in headers


def test_a_refusal_waiting_cannot_help_has_no_retry_after() -> None:
    decision = Decision(False, None, 5, 0, None, LimitRef("key:a", "max_parallel_requests"))
    assert rate_limit_headers(decision) == {}
