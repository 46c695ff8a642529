"""A finished batch's output and error files, written from its lines in the store.

Each line is written once, whatever happened to the instances that ran it: the store keeps one answer
per line. The files' ids follow from the batch's, so an instance killed while writing them leaves
nothing behind that the next attempt does not overwrite.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from llmswitch.batch.files import FileBox
from llmswitch.dialects._json import dumps, loads
from llmswitch.store.batch_records import BatchRecord, DoneLine

PAGE = 1000

_UNFINISHED = {
    "cancelled": ("batch_cancelled", "This request could not be executed before the batch was cancelled."),
    "expired": ("batch_expired", "This request could not be executed before the completion window expired."),
}


def output_ids(batch_id: str) -> tuple[str, str]:
    return f"file-{batch_id}-output", f"file-{batch_id}-errors"


def openai_entry(batch: BatchRecord, line: DoneLine, ending: str) -> tuple[bytes, bool] | None:
    """The line's entry in OpenAI's batch output form, and whether it goes to the error file."""
    entry: dict[str, Any] = {"id": f"batch_req_{batch.id.removeprefix('batch_')}_{line.line_no}"}
    entry["custom_id"] = line.custom_id
    if line.state == "done" and line.response is not None:
        entry["response"] = loads(line.response)
        entry["error"] = None
        return dumps(entry) + b"\n", bool(line.failed)
    code, message = _UNFINISHED.get(ending, ("batch_failed", "This request was not executed."))
    entry["response"] = None
    entry["error"] = {"code": code, "message": message}
    return dumps(entry) + b"\n", True


class Written(NamedTuple):
    output_file_id: str | None
    error_file_id: str | None
    completed: int
    failed: int
    usage: dict[str, Any]


def add_usage(total: dict[str, int], body: Any) -> None:
    """Add an answer's ``usage`` (chat or embeddings) to a batch's totals, in OpenAI's batch ``usage`` terms."""
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    total["input"] += prompt
    total["output"] += completion
    total["cached"] += cached
    total["reasoning"] += reasoning


def usage_object(total: dict[str, int]) -> dict[str, Any]:
    return {
        "input_tokens": total["input"],
        "output_tokens": total["output"],
        "total_tokens": total["input"] + total["output"],
        "input_tokens_details": {"cached_tokens": total["cached"]},
        "output_tokens_details": {"reasoning_tokens": total["reasoning"]},
    }


async def write_outputs(store: Any, files: FileBox, batch: BatchRecord, ending: str) -> Written:
    """Write the output and error files of ``batch`` (ending as ``ending``): their ids (``None``: no such
    lines), the lines answered and failed and their tokens, counted from the store (exact, however often
    this runs)."""
    ok: list[bytes] = []
    bad: list[bytes] = []
    answered = failed = 0
    tokens = {"input": 0, "output": 0, "cached": 0, "reasoning": 0}
    after = 0
    while True:
        page = await store.batch_lines(batch.id, after, PAGE)
        if not page:
            break
        for line in page:
            if line.state == "done":
                answered += 1
                failed += bool(line.failed)
                if not line.failed and line.response is not None:
                    add_usage(tokens, loads(line.response).get("body"))
            written = openai_entry(batch, line, ending)
            if written is not None:
                (bad if written[1] else ok).append(written[0])
        after = page[-1].line_no
    out_id, err_id = output_ids(batch.id)
    output = error = None
    if ok or not bad:
        output = (
            await files.save(
                owner=batch.owner,
                purpose="batch_output",
                filename=f"{batch.id}_output.jsonl",
                content=b"".join(ok),
                file_id=out_id,
            )
        ).id
    if bad:
        error = (
            await files.save(
                owner=batch.owner,
                purpose="batch_output",
                filename=f"{batch.id}_error.jsonl",
                content=b"".join(bad),
                file_id=err_id,
            )
        ).id
    return Written(output, error, answered - failed, failed, usage_object(tokens))
