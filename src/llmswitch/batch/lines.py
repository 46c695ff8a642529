"""An input file's lines, checked before a batch is accepted: every line, every field, named by line number.

OpenAI's batch input is JSONL, one request a line::

    {"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "gpt-4o", ...}}

A line is accepted only if its body is a request the gateway would take on that endpoint, so a batch
never fails half way for a mistake that could be seen at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmswitch.dialects._json import dumps, loads
from llmswitch.errors import APIError, BadRequestError, LLMSwitchError

ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings")


@dataclass
class ParsedLines:
    """Accepted lines as ``(custom_id, body JSON)``, the model groups they name, and token estimates."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    output_tokens: int = 0


def line_error(line: int | None, param: str, message: str) -> BadRequestError:
    """A 400 naming the line (1-based) and the field, in OpenAI's error shape."""
    where = f"line {line}: " if line is not None else ""
    return BadRequestError(
        f"{where}invalid value for '{param}': {message}",
        status_code=400,
        provider="llmswitch",
        param=param if line is None else f"line {line}: {param}",
        error_type="invalid_request_error",
    )


def check_body(url: str, body: Any, line: int | None, out: ParsedLines) -> None:
    """Decode ``body`` as the gateway decodes a request to ``url``; a 400 naming the field if it is wrong."""
    from llmswitch.server.estimates import estimate_embedding_tokens, estimate_prompt_tokens

    prefix = "body." if line is not None else "params."
    try:
        if url == "/v1/embeddings":
            from llmswitch.server.embeddings import decode_embedding_request

            emb = decode_embedding_request(body)
            out.prompt_tokens += estimate_embedding_tokens(emb)
            model = emb.model
        else:
            from llmswitch.server import faces

            face = faces.ANTHROPIC if url == "/v1/messages" else faces.OPENAI
            req = face.decode_request(body)
            if req.stream:
                raise line_error(line, prefix + "stream", "a batch line cannot stream")
            out.prompt_tokens += estimate_prompt_tokens(req)
            out.output_tokens += req.max_tokens or 0
            model = req.model
    except BadRequestError as exc:
        if exc.param and exc.param.startswith("line "):
            raise
        raise line_error(line, prefix + (exc.param or "body"), _reason(exc)) from exc
    except (APIError, LLMSwitchError) as exc:
        raise line_error(line, prefix.rstrip("."), str(exc)) from exc
    if model not in out.models:
        out.models.append(model)


def _reason(exc: APIError) -> str:
    message = str(getattr(exc, "message", None) or exc)
    # "Invalid value for 'x': why" -> "why": the field is named once, with its line
    head, sep, tail = message.partition("': ")
    return tail if sep and head.lower().startswith("invalid value for '") else message


def parse_openai_input(content: bytes, endpoint: str, *, max_lines: int) -> ParsedLines:
    """Every line of an OpenAI batch input file, checked; a 400 for the first line that is wrong."""
    out = ParsedLines()
    seen: set[str] = set()
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise line_error(text_line(content, exc.start), "file", "the file is not UTF-8") from exc
    number = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        if len(out.lines) >= max_lines:
            raise line_error(number, "file", f"a batch holds at most {max_lines} requests")
        try:
            item = loads(raw)
        except Exception as exc:
            raise line_error(number, "line", f"not valid JSON ({exc})") from exc
        if not isinstance(item, dict):
            raise line_error(number, "line", "each line must be a JSON object")
        custom_id = item.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            raise line_error(number, "custom_id", "a non-empty string is required")
        if custom_id in seen:
            raise line_error(number, "custom_id", f"{custom_id!r} is used by an earlier line; each must be unique")
        seen.add(custom_id)
        if item.get("method", "POST") != "POST":
            raise line_error(number, "method", "must be 'POST'")
        url = item.get("url")
        if url != endpoint:
            raise line_error(number, "url", f"must be the batch's endpoint {endpoint!r}, not {url!r}")
        body = item.get("body")
        if not isinstance(body, dict):
            raise line_error(number, "body", "a JSON object is required")
        check_body(endpoint, body, number, out)
        out.lines.append((custom_id, dumps(body).decode()))
    if not out.lines:
        raise line_error(None, "input_file_id", "the input file has no requests")
    return out


def text_line(content: bytes, offset: int) -> int:
    return content.count(b"\n", 0, offset) + 1
