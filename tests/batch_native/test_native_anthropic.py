"""Anthropic's Message Batches driven over loopback: OpenAI chat lines run on Claude and come back as
OpenAI chat.completion bodies."""

from __future__ import annotations

import asyncio
import json

import pytest
from native_helpers import chat_line, collect, driver, poll_until_done

from llmswitch import errors
from llmswitch.batch.native import EMBEDDINGS_URL, BatchLine
from llmswitch.testing import FakeUpstream, Reply
from llmswitch.testing._batches import batches_of

MODEL = "claude-haiku-4-5"


def test_submit_poll_results() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            native = driver(f"anthropic/{MODEL}", up.anthropic_base)
            lines = [
                BatchLine("sys", "/v1/chat/completions", {"model": MODEL, "max_tokens": 50, "messages": [
                    {"role": "system", "content": "Be terse."}, {"role": "user", "content": "What is 2 + 2?"}]}),
                chat_line("not an anthropic id!", "Name the largest planet", MODEL, temperature=0.5),
            ]  # fmt: skip
            job = await native.submit(lines, completion_window="24h", metadata=None)
            assert job.provider == "anthropic" and job.job_id.startswith("msgbatch_")
            json.dumps(job.state)
            create = up.calls_for("/v1/messages/batches")[0]
            assert create.headers["x-api-key"] == "test-key" and create.headers["anthropic-version"] == "2023-06-01"
            requests = create.json["requests"]
            assert requests[0]["custom_id"] == "sys" and requests[1]["custom_id"] == "line-1"
            first = requests[0]["params"]
            assert first["model"] == MODEL and first["system"] == "Be terse." and first["max_tokens"] == 50
            assert requests[1]["params"]["temperature"] == 0.5 and "stream" not in requests[1]["params"]

            seen = await poll_until_done(native, job)
            assert seen[0].status == "in_progress" and (seen[0].total, seen[0].completed) == (2, 0)
            assert (seen[-1].status, seen[-1].completed, seen[-1].total) == ("completed", 2, 2)
            results = await collect(native, job)
        assert set(results) == {"sys", "not an anthropic id!"}
        body = results["not an anthropic id!"].body
        assert body["object"] == "chat.completion" and body["choices"][0]["finish_reason"] == "stop"
        assert body["choices"][0]["message"]["content"] == "Name the largest planet"  # the fake echoes
        usage = results["sys"].usage
        assert usage is not None and usage.input_tokens > 0 and usage.output_tokens > 0
        assert body["usage"]["prompt_tokens"] > 0

    asyncio.run(main())


def test_a_line_the_provider_rejects_and_results_url_off_host() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            up.script(
                Reply(status=400, message="messages: roles must alternate", error_type="invalid_request_error"),
                Reply(text="ok"),
            )
            native = driver(f"anthropic/{MODEL}", up.anthropic_base)
            job = await native.submit(
                [chat_line("a", "x", MODEL), chat_line("b", "y", MODEL)], completion_window="24h", metadata=None
            )
            final = (await poll_until_done(native, job))[-1]
            assert (final.status, final.completed, final.failed) == ("completed", 1, 1)
            # a results_url on another host is not followed (the key would go there): the documented path is
            job.state["results_url"] = "http://elsewhere.invalid/results"
            results = await collect(native, job)
            assert up.calls_for("/results")[0].path == f"/v1/messages/batches/{job.job_id}/results"
        assert results["b"].status_code == 200
        bad = results["a"]
        assert bad.status_code == 400 and bad.body["error"]["type"] == "invalid_request_error"
        assert "roles must alternate" in bad.body["error"]["message"] and bad.usage is None

    asyncio.run(main())


