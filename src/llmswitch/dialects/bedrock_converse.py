"""Amazon Bedrock's Converse API, as a client: IR requests to Converse bodies, answers and errors back.

One wire format for every model on Bedrock (docs.aws.amazon.com/bedrock/latest/APIReference/
API_runtime_Converse.html): ``messages`` of content blocks (``text``, ``image``, ``document``,
``toolUse``, ``toolResult``, ``reasoningContent``, ``cachePoint``), a top-level ``system`` list,
``inferenceConfig`` (``maxTokens``, ``temperature``, ``topP``, ``stopSequences``), ``toolConfig`` with
``toolSpec`` tools and a ``toolChoice``, and ``additionalModelRequestFields`` for what only the model
takes (``top_k``; Anthropic's ``thinking``). A caller's cache marker becomes a ``cachePoint`` after the
block it marks. Bedrock's own fields (``guardrailConfig``, ``performanceConfig``, ``requestMetadata``,
``promptVariables``, ``additionalModelResponseFieldPaths``) pass through as extras.

    >>> req = ir.Request(model="m", messages=[ir.Message(role="user", content=[ir.TextPart(text="Hi")])], max_tokens=5)
    >>> encode_request(req)
    {'messages': [{'role': 'user', 'content': [{'text': 'Hi'}]}], 'inferenceConfig': {'maxTokens': 5}}
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from llmswitch import ir
from llmswitch.dialects._json import dumps, invalid, loads, loads_lenient
from llmswitch.dialects.openai_errors import retry_after_from_headers
from llmswitch.errors import APIStatusError, error_for_status

#: Bedrock's own request fields, passed through when a caller sends them
EXTRA_KEYS = frozenset(
    (
        "guardrailConfig",
        "performanceConfig",
        "requestMetadata",
        "promptVariables",
        "additionalModelRequestFields",
        "additionalModelResponseFieldPaths",
    )
)

FINISH: dict[str, ir.FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}

#: the HTTP status each Bedrock exception is sent with (the type is in ``X-Amzn-Errortype``, or in a
#: stream's ``:exception-type`` header, camel-cased there)
STATUS_FOR_EXCEPTION: dict[str, int] = {
    "ValidationException": 400,
    "UnrecognizedClientException": 401,
    "InvalidSignatureException": 401,
    "ExpiredTokenException": 401,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408,
    "ThrottlingException": 429,
    "ServiceQuotaExceededException": 429,
    "ModelErrorException": 500,
    "InternalServerException": 500,
    "ModelStreamErrorException": 500,
    "ModelNotReadyException": 503,
    "ServiceUnavailableException": 503,
}

_IMAGE_FORMATS = frozenset(("png", "jpeg", "gif", "webp"))
_DOC_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}
_CACHE_POINT = {"cachePoint": {"type": "default"}}


# ---------------------------------------------------------------- request


def encode_request(req: ir.Request) -> dict[str, Any]:
    """The Converse body for ``req`` (the model is in the URL, not the body)."""
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for i, m in enumerate(req.messages):
        if m.role in ("system", "developer"):
            for j, p in enumerate(m.content):
                if isinstance(p, ir.TextPart):
                    system.append({"text": p.text})
                    if p.cache_control:
                        system.append(_CACHE_POINT)
                else:
                    raise invalid(f"messages[{i}].content[{j}]", "a system message on Bedrock takes text only")
            continue
        role = "assistant" if m.role == "assistant" else "user"
        blocks = [b for j, p in enumerate(m.content) for b in _blocks(p, f"messages[{i}].content[{j}]")]
        if not blocks:
            continue
        if messages and messages[-1]["role"] == role:
            # Converse alternates roles: a tool's results and the next user turn are one user message
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = system
    config: dict[str, Any] = {}
    if req.max_tokens is not None:
        config["maxTokens"] = req.max_tokens
    if req.temperature is not None:
        config["temperature"] = req.temperature
    if req.top_p is not None:
        config["topP"] = req.top_p
    if req.stop:
        config["stopSequences"] = list(req.stop)
    body["inferenceConfig"] = config
    tool_config = _tool_config(req)
    if tool_config is not None:
        body["toolConfig"] = tool_config
    more: dict[str, Any] = {}
    if req.top_k is not None:
        more["top_k"] = req.top_k
    if req.thinking_budget is not None and req.thinking_budget > 0:
        more["thinking"] = {"type": "enabled", "budget_tokens": req.thinking_budget}
    extra = req.extra or {}
    if more or "additionalModelRequestFields" in extra:
        given = extra.get("additionalModelRequestFields")
        body["additionalModelRequestFields"] = {**more, **(given if isinstance(given, dict) else {})}
    for key in EXTRA_KEYS - {"additionalModelRequestFields"}:
        if key in extra:
            body[key] = extra[key]
    return body


def _blocks(p: ir.Part, where: str) -> list[dict[str, Any]]:
    if isinstance(p, ir.TextPart):
        out: list[dict[str, Any]] = [{"text": p.text}] if p.text else []
    elif isinstance(p, ir.ImagePart):
        out = [_image(p, where)]
    elif isinstance(p, ir.FilePart):
        out = [_document(p, where)]
    elif isinstance(p, ir.ToolCallPart):
        args = loads_lenient(p.arguments or "{}")
        out = [{"toolUse": {"toolUseId": p.id, "name": p.name, "input": args if isinstance(args, dict) else {}}}]
    elif isinstance(p, ir.ToolResultPart):
        content: list[dict[str, Any]] = []
        if p.structured is not None:
            content.append({"json": p.structured})
        for k, c in enumerate(p.content):
            if isinstance(c, ir.TextPart):
                content.append({"text": c.text})
            elif isinstance(c, ir.ImagePart):
                content.append(_image(c, f"{where}.content[{k}]"))
            else:
                content.append(_document(c, f"{where}.content[{k}]"))
        result: dict[str, Any] = {"toolUseId": p.tool_call_id, "content": content or [{"text": ""}]}
        if p.is_error:
            result["status"] = "error"
        out = [{"toolResult": result}]
    elif isinstance(p, ir.ReasoningPart):
        if p.provider not in (None, "bedrock") or not p.signature:
            return []  # a signature means something only to the provider that made it
        out = [{"reasoningContent": {"reasoningText": {"text": p.text, "signature": p.signature}}}]
    elif isinstance(p, ir.RedactedReasoningPart):
        if p.provider not in (None, "bedrock"):
            return []
        out = [{"reasoningContent": {"redactedContent": p.data}}]
    elif isinstance(p, ir.ProviderPart):
        out = [dict(p.block)] if p.provider == "bedrock" else []
    else:  # pragma: no cover - every part type is above
        raise invalid(where, f"content of type {type(p).__name__} cannot be sent to Bedrock")
    if out and getattr(p, "cache_control", None):
        out.append(_CACHE_POINT)
    return out


def _image(p: ir.ImagePart, where: str) -> dict[str, Any]:
    if p.data is None:
        raise invalid(where, "Bedrock takes images as bytes (base64 data), not by URL")
    fmt = (p.media_type or "image/png").split("/", 1)[-1].lower().replace("jpg", "jpeg")
    if fmt not in _IMAGE_FORMATS:
        raise invalid(where, f"Bedrock takes png, jpeg, gif or webp images, not {p.media_type!r}")
    return {"image": {"format": fmt, "source": {"bytes": p.data}}}


def _document(p: ir.FilePart, where: str) -> dict[str, Any]:
    if p.data is None:
        raise invalid(where, "Bedrock takes documents as bytes (base64 data), not by URL or file id")
    fmt = _DOC_FORMATS.get((p.media_type or "application/pdf").lower())
    if fmt is None:
        raise invalid(where, f"Bedrock takes no documents of type {p.media_type!r}")
    # a document name: letters, digits, spaces, hyphens, parentheses and brackets only
    name = "".join(c for c in (p.filename or "document").rsplit(".", 1)[0] if c.isalnum() or c in " -()[]")
    doc: dict[str, Any] = {"format": fmt, "name": name.strip() or "document", "source": {"bytes": p.data}}
    if p.citations and p.citations.get("enabled"):
        doc["citations"] = {"enabled": True}
    return {"document": doc}


def _tool_config(req: ir.Request) -> dict[str, Any] | None:
    if not req.tools:
        return None
    tools: list[dict[str, Any]] = []
    for t in req.tools:
        if t.builtin is not None:
            raise invalid("tools", f"the built-in tool {t.name!r} is not available on Bedrock's Converse API")
        spec: dict[str, Any] = {"name": t.name, "inputSchema": {"json": t.parameters or {"type": "object"}}}
        if t.description:
            spec["description"] = t.description
        tools.append({"toolSpec": spec})
        if t.cache_control:
            tools.append(_CACHE_POINT)
    out: dict[str, Any] = {"tools": tools}
    tc = req.tool_choice
    if tc is not None:
        if tc.mode == "none":
            return None  # Converse has no "none": a request that may not call tools sends none
        if tc.mode == "required":
            out["toolChoice"] = {"any": {}}
        elif tc.mode == "tool" and tc.name:
            out["toolChoice"] = {"tool": {"name": tc.name}}
        else:
            out["toolChoice"] = {"auto": {}}
    return out


# ---------------------------------------------------------------- response


def decode_response(body: Mapping[str, Any], *, model: str = "") -> ir.Response:
    """A Converse answer as IR."""
    output = body.get("output")
    message = output.get("message") if isinstance(output, Mapping) else None
    blocks = message.get("content") if isinstance(message, Mapping) else None
    parts: list[ir.Part] = []
    for block in blocks if isinstance(blocks, list) else []:
        part = _part(block)
        if part is not None:
            parts.append(part)
    native = body.get("stopReason")
    finish = FINISH.get(native, "stop") if isinstance(native, str) else None
    extra = {k: body[k] for k in ("trace", "additionalModelResponseFields", "performanceConfig") if k in body}
    choice = ir.Choice(
        parts=parts,
        finish_reason=finish,
        native_finish_reason=native if isinstance(native, str) else None,
        provider_specific=extra or None,
    )
    return ir.Response(id=_request_id(body), model=model, choices=[choice], usage=decode_usage(body.get("usage")))


def _part(block: Any) -> ir.Part | None:
    if not isinstance(block, Mapping):
        return None
    if "text" in block:
        return ir.TextPart(text=str(block["text"]))
    if "toolUse" in block:
        use = block["toolUse"]
        return ir.ToolCallPart(
            id=str(use.get("toolUseId", "")),
            name=str(use.get("name", "")),
            arguments=dumps(use.get("input") or {}).decode(),
        )
    if "reasoningContent" in block:
        rc = block["reasoningContent"]
        if "reasoningText" in rc:
            rt = rc["reasoningText"]
            return ir.ReasoningPart(text=str(rt.get("text", "")), signature=rt.get("signature"), provider="bedrock")
        if "redactedContent" in rc:
            return ir.RedactedReasoningPart(data=str(rc["redactedContent"]), provider="bedrock")
    return ir.ProviderPart(provider="bedrock", block=dict(block))


def decode_usage(raw: Any) -> ir.Usage | None:
    """Converse usage in normal form: input counts the cache reads and writes Bedrock counts apart."""
    if not isinstance(raw, Mapping):
        return None
    read = int(raw.get("cacheReadInputTokens") or 0)
    write = int(raw.get("cacheWriteInputTokens") or 0)
    return ir.Usage(
        input_tokens=int(raw.get("inputTokens") or 0) + read + write,
        output_tokens=int(raw.get("outputTokens") or 0),
        cache_read_tokens=read,
        cache_write_tokens=write,
        cache_write_5m_tokens=write,
    )


def _request_id(body: Mapping[str, Any]) -> str:
    metrics = body.get("metrics")
    latency = metrics.get("latencyMs") if isinstance(metrics, Mapping) else None
    return f"bedrock-{latency}" if latency is not None else "bedrock"


# ---------------------------------------------------------------- errors


def decode_error(
    status: int,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    provider: str = "bedrock",
    model: str | None = None,
) -> APIStatusError:
    """The error a Bedrock answer stands for: its type is in ``X-Amzn-Errortype`` (``Name:namespace``),
    its text in the body's ``message``."""
    headers = headers or {}
    etype = None
    for k, v in headers.items():
        if k.lower() == "x-amzn-errortype":
            etype = str(v).split(":", 1)[0]
    parsed = loads_lenient(body) if body else None
    message = body.decode("utf-8", "replace").strip() or f"HTTP {status}"
    if isinstance(parsed, dict):
        message = str(parsed.get("message") or parsed.get("Message") or message)
    return exception_error(etype, message, status, headers=headers, provider=provider, model=model, body=parsed)


def exception_error(
    etype: str | None,
    message: str,
    status: int | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    provider: str = "bedrock",
    model: str | None = None,
    body: Any = None,
) -> APIStatusError:
    """The error for a Bedrock exception type (``ThrottlingException``, or ``throttlingException`` as a
    stream's exception frame names it)."""
    name = etype[:1].upper() + etype[1:] if etype else None
    if not status or status < 400:
        status = STATUS_FOR_EXCEPTION.get(name or "", 500)
    cls = error_for_status(status, message, error_type=name)
    if name in ("UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException"):
        from llmswitch.errors import AuthenticationError

        cls = AuthenticationError
    return cls(
        f"{provider}: {message}",
        status_code=status,
        provider=provider,
        model=model,
        body=body if body is not None else message,
        retry_after=retry_after_from_headers(headers or {}),
        headers=dict(headers or {}),
        error_type=name,
    )


def b64_bytes(text: str) -> bytes:
    """Bytes of a base64 field (InvokeModel's stream chunks)."""
    return base64.b64decode(text)


__all__ = ["EXTRA_KEYS", "FINISH", "decode_error", "decode_response", "decode_usage", "encode_request", "loads"]
