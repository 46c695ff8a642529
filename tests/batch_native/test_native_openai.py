"""OpenAI's and Azure's Batch API driven over loopback: the fake plays the Files and Batch APIs."""

from __future__ import annotations

import asyncio
import json

import pytest
from native_helpers import chat_line, collect, deployment, driver, poll_until_done

from llmswitch import errors
from llmswitch.batch.native import EMBEDDINGS_URL, BatchLine, JobNotEnded, native_for
from llmswitch.router.deployments import build_targets
from llmswitch.testing import FakeUpstream, Reply
from llmswitch.testing._batches import batches_of

MODEL = "gpt-4o-mini"


def test_submit_poll_results_chat_and_embeddings() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            native = driver(f"openai/{MODEL}", up.openai_base)
            lines = [
                chat_line("q-1", "What is 2+2?", MODEL, stream=True, drop_params=True),
                chat_line("q 2/x", "Name a planet", MODEL),
                BatchLine("e-1", EMBEDDINGS_URL, {"model": MODEL, "input": ["hello", "world"]}),
            ]
            job = await native.submit(lines, completion_window="24h", metadata={"team": "a"})
            assert job.provider == "openai" and job.job_id.startswith("batch_")
            json.dumps(job.state)  # the core stores it as JSON

            # what went over the wire: a multipart upload per endpoint, lines without gateway settings
            uploads = up.calls_for("/files")
            assert len(uploads) == 2 and all(r.headers["authorization"] == "Bearer test-key" for r in uploads)
            files = batches_of(up).files
            chat_file = [json.loads(x) for x in files[job.state["parts"][0]["input_file_id"]][2].splitlines()]
            assert chat_file[0] == {"custom_id": "q-1", "method": "POST", "url": "/v1/chat/completions",
                                    "body": {"model": MODEL, "messages": [{"role": "user", "content": "What is 2+2?"}]}}  # fmt: skip
            creates = up.calls_for("/batches")
            assert creates[0].json["endpoint"] == "/v1/chat/completions" and creates[0].json["metadata"] == {
                "team": "a"
            }
            assert creates[1].json["endpoint"] == "/v1/embeddings"

            seen = await poll_until_done(native, job)
            assert seen[0].status == "in_progress" and seen[-1].status == "completed"
            assert (seen[-1].completed, seen[-1].failed, seen[-1].total) == (3, 0, 3)
            results = await collect(native, job)
        assert set(results) == {"q-1", "q 2/x", "e-1"}
        chat = results["q-1"]
        assert chat.status_code == 200 and chat.body["object"] == "chat.completion"
        assert chat.body["choices"][0]["message"]["content"] == "What is 2+2?"  # the fake echoes
        assert chat.usage is not None and chat.usage.input_tokens > 0 and chat.usage.output_tokens > 0
        emb = results["e-1"]
        assert emb.status_code == 200 and len(emb.body["data"]) == 2
        assert emb.usage is not None and emb.usage.input_tokens > 0 and emb.usage.output_tokens == 0

    asyncio.run(main())


def test_a_line_the_provider_rejects_comes_back_as_its_error() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            up.script(Reply(text="fine"), Reply(status=400, message="messages[0]: bad content", code="invalid_value"))
            native = driver(f"openai/{MODEL}", up.openai_base)
            job = await native.submit(
                [chat_line("ok", "hi", MODEL), chat_line("bad", "hi", MODEL)], completion_window="24h", metadata=None
            )
            final = (await poll_until_done(native, job))[-1]
            assert (final.status, final.completed, final.failed) == ("completed", 1, 1)
            results = await collect(native, job)
        assert results["ok"].status_code == 200 and results["ok"].body["choices"][0]["message"]["content"] == "fine"
        bad = results["bad"]
        assert bad.status_code == 400 and bad.usage is None
        assert bad.body["error"]["code"] == "invalid_value" and "bad content" in bad.body["error"]["message"]

    asyncio.run(main())


