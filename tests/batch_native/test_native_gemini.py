"""Gemini's batch mode driven over loopback (inlined requests and responses), and the recorded finished
batch read through the driver."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp import web
from native_helpers import chat_line, collect, driver, poll_until_done

from llmswitch import errors
from llmswitch.batch.native import EMBEDDINGS_URL, BatchLine, NativeJob
from llmswitch.testing import FakeUpstream, Reply
from llmswitch.testing._batches import batches_of

MODEL = "gemini-2.5-flash"
RECORDED = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "recorded" / "gemini"


def test_submit_poll_results() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            native = driver(f"gemini/{MODEL}", up.gemini_base)
            lines = [
                BatchLine("a", "/v1/chat/completions", {"model": MODEL, "messages": [
                    {"role": "system", "content": "Be terse."}, {"role": "user", "content": "What is 2 + 2?"}],
                    "max_tokens": 20}),
                chat_line("b/2", "Name a planet", MODEL),
            ]  # fmt: skip
            job = await native.submit(lines, completion_window="24h", metadata={"display_name": "nightly"})
            json.dumps(job.state)
            assert job.provider == "gemini" and job.state["name"] == f"batches/{job.job_id}"
            create = up.requests[0]
            assert create.path == f"/v1beta/models/{MODEL}:batchGenerateContent"
            assert create.headers["x-goog-api-key"] == "test-key" and "key" not in create.query
            batch = create.json["batch"]
            assert batch["displayName"] == "nightly"
            items = batch["inputConfig"]["requests"]["requests"]
            assert [it["metadata"] for it in items] == [{"custom_id": "a"}, {"custom_id": "b/2"}]
            assert items[0]["request"]["systemInstruction"]["parts"] == [{"text": "Be terse."}]
            assert items[0]["request"]["generationConfig"]["maxOutputTokens"] == 20

            seen = await poll_until_done(native, job)
            assert up.requests[1].path == f"/v1beta/batches/{job.job_id}"
            assert seen[0].status == "in_progress" and (seen[-1].status, seen[-1].completed, seen[-1].total) == (
                "completed",
                2,
                2,
            )
            results = await collect(native, job)
        assert results["b/2"].status_code == 200
        body = results["a"].body
        assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"] == "What is 2 + 2?"
        assert results["a"].usage is not None and results["a"].usage.input_tokens > 0

    asyncio.run(main())


def test_a_line_the_provider_rejects() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            up.script(Reply(text="4"), Reply(status=400, message="Request contains an invalid argument."))
            native = driver(f"gemini/{MODEL}", up.gemini_base)
            job = await native.submit(
                [chat_line("a", "x", MODEL), chat_line("b", "y", MODEL)], completion_window="24h", metadata=None
            )
            final = (await poll_until_done(native, job))[-1]
            assert (final.completed, final.failed) == (1, 1)
            results = await collect(native, job)
        assert results["a"].body["choices"][0]["message"]["content"] == "4"
        bad = results["b"]
        assert bad.status_code == 400 and "invalid argument" in bad.body["error"]["message"] and bad.usage is None

    asyncio.run(main())


def test_expired_and_cancelled() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            store = batches_of(up)
            store.expire_after = 1
            native = driver(f"gemini/{MODEL}", up.gemini_base)
            job = await native.submit(
                [chat_line("a", "x", MODEL), chat_line("b", "y", MODEL)], completion_window="24h", metadata=None
            )
            assert (await poll_until_done(native, job))[-1].status == "expired"
            results = await collect(native, job)
            assert results["a"].status_code == 200 and results["b"].body["error"]["code"] == "batch_expired"

            store.expire_after, store.polls_to_finish = None, 5
            job = await native.submit([chat_line("c", "x", MODEL)], completion_window="24h", metadata=None)
            await native.cancel(job)
            assert up.requests[-1].path == f"/v1beta/batches/{job.job_id}:cancel"
            assert (await poll_until_done(native, job))[-1].status == "cancelled"
            results = await collect(native, job)
            assert results["c"].status_code == 499 and results["c"].body["error"]["code"] == "batch_cancelled"

    asyncio.run(main())


def test_refused_before_sending() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            native = driver(f"gemini/{MODEL}", up.gemini_base)
            with pytest.raises(errors.BadRequestError, match=r"line 1 \(custom_id 'e'\).*chat lines only"):
                await native.submit(
                    [BatchLine("e", EMBEDDINGS_URL, {"model": MODEL, "input": "x"})],
                    completion_window="24h",
                    metadata=None,
                )
            with pytest.raises(errors.BadRequestError, match="one model"):
                await native.submit(
                    [chat_line("a", "x", MODEL), chat_line("b", "x", "gemini-2.5-pro")],
                    completion_window="24h",
                    metadata=None,
                )
            huge = [chat_line(f"l{i}", "x" * 1_000_000, MODEL) for i in range(21)]
            with pytest.raises(errors.BadRequestError, match="20 MB"):
                await native.submit(huge, completion_window="24h", metadata=None)
            assert up.requests == []

    asyncio.run(main())


def test_provider_errors_are_classified() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            store = batches_of(up)
            store.api_key = "right"
            with pytest.raises(errors.AuthenticationError):
                await driver(f"gemini/{MODEL}", up.gemini_base, api_key="wrong").submit(
                    [chat_line("a", "x", MODEL)], completion_window="24h", metadata=None
                )
            native = driver(f"gemini/{MODEL}", up.gemini_base, api_key="right")
            store.faults.append(Reply(status=429, retry_after=2, message="Resource has been exhausted"))
            with pytest.raises(errors.RateLimitError) as caught:
                await native.submit([chat_line("a", "x", MODEL)], completion_window="24h", metadata=None)
            assert caught.value.retry_after == 2
            with pytest.raises(errors.NotFoundError):
                await native.poll(NativeJob("gemini", "nosuch", {"name": "batches/nosuch", "custom_ids": ["a"]}))

    asyncio.run(main())


def test_the_recorded_finished_batch_through_the_driver() -> None:
    """The recorded ``GET batches/{id}`` (done, inlined responses) served over loopback."""
    fx = json.loads((RECORDED / "batch_generate_content_done.json").read_text())
    name = json.loads(fx["response"]["body_text"])["name"]

    async def main() -> None:
        seen: list[str] = []

        async def handle(request: web.Request) -> web.Response:
            seen.append(request.path)
            return web.Response(body=fx["response"]["body_text"].encode(), content_type="application/json")

        app = web.Application()
        app.router.add_get("/v1beta/batches/{id}", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            native = driver(f"gemini/{MODEL}", f"http://127.0.0.1:{port}")
            job = NativeJob("gemini", name.partition("/")[2], {"name": name, "custom_ids": ["0", "1"]})
            status = await native.poll(job)
            results = await collect(native, job)
        finally:
            await runner.cleanup()
        assert seen[0] == f"/v1beta/{name}"
        assert (status.status, status.completed, status.total) == ("completed", 2, 2)
        assert {k: r.body["choices"][0]["message"]["content"] for k, r in results.items()} == {"0": "4", "1": "Jupiter"}
        assert results["1"].usage is not None and results["1"].usage.output_tokens == 1 + 53

    asyncio.run(main())
