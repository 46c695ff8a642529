"""Fallbacks across model groups: on failure, on a context window too small, on a content-policy refusal."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from router_harness import FakeTime, chat_request, models_called, row, run

from llmswitch import ir
from llmswitch.errors import (
    BadRequestError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    InternalServerError,
    NotFoundError,
)
from llmswitch.router.router import Router
from llmswitch.testing import FakeUpstream, Reply

CONTEXT_ERROR = Reply(
    status=400, message="This model's maximum context length is 8192 tokens.", code="context_length_exceeded"
)
POLICY_ERROR = Reply(
    status=400, message="Your request was rejected as a result of our safety system.", code="content_policy_violation"
)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def up(upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    upstream.reset()
    yield upstream
    upstream.reset()


def router(up: FakeUpstream, **settings: object) -> Router:
    time = FakeTime()
    return Router(
        [
            row(up, "small", "small-model"),
            row(up, "large", "large-model"),
            row(up, "safe", "safe-model", provider="anthropic"),
            row(up, "backup", "backup-model"),
            row(up, "last", "last-model"),
        ],
        clock=time.clock,
        sleep=time.sleep,
        **settings,  # type: ignore[arg-type]
    )


def test_a_failing_group_falls_back_to_the_next_group(up: FakeUpstream) -> None:
    up.script(*[Reply(status=503)] * 3, model="small-model")
    r = router(up, fallbacks=[{"small": ["backup"]}], num_retries=2)
    _, route = run(r.chat(chat_request("small")))
    assert route.group == "backup" and route.model == "backup-model" and route.requested == "small"
    assert route.attempts == 4
    assert models_called(up) == ["small-model"] * 3 + ["backup-model"]


def test_fallbacks_are_tried_in_order_until_one_answers(up: FakeUpstream) -> None:
    up.script(Reply(status=500), model="small-model")
    up.script(Reply(status=500), model="backup-model")
    r = router(up, fallbacks={"small": ["backup", "last"]}, num_retries=0)
    _, route = run(r.chat(chat_request("small")))
    assert route.group == "last" and models_called(up) == ["small-model", "backup-model", "last-model"]


def test_the_last_error_is_raised_when_every_fallback_fails(up: FakeUpstream) -> None:
    up.default = Reply(status=500, message="down everywhere")
    try:
        r = router(up, fallbacks={"small": ["backup"]}, num_retries=0)
        with pytest.raises(InternalServerError, match="down everywhere"):
            run(r.chat(chat_request("small")))
    finally:
        up.default = Reply()
    assert models_called(up) == ["small-model", "backup-model"]


def test_default_fallbacks_serve_every_group_without_its_own(up: FakeUpstream) -> None:
    up.script(Reply(status=500), model="large-model")
    r = router(up, default_fallbacks=["last"], num_retries=0)
    assert run(r.chat(chat_request("large")))[1].group == "last"


def test_a_bad_request_does_not_fall_back(up: FakeUpstream) -> None:
    up.script(Reply(status=400, message="bad tool schema"), model="small-model")
    r = router(up, fallbacks={"small": ["backup"]}, default_fallbacks=["last"], num_retries=3)
    with pytest.raises(BadRequestError, match="bad tool schema"):
        run(r.chat(chat_request("small")))
    assert models_called(up) == ["small-model"]


def test_a_context_length_error_moves_to_the_context_window_fallback(up: FakeUpstream) -> None:
    up.script(CONTEXT_ERROR, model="small-model")
    r = router(up, context_window_fallbacks=[{"small": ["large"]}], fallbacks=[{"small": ["backup"]}], num_retries=3)
    _, route = run(r.chat(chat_request("small")))
    assert route.group == "large"
    assert models_called(up) == ["small-model", "large-model"]  # not retried, not the ordinary fallback


def test_a_context_length_error_without_its_fallback_fails_fast(up: FakeUpstream) -> None:
    up.script(CONTEXT_ERROR, model="small-model")
    r = router(up, fallbacks=[{"small": ["backup"]}], num_retries=3)
    with pytest.raises(ContextWindowExceededError, match="maximum context length"):
        run(r.chat(chat_request("small")))
    assert models_called(up) == ["small-model"]


def test_a_prompt_too_long_for_the_group_goes_to_the_context_window_fallback_before_sending(up: FakeUpstream) -> None:
    time = FakeTime()
    r = Router(
        [
            row(up, "small", "small-model", info={"max_input_tokens": 50}),
            row(up, "large", "large-model", info={"max_input_tokens": 100_000}),
        ],
        context_window_fallbacks={"small": ["large"]},
        clock=time.clock,
        sleep=time.sleep,
    )
    # about 4 characters per token: 1000 characters do not fit 50 tokens
    _, route = run(r.chat(chat_request("small", "x" * 1000)))
    assert route.group == "large" and route.attempts == 1
    assert models_called(up) == ["large-model"]
    # a short prompt stays where it was sent
    up.reset()
    assert run(r.chat(chat_request("small", "short")))[1].group == "small"


def test_inside_a_group_only_deployments_the_prompt_fits_are_chosen(up: FakeUpstream) -> None:
    r = Router(
        [
            row(up, "g", "short-model", order=1, info={"max_input_tokens": 10}),
            row(up, "g", "long-model", order=2, info={"max_input_tokens": 10_000}),
        ]
    )
    assert run(r.chat(chat_request("g", "y" * 400)))[1].model == "long-model"
    assert run(r.chat(chat_request("g", "tiny")))[1].model == "short-model"


def test_a_prompt_estimated_too_long_without_a_fallback_is_still_sent(up: FakeUpstream) -> None:
    """The estimate is rough: with nowhere else to go, the provider decides."""
    r = Router([row(up, "g", "model-a", info={"max_input_tokens": 5})])
    assert run(r.chat(chat_request("g", "z" * 400)))[1].model == "model-a"


def test_a_content_policy_refusal_moves_to_the_content_policy_fallback(up: FakeUpstream) -> None:
    up.script(POLICY_ERROR, model="small-model")
    r = router(up, content_policy_fallbacks=[{"small": ["safe"]}], num_retries=3)
    _, route = run(r.chat(chat_request("small")))
    assert route.group == "safe" and route.provider == "anthropic"
    assert models_called(up) == ["small-model", "safe-model"]


def test_a_content_policy_refusal_without_its_fallback_fails_fast(up: FakeUpstream) -> None:
    up.script(POLICY_ERROR, model="small-model")
    r = router(up, fallbacks={"small": ["backup"]}, num_retries=3)
    with pytest.raises(ContentPolicyViolationError):
        run(r.chat(chat_request("small")))
    assert models_called(up) == ["small-model"]


def test_an_unknown_group_is_a_404_and_a_fallback_naming_none_is_skipped(up: FakeUpstream) -> None:
    up.script(Reply(status=500), model="small-model")
    r = router(up, fallbacks={"small": ["nowhere", "backup"]}, num_retries=0)
    assert run(r.chat(chat_request("small")))[1].group == "backup"
    with pytest.raises(NotFoundError, match="'nope' is not served here"):
        run(r.chat(chat_request("nope")))


def test_embeddings_fail_over_and_fall_back_too(up: FakeUpstream) -> None:
    up.script(Reply(status=500), model="emb-a")
    r = Router([row(up, "emb", "emb-a", order=1), row(up, "emb", "emb-b", order=2)], num_retries=0)
    resp, route = run(r.embed(ir.EmbeddingRequest(model="emb", input=["hello"])))
    assert route.model == "emb-b" and len(resp.data) == 1
    assert [q.path for q in up.requests] == ["/v1/embeddings"] * 2