def test_a_job_that_expires() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            batches_of(up).expire_after = 0
            native = driver(f"anthropic/{MODEL}", up.anthropic_base)
            job = await native.submit(
                [chat_line("a", "x", MODEL), chat_line("b", "y", MODEL)], completion_window="24h", metadata=None
            )
            final = (await poll_until_done(native, job))[-1]
            assert (final.status, final.failed) == ("expired", 2)
            results = await collect(native, job)
        assert {k: (r.status_code, r.body["error"]["code"]) for k, r in results.items()} == {
            "a": (408, "batch_expired"),
            "b": (408, "batch_expired"),
        }

    asyncio.run(main())


def test_cancel() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            batches_of(up).polls_to_finish = 5
            native = driver(f"anthropic/{MODEL}", up.anthropic_base)
            job = await native.submit([chat_line("a", "x", MODEL)], completion_window="24h", metadata=None)
            await native.cancel(job)
            assert up.calls_for("/cancel")[0].path == f"/v1/messages/batches/{job.job_id}/cancel"
            final = (await poll_until_done(native, job))[-1]
            assert final.status == "cancelled"
            results = await collect(native, job)
        assert results["a"].status_code == 499 and results["a"].body["error"]["code"] == "batch_cancelled"

    asyncio.run(main())


def test_embeddings_and_untranslatable_lines_are_refused_before_sending() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            native = driver(f"anthropic/{MODEL}", up.anthropic_base)
            with pytest.raises(errors.BadRequestError, match=r"line 2 \(custom_id 'e'\).*chat lines only") as emb:
                await native.submit(
                    [chat_line("a", "x", MODEL), BatchLine("e", EMBEDDINGS_URL, {"model": MODEL, "input": "x"})],
                    completion_window="24h",
                    metadata=None,
                )
            assert emb.value.status_code == 400
            with pytest.raises(errors.BadRequestError, match=r"line 1 \(custom_id 'a'\)"):
                await native.submit([chat_line("a", "x", MODEL, n=3)], completion_window="24h", metadata=None)
            # a parameter Claude cannot take is refused as for a single call, naming the line
            with pytest.raises(errors.UnsupportedParamsError, match=r"line 1 .*seed"):
                await native.submit([chat_line("a", "x", MODEL, seed=3)], completion_window="24h", metadata=None)
            assert up.requests == []
            # ... and dropped when the line says drop_params, which is never sent
            await native.submit(
                [chat_line("a", "x", MODEL, seed=3, drop_params=True)], completion_window="24h", metadata=None
            )
            params = up.calls_for("/v1/messages/batches")[0].json["requests"][0]["params"]
            assert "seed" not in params and "drop_params" not in params

    asyncio.run(main())


def test_provider_errors_are_classified() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            store = batches_of(up)
            store.api_key = "right"
            native = driver(f"anthropic/{MODEL}", up.anthropic_base, api_key="wrong")
            with pytest.raises(errors.AuthenticationError):
                await native.submit([chat_line("a", "x", MODEL)], completion_window="24h", metadata=None)
            native = driver(f"anthropic/{MODEL}", up.anthropic_base, api_key="right")
            store.faults.append(Reply(status=429, retry_after=3, error_type="rate_limit_error"))
            with pytest.raises(errors.RateLimitError) as caught:
                await native.submit([chat_line("a", "x", MODEL)], completion_window="24h", metadata=None)
            assert caught.value.retry_after == 3
            store.faults.append(Reply(status=529, error_type="overloaded_error", message="Overloaded"))
            with pytest.raises(errors.ServiceUnavailableError):
                await native.submit([chat_line("a", "x", MODEL)], completion_window="24h", metadata=None)
            # the provider refusing the whole batch for one of its requests: a 400, its words kept
            store.faults.append(Reply(status=400, error_type="invalid_request_error",
                                      message="requests.0.params.max_tokens: Input should be less than 64001"))  # fmt: skip
            with pytest.raises(errors.BadRequestError, match=r"requests\.0\.params\.max_tokens") as bad:
                await native.submit([chat_line("a", "x", MODEL)], completion_window="24h", metadata=None)
            assert bad.value.status_code == 400 and bad.value.provider == "anthropic"

    asyncio.run(main())
