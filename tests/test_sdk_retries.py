"""llmswitch.completion against a faulty upstream: what is retried, how long it waits, what it raises."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

import llmswitch
from llmswitch.router import retry
from llmswitch.testing import FakeUpstream, Reply

MESSAGES = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(autouse=True)
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff without a provider's word is a random wait; zero it so every wait a test sees is the provider's."""
    monkeypatch.setattr(retry, "backoff", lambda *args, **kwargs: 0.0)


def ask(up: FakeUpstream, **kwargs: Any) -> Any:
    return llmswitch.completion("openai/gpt-4o-mini", MESSAGES, api_base=up.openai_base, api_key="sk-test", **kwargs)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Reply(status=429, retry_after=0.05), id="retry_after-both-headers"),
        pytest.param(Reply(status=429, headers={"retry-after": "0.05"}), id="retry-after-seconds"),
        pytest.param(Reply(status=429, headers={"retry-after-ms": "50"}), id="retry-after-ms"),
        pytest.param(Reply(status=503, headers={"retry-after-ms": "50"}), id="503-retry-after-ms"),
    ],
)
def test_a_rate_limit_is_retried_after_the_providers_wait(up: FakeUpstream, fault: Reply) -> None:
    up.script(fault, Reply(text="made it"))
    t0 = time.monotonic()
    r = ask(up)
    assert r.choices[0].message.content == "made it"
    assert time.monotonic() - t0 >= 0.05
    assert len(up.requests) == 2


@pytest.mark.parametrize("status", [500, 502, 503, 529])
def test_server_errors_are_retried(up: FakeUpstream, status: int) -> None:
    up.script(Reply(status=status), Reply(status=status), Reply(text="third time"))
    assert ask(up).choices[0].message.content == "third time"
    assert len(up.requests) == 3


def test_retries_stop_at_num_retries_with_the_last_error(up: FakeUpstream) -> None:
    up.script(*[Reply(status=503, message=f"overloaded #{i}") for i in range(4)])
    with pytest.raises(llmswitch.ServiceUnavailableError, match="overloaded #2"):
        ask(up, num_retries=2)
    assert len(up.requests) == 3
    assert up.pending == 1


def test_num_retries_zero_turns_retries_off(up: FakeUpstream) -> None:
    up.script(Reply(status=429, retry_after=0.01), Reply(text="unused"))
    with pytest.raises(llmswitch.RateLimitError):
        ask(up, num_retries=0)
    assert len(up.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_never_retried(up: FakeUpstream, status: int) -> None:
    up.script(Reply(status=status), Reply(text="unused"))
    with pytest.raises(llmswitch.APIStatusError) as info:
        ask(up, num_retries=3)
    assert info.value.status_code == status
    assert len(up.requests) == 1


def test_x_should_retry_overrides_the_class(up: FakeUpstream) -> None:
    up.script(Reply(status=503, headers={"x-should-retry": "false"}), Reply(text="unused"))
    with pytest.raises(llmswitch.ServiceUnavailableError):
        ask(up)
    assert len(up.requests) == 1

    up.reset()
    up.script(Reply(status=409, headers={"x-should-retry": "true"}), Reply(text="retried"))
    assert ask(up).choices[0].message.content == "retried"
    assert len(up.requests) == 2


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, llmswitch.BadRequestError),
        (401, llmswitch.AuthenticationError),
        (403, llmswitch.PermissionDeniedError),
        (404, llmswitch.NotFoundError),
        (429, llmswitch.RateLimitError),
        (500, llmswitch.InternalServerError),
        (503, llmswitch.ServiceUnavailableError),
    ],
)
def test_errors_have_the_class_of_their_status_and_the_providers_text(
    up: FakeUpstream, status: int, error_class: type[llmswitch.APIStatusError]
) -> None:
    text = f"the provider's own words for {status}"
    up.script(Reply(status=status, message=text, retry_after=7))
    with pytest.raises(error_class) as info:
        ask(up, num_retries=0)
    err = info.value
    assert type(err) is error_class
    assert text in str(err) and text in err.message
    assert (err.status_code, err.provider, err.retry_after) == (status, "openai", 7.0)
    assert isinstance(err.body, dict) and err.body["error"]["message"] == text


def test_errors_judged_by_meaning_not_only_status(up: FakeUpstream) -> None:
    up.script(
        Reply(
            status=400, message="This model's maximum context length is 128000 tokens.", code="context_length_exceeded"
        )
    )
    with pytest.raises(llmswitch.ContextWindowExceededError, match="maximum context length"):
        ask(up, num_retries=0)