def test_a_batch_whose_file_fails_validation_fails_naming_the_line() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            native = driver(f"openai/{MODEL}", up.openai_base)
            # a line the provider's validation refuses (no messages): the whole batch fails
            lines = [chat_line("a", "hi", MODEL), BatchLine("b", "/v1/chat/completions", {"model": MODEL})]
            job = await native.submit(lines, completion_window="24h", metadata=None)
            final = (await poll_until_done(native, job))[-1]
            assert final.status == "failed" and final.error is not None and final.error.startswith("line 2:")
            results = await collect(native, job)
        assert {r.custom_id: (r.status_code, r.body["error"]["code"]) for r in results.values()} == {
            "a": (500, "batch_failed"),
            "b": (500, "batch_failed"),
        }

    asyncio.run(main())


def test_a_job_that_expires_answers_the_rest_expired() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            batches_of(up).expire_after = 1
            native = driver(f"openai/{MODEL}", up.openai_base)
            lines = [chat_line(f"l{i}", f"q{i}", MODEL) for i in range(3)]
            job = await native.submit(lines, completion_window="24h", metadata=None)
            final = (await poll_until_done(native, job))[-1]
            assert final.status == "expired"
            results = await collect(native, job)
        assert results["l0"].status_code == 200
        for cid in ("l1", "l2"):
            assert results[cid].status_code == 408 and results[cid].body["error"]["code"] == "batch_expired"

    asyncio.run(main())


def test_cancel() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            batches_of(up).polls_to_finish = 5
            native = driver(f"openai/{MODEL}", up.openai_base)
            job = await native.submit([chat_line("a", "hi", MODEL)], completion_window="24h", metadata=None)
            assert (await native.poll(job)).status == "in_progress"
            await native.cancel(job)
            assert up.calls_for("/cancel")[0].path == f"/v1/batches/{job.job_id}/cancel"
            final = (await poll_until_done(native, job))[-1]
            assert final.status == "cancelled"
            results = await collect(native, job)
        assert results["a"].status_code == 499 and results["a"].body["error"]["code"] == "batch_cancelled"

    asyncio.run(main())


def test_provider_errors_are_classified() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            store = batches_of(up)
            store.api_key = "right-key"
            with pytest.raises(errors.AuthenticationError):
                await driver(f"openai/{MODEL}", up.openai_base, api_key="wrong").submit(
                    [chat_line("a", "hi", MODEL)], completion_window="24h", metadata=None
                )
            native = driver(f"openai/{MODEL}", up.openai_base, api_key="right-key")
            store.faults.append(Reply(status=429, retry_after=7, message="Rate limit reached for batch queue"))
            with pytest.raises(errors.RateLimitError) as caught:
                await native.submit([chat_line("a", "hi", MODEL)], completion_window="24h", metadata=None)
            assert caught.value.retry_after == 7
            with pytest.raises(errors.BadRequestError) as bad:
                await native.submit([chat_line("a", "hi", MODEL)], completion_window="48h", metadata=None)
            assert bad.value.param == "completion_window"

    asyncio.run(main())


def test_lines_are_checked_before_anything_is_sent() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            native = driver(f"openai/{MODEL}", up.openai_base)
            with pytest.raises(errors.BadRequestError, match=r"line 2 \(custom_id 'a'\)"):
                await native.submit([chat_line("a", "x", MODEL)] * 2, completion_window="24h", metadata=None)
            with pytest.raises(errors.BadRequestError, match="line 1"):
                await native.submit(
                    [BatchLine("a", "/v1/completions", {"model": MODEL})], completion_window="24h", metadata=None
                )
            with pytest.raises(errors.BadRequestError, match="one model"):
                await native.submit(
                    [chat_line("a", "x", MODEL), chat_line("b", "x", "gpt-4o")], completion_window="24h", metadata=None
                )
            assert up.requests == []

    asyncio.run(main())


