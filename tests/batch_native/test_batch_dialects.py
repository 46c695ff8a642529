"""The batch dialects on recorded and documented shapes: OpenAI batch lines, Anthropic Message Batches
results, Gemini batch operations, each translated to OpenAI's batch-output form."""

from __future__ import annotations

import doctest
import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from llmswitch.dialects import batch_anthropic, batch_gemini, batch_openai
from llmswitch.errors import BadRequestError

RECORDED = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "recorded"


def recorded(name: str) -> dict[str, Any]:
    fx: dict[str, Any] = json.loads((RECORDED / f"{name}.json").read_text())
    return fx


def recorded_body(name: str) -> str:
    return str(recorded(name)["response"]["body_text"])


@pytest.mark.parametrize(
    "name",
    ["llmswitch.dialects.batch_openai", "llmswitch.dialects.batch_anthropic", "llmswitch.dialects.batch_gemini"],
)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0


# ---------------------------------------------------------------- OpenAI


def test_openai_input_file_matches_the_recorded_upload_lines() -> None:
    upload = recorded("openai/batch_file_upload")["request"]["body"]
    sent = [json.loads(line) for line in upload.splitlines() if line.startswith("{")]
    ours = batch_openai.encode_input_file(
        batch_openai.encode_input_line(line["custom_id"], line["url"], {**line["body"], "stream": True})
        for line in sent
    )
    assert [json.loads(line) for line in ours.splitlines()] == sent


def test_multipart_carries_purpose_and_file() -> None:
    ctype, body = batch_openai.encode_multipart(
        {"purpose": "batch"}, filename="batch.jsonl", content=b'{"a":1}\n', boundary="b0undary"
    )
    assert ctype == "multipart/form-data; boundary=b0undary"
    assert b'name="purpose"\r\n\r\nbatch\r\n' in body
    assert b'filename="batch.jsonl"' in body and b'{"a":1}\n\r\n--b0undary--\r\n' in body


def test_openai_batch_objects_recorded() -> None:
    created = batch_openai.decode_batch(json.loads(recorded_body("openai/batch_create")))
    assert created.status == "in_progress" and created.total == 0
    done = batch_openai.decode_batch(json.loads(recorded_body("openai/batch_retrieve_completed")))
    assert done == batch_openai.BatchState("completed", 2, 0, 2, None)


def test_openai_failed_batch_names_the_line() -> None:
    batch = {
        "status": "failed",
        "errors": {"object": "list", "data": [{"code": "invalid_json", "message": "bad JSON", "line": 3}]},
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
    }
    assert batch_openai.decode_batch(batch).error == "line 3: bad JSON"


def test_openai_output_lines_recorded() -> None:
    # the recorded output is of /v1/responses lines: the body passes through unchanged, usage is not chat's
    for raw in recorded_body("openai/batch_output_file_content").splitlines():
        answer = batch_openai.decode_output_line(json.loads(raw), url="/v1/responses")
        assert answer.status_code == 200 and answer.body["object"] == "response"


@pytest.mark.parametrize(
    ("line", "status", "code"),
    [
        (
            {"custom_id": "a", "response": None, "error": {"code": "batch_expired", "message": "late"}},
            408,
            "batch_expired",
        ),
        (
            {"custom_id": "a", "response": None, "error": {"code": "batch_cancelled", "message": "x"}},
            499,
            "batch_cancelled",
        ),
        (
            {
                "custom_id": "a",
                "response": {"status_code": 400, "body": {"error": {"message": "bad", "code": "invalid_value"}}},
                "error": None,
            },
            400,
            "invalid_value",
        ),
    ],
)
def test_openai_error_lines(line: dict[str, Any], status: int, code: str) -> None:
    answer = batch_openai.decode_output_line(line, url="/v1/chat/completions")
    assert (answer.custom_id, answer.status_code, answer.body["error"]["code"], answer.usage) == (
        "a",
        status,
        code,
        None,
    )