def test_a_plain_text_503_still_gives_service_unavailable_with_its_text(up: FakeUpstream) -> None:
    up.script(Reply(status=503, body="upstream connect error or disconnect/reset before headers"))
    with pytest.raises(llmswitch.ServiceUnavailableError, match="upstream connect error") as info:
        ask(up, num_retries=0)
    assert info.value.status_code == 503


def test_a_plain_text_503_is_retried_like_any_other(up: FakeUpstream) -> None:
    up.script(Reply(status=503, body="<html>Service Unavailable</html>", content_type="text/html"), Reply(text="ok"))
    assert ask(up).choices[0].message.content == "ok"


def test_connection_refused_is_a_connection_error_not_a_timeout() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but never listening: connections are refused
        with pytest.raises(llmswitch.APIConnectionError, match=r"127\.0\.0\.1") as info:
            llmswitch.completion("openai/gpt-4o-mini", MESSAGES, api_base=f"http://127.0.0.1:{port}/v1", api_key="k")
    assert not isinstance(info.value, llmswitch.APITimeoutError)


def test_a_dropped_connection_is_retried(up: FakeUpstream) -> None:
    up.script(Reply(cut_after=0), Reply(text="second"))
    assert ask(up).choices[0].message.content == "second"
    assert len(up.requests) == 2


def test_a_dropped_connection_without_retries_is_a_connection_error(up: FakeUpstream) -> None:
    up.script(Reply(cut_after=0))
    with pytest.raises(llmswitch.APIConnectionError):
        ask(up, num_retries=0)


def test_a_hang_times_out(up: FakeUpstream) -> None:
    up.script(Reply(hang=True))
    t0 = time.monotonic()
    with pytest.raises(llmswitch.APITimeoutError, match="timed out"):
        ask(up, timeout=0.3, num_retries=0)
    assert time.monotonic() - t0 >= 0.3
    assert up.wait_for_disconnects(1, timeout=5)  # the abandoned request's connection was closed


def test_one_deadline_covers_every_attempt(up: FakeUpstream) -> None:
    up.default = Reply(hang=True)
    t0 = time.monotonic()
    with pytest.raises(llmswitch.APITimeoutError):
        ask(up, timeout=0.3, num_retries=5)
    assert time.monotonic() - t0 < 5  # not six full timeouts plus waits


def test_embeddings_are_retried_too(up: FakeUpstream) -> None:
    up.script(Reply(status=429, retry_after=0.02), Reply(dims=4))
    r = llmswitch.embedding("openai/text-embedding-3-small", "hi", api_base=up.openai_base, api_key="k")
    assert len(r.data[0].embedding) == 4
    assert len(up.calls_for("/embeddings")) == 2


# ---------------------------------------------------------------- the same through every provider's dialect

PROVIDERS = {
    "openai": ("openai/gpt-4o-mini", "openai_base"),
    "anthropic": ("anthropic/claude-sonnet-4-0", "anthropic_base"),
    "gemini": ("gemini/gemini-2.5-flash", "gemini_base"),
}


def ask_provider(up: FakeUpstream, provider: str, **kwargs: Any) -> Any:
    model, base = PROVIDERS[provider]
    return llmswitch.completion(model, MESSAGES, api_base=getattr(up, base), api_key="k", **kwargs)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_waits_out_retry_after_then_succeeds(up: FakeUpstream, provider: str) -> None:
    up.script(Reply(status=429, retry_after=0.05), Reply(status=503), Reply(text="made it"))
    t0 = time.monotonic()
    assert ask_provider(up, provider).choices[0].message.content == "made it"
    assert time.monotonic() - t0 >= 0.05
    assert len(up.requests) == 3


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, llmswitch.BadRequestError),
        (404, llmswitch.NotFoundError),
        (429, llmswitch.RateLimitError),
        (500, llmswitch.InternalServerError),
        (503, llmswitch.ServiceUnavailableError),
    ],
)
def test_every_provider_maps_errors_to_the_same_classes_with_the_providers_text(
    up: FakeUpstream, provider: str, status: int, error_class: type[llmswitch.APIStatusError]
) -> None:
    up.script(Reply(status=status, message=f"{provider} says no ({status})"))
    with pytest.raises(error_class, match=rf"{provider} says no \({status}\)") as info:
        ask_provider(up, provider, num_retries=0)
    assert info.value.status_code == status and info.value.provider == provider