def test_azure_urls_key_and_line_urls() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            native = driver("azure/my-batch-deployment", up.url, api_version="2025-03-01-preview")
            job = await native.submit(
                [chat_line("a", "hi", "my-batch-deployment")], completion_window="24h", metadata=None
            )
            await poll_until_done(native, job)
            results = await collect(native, job)
            assert results["a"].status_code == 200
            paths = [(r.method, r.path, r.query.get("api-version")) for r in up.requests]
            assert paths[0] == ("POST", "/openai/files", "2025-03-01-preview")
            assert paths[1] == ("POST", "/openai/batches", "2025-03-01-preview")
            assert all(r.headers.get("api-key") == "test-key" and "authorization" not in r.headers for r in up.requests)
            created = up.calls_for("/openai/batches")[0].json
            assert created["endpoint"] == "/chat/completions"
            sent = json.loads(batches_of(up).files[created["input_file_id"]][2])
            assert sent["url"] == "/chat/completions" and sent["body"]["model"] == "my-batch-deployment"

    asyncio.run(main())


def test_azure_v1_base() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            native = driver("azure/dep", f"{up.url}/openai/v1")
            job = await native.submit([chat_line("a", "hi", "dep")], completion_window="24h", metadata=None)
            assert up.requests[0].path == "/openai/v1/files"
            assert up.calls_for("/batches")[0].json["endpoint"] == "/v1/chat/completions"
            await poll_until_done(native, job)
            assert (await collect(native, job))["a"].status_code == 200

    asyncio.run(main())


def test_providers_without_a_batch_api_are_gateway_run() -> None:
    assert native_for(deployment("groq/llama-3.3-70b-versatile", "http://127.0.0.1:9")) is None
    assert native_for(deployment("ollama/llama3", "http://127.0.0.1:9")) is None
    assert native_for(deployment("openai/gpt-4o", "http://127.0.0.1:9")) is not None
    # the config can keep a deployment with a batch API gateway-run
    row = {
        "model_name": "g",
        "litellm_params": {"model": "openai/gpt-4o", "api_key": "k"},
        "model_info": {"batch_mode": "gateway"},
    }
    assert native_for(build_targets([row])[0]) is None


def test_results_before_the_end_are_refused_and_deployment_params_apply() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            batches_of(up).polls_to_finish = 3
            native = driver(f"openai/{MODEL}", up.openai_base, temperature=0.1, max_tokens=9)
            job = await native.submit(
                [chat_line("a", "hi", MODEL, temperature=0.7)], completion_window="24h", metadata=None
            )
            with pytest.raises(JobNotEnded):
                await collect(native, job)
            sent = json.loads(batches_of(up).files[job.state["parts"][0]["input_file_id"]][2])
            # the deployment's parameters under the line's own, as for a single call
            assert sent["body"]["temperature"] == 0.7 and sent["body"]["max_tokens"] == 9
            await poll_until_done(native, job)
            assert (await collect(native, job))["a"].status_code == 200
            # the provider keeps the results: reading them again (after a restart) answers the same lines
            assert set(await collect(native, job)) == {"a"}

    asyncio.run(main())


def test_a_batch_over_the_providers_limits_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmswitch.dialects import batch_anthropic, batch_openai

    monkeypatch.setattr(batch_openai, "MAX_LINES", 2)
    monkeypatch.setattr(batch_anthropic, "MAX_BYTES", 100)

    async def main() -> None:
        async with FakeUpstream() as up:
            lines = [chat_line(f"l{i}", "x", MODEL) for i in range(3)]
            with pytest.raises(errors.BadRequestError, match="2 lines"):
                await driver(f"openai/{MODEL}", up.openai_base).submit(lines, completion_window="24h", metadata=None)
            with pytest.raises(errors.BadRequestError, match="256 MB"):
                await driver("anthropic/claude-haiku-4-5", up.anthropic_base).submit(
                    [chat_line("a", "x" * 200, "claude-haiku-4-5")], completion_window="24h", metadata=None
                )
            assert up.requests == []

    asyncio.run(main())