def test_output_line_round_trip() -> None:
    chat = {"id": "c", "object": "chat.completion", "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
    line = {
        "id": "l",
        "custom_id": "x",
        "response": {"status_code": 200, "request_id": "r", "body": chat},
        "error": None,
    }
    answer = batch_openai.decode_output_line(line, url="/v1/chat/completions")
    assert answer.usage is not None and (answer.usage.input_tokens, answer.usage.output_tokens) == (3, 2)
    assert batch_openai.encode_output_line(answer, line_id="l", request_id="r") == line
    expired = batch_openai.not_run("y", "expired")
    assert batch_openai.encode_output_line(expired, line_id="m", request_id="r")["response"] is None


def test_embedding_usage() -> None:
    line = {
        "custom_id": "e",
        "response": {"status_code": 200, "body": {"object": "list", "usage": {"prompt_tokens": 7}}},
    }
    usage = batch_openai.decode_output_line(line, url="/v1/embeddings").usage
    assert usage is not None and usage.input_tokens == 7


# ---------------------------------------------------------------- Anthropic


def test_anthropic_requests_match_the_recorded_create() -> None:
    sent = recorded("anthropic/message_batch_create")["request"]["body"]["requests"]
    lines = [
        {"model": "claude-haiku-4-5", "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "What is 2 + 2?"}]},
        {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "Name the largest planet in our solar system. One word."}]},
    ]  # fmt: skip
    ours = [
        batch_anthropic.encode_request(str(i), batch_anthropic.decode_line(body), model="claude-haiku-4-5")
        for i, body in enumerate(lines)
    ]
    for mine, theirs in zip(ours, sent, strict=True):
        assert mine["custom_id"] == theirs["custom_id"]
        assert mine["params"]["model"] == theirs["params"]["model"]
        assert "stream" not in mine["params"]
        text = mine["params"]["messages"][0]["content"]
        want = theirs["params"]["messages"][0]["content"][0]["text"]
        assert (text if isinstance(text, str) else text[0]["text"]) == want
    assert ours[0]["params"]["system"] == "Be terse."


def test_anthropic_recorded_batch_and_results() -> None:
    created = batch_anthropic.decode_batch(json.loads(recorded_body("anthropic/message_batch_create")))
    assert created == batch_openai.BatchState("in_progress", 0, 0, 2, None)
    answers = [
        batch_anthropic.decode_result_line(json.loads(raw), created=1700000000)
        for raw in recorded_body("anthropic/message_batch_results").splitlines()
        if raw.strip()
    ]
    assert [(a.custom_id, a.status_code) for a in answers] == [("0", 200), ("1", 200)]
    body = answers[1].body
    assert body["object"] == "chat.completion" and body["created"] == 1700000000
    assert body["choices"][0]["message"]["content"] == "Jupiter"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["prompt_tokens"] == 19 and body["usage"]["completion_tokens"] == 4
    assert answers[1].usage is not None and answers[1].usage.input_tokens == 19


@pytest.mark.parametrize(
    ("result", "status", "code_or_type"),
    [
        (
            {"type": "errored", "error": {"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: too big"}}},
            400,
            "invalid_request_error",
        ),
        ({"type": "errored", "error": {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}}, 529, "server_error"),
        ({"type": "canceled"}, 499, "batch_cancelled"),
        ({"type": "expired"}, 408, "batch_expired"),
    ],
)  # fmt: skip
def test_anthropic_failed_results(result: dict[str, Any], status: int, code_or_type: str) -> None:
    answer = batch_anthropic.decode_result_line({"custom_id": "k", "result": result}, created=1)
    err = answer.body["error"]
    assert answer.status_code == status and code_or_type in (err["code"], err["type"])
    assert answer.usage is None


def test_anthropic_batch_outcomes() -> None:
    def batch(**counts: int) -> dict[str, Any]:
        base = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        return {"processing_status": "ended", "request_counts": base | counts}

    assert batch_anthropic.decode_batch(batch(succeeded=1, errored=1)).status == "completed"
    assert batch_anthropic.decode_batch(batch(expired=2)).status == "expired"
    assert batch_anthropic.decode_batch(batch(succeeded=3, expired=1)) == batch_openai.BatchState(
        "expired", 3, 1, 4, None
    )
    cancelled = batch(succeeded=1, canceled=1) | {"cancel_initiated_at": "2026-01-01T00:00:00Z"}
    assert batch_anthropic.decode_batch(cancelled) == batch_openai.BatchState("cancelled", 1, 1, 2, None)


def test_anthropic_native_ids_are_valid_and_unique() -> None:
    ids = batch_anthropic.native_ids(["ok", "has space", "line-1", "x" * 65, "ok"])
    assert ids[0] == "ok" and ids[2] == "line-1"
    assert len(set(ids)) == 5 and all(batch_anthropic._CUSTOM_ID.match(i) for i in ids)


def test_anthropic_refuses_what_it_cannot_take() -> None:
    with pytest.raises(BadRequestError):
        batch_anthropic.encode_request(
            "a", batch_anthropic.decode_line({"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}], "n": 2}),
            model="claude-haiku-4-5",
        )  # fmt: skip


# ---------------------------------------------------------------- Gemini


def test_gemini_recorded_batch_done() -> None:
    op = json.loads(recorded_body("gemini/batch_generate_content_done"))
    state = batch_gemini.decode_batch(op)
    assert state == batch_openai.BatchState("completed", 2, 0, 2, None)
    items = batch_gemini.inlined_responses(op)
    answers = [
        batch_gemini.decode_inlined_response(it, custom_id=batch_gemini.custom_id_of(it) or "?", created=5)
        for it in items
    ]
    assert [(a.custom_id, a.status_code) for a in answers] == [("0", 200), ("1", 200)]
    body = answers[0].body
    assert body["choices"][0]["message"]["content"] == "4" and body["created"] == 5
    # thinking tokens count as output (normal form), as in a single call
    assert answers[0].usage is not None and answers[0].usage.output_tokens == 1 + 43
    assert body["usage"]["prompt_tokens"] == 13


def test_gemini_request_and_create_body() -> None:
    req = batch_gemini.decode_line(
        {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "2+2?"}], "temperature": 0}
    )
    item = batch_gemini.encode_request("q1", req, model="gemini-2.5-flash")
    assert item["metadata"] == {"custom_id": "q1"}
    assert item["request"]["contents"] == [{"role": "user", "parts": [{"text": "2+2?"}]}]
    assert item["request"]["generationConfig"]["temperature"] == 0
    body = batch_gemini.encode_create([item], display_name="n")
    assert body["batch"]["inputConfig"]["requests"]["requests"] == [item]


@pytest.mark.parametrize(
    ("error", "status"),
    [({"code": 3, "message": "bad", "status": "INVALID_ARGUMENT"}, 400), ({"code": 8, "message": "quota"}, 429), ({"code": 400, "message": "bad"}, 400)],
)  # fmt: skip
def test_gemini_line_errors(error: dict[str, Any], status: int) -> None:
    answer = batch_gemini.decode_inlined_response({"error": error, "metadata": {"key": "z"}}, custom_id="z", created=0)
    assert answer.status_code == status and answer.body["error"]["message"].endswith(error["message"])


@pytest.mark.parametrize(
    ("state", "status"),
    [("BATCH_STATE_PENDING", "in_progress"), ("JOB_STATE_RUNNING", "in_progress"), ("BATCH_STATE_FAILED", "failed"),
     ("BATCH_STATE_CANCELLED", "cancelled"), ("BATCH_STATE_EXPIRED", "expired"), ("BATCH_STATE_SUCCEEDED", "completed")],
)  # fmt: skip
def test_gemini_states(state: str, status: str) -> None:
    assert batch_gemini.decode_batch({"name": "batches/x", "metadata": {"state": state}}).status == status
