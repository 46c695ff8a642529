"""Ollama's own chat API (``POST /api/chat``): IR request -> body, and answer body -> IR.

Ollama's native format differs from its OpenAI-compatible one in ways that lose data if confused:
sampling settings live in ``options`` (``max_tokens`` is ``options.num_predict``), ``stream`` must
be sent explicitly (Ollama streams unless told ``false``), images are bare base64 strings beside the
text, reasoning is a ``thinking`` string, tool-call arguments are JSON objects (not text), a turn
that called tools ends with ``done_reason: "stop"``, and errors are ``{"error": "<text>"}``.

Ollama ignores body keys it does not know, silently, so nothing unknown is forwarded: a caller's
extra is sent top-level (:data:`TOP_LEVEL_KEYS`), inside ``options`` (:data:`OPTION_KEYS`, LiteLLM's
convention for ``num_ctx=...``) or refused.

    >>> req = ir.Request(model="m", messages=[ir.Message(role="user", content=[ir.TextPart("hi")])], max_tokens=5)
    >>> encode_request(req, model="qwen3:14b")
    {'model': 'qwen3:14b', 'messages': [{'role': 'user', 'content': 'hi'}], 'stream': False, 'options': {'num_predict': 5}}
"""

from __future__ import annotations

from typing import Any

from llmswitch import ir
from llmswitch.dialects._json import dumps, loads_lenient, split_data_url
from llmswitch.errors import BadRequestError, UnsupportedParamsError

# top-level /api/chat fields a caller may set as extras (docs.ollama.com/api/chat)
TOP_LEVEL_KEYS = frozenset({"format", "keep_alive", "think", "options"})
# the model options of Ollama's Modelfile / API (docs.ollama.com/modelfile#valid-parameters-and-values),
# which a caller may also pass top-level, as with LiteLLM
OPTION_KEYS = frozenset(
    {
        *("num_ctx", "num_predict", "num_keep", "num_batch", "num_gpu", "main_gpu", "num_thread", "use_mmap"),
        *("repeat_last_n", "repeat_penalty", "min_p", "typical_p", "tfs_z", "penalize_newline"),
        *("mirostat", "mirostat_eta", "mirostat_tau", "low_vram", "vocab_only", "use_mlock", "numa"),
    }
)
EXTRA_KEYS = TOP_LEVEL_KEYS | OPTION_KEYS
# OpenAI extras clients send at OpenAI's default value: they ask nothing, so nothing is sent or refused
_ASKS_NOTHING: dict[str, tuple[Any, ...]] = {
    "store": (False,),
    "modalities": (["text"],),
    "service_tier": ("auto", "default"),
}

_ROLE_OUT = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
# Ollama's done_reason -> ours; "stop" becomes tool_calls when the turn called tools (see _finish)
_FINISH_REASON_MAP: dict[str, ir.FinishReason] = {"stop": "stop", "length": "length", "load": "stop", "unload": "stop"}


def encode_request(req: ir.Request, *, model: str) -> dict[str, Any]:
    """The ``/api/chat`` body for ``req``; raises :class:`UnsupportedParamsError` for what Ollama cannot do."""
    body: dict[str, Any] = {"model": model, "messages": _map_messages(req.messages), "stream": bool(req.stream)}
    tools = _map_tools(req)
    if tools:
        body["tools"] = tools
    options: dict[str, Any] = {}
    for name, key in (
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("top_k", "top_k"),
        ("seed", "seed"),
        ("max_tokens", "num_predict"),
        ("presence_penalty", "presence_penalty"),
        ("frequency_penalty", "frequency_penalty"),
    ):
        value = getattr(req, name)
        if value is not None:
            options[key] = value
    if req.stop:
        options["stop"] = list(req.stop)
    fmt = _format(req.response_format)
    if fmt is not None:
        body["format"] = fmt
    think = _think(req, model)
    if think is not None:
        body["think"] = think
    if req.logprobs:
        body["logprobs"] = True
        if req.top_logprobs is not None:
            body["top_logprobs"] = req.top_logprobs
    for key, value in (req.extra or {}).items():
        if key == "options" and isinstance(value, dict):
            options.update(value)
        elif key in TOP_LEVEL_KEYS:
            body[key] = value
        elif key in OPTION_KEYS:
            options[key] = value
        elif value not in _ASKS_NOTHING.get(key, ()):
            raise _unsupported(key, model)
    if options:
        body["options"] = options
    return body


def _map_messages(messages: list[ir.Message]) -> list[dict[str, Any]]:
    names: dict[str, str] = {}  # tool-call id -> function name: Ollama matches a result by tool_name
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            for p in m.content:
                if isinstance(p, ir.ToolResultPart):
                    msg: dict[str, Any] = {"role": "tool", "content": _result_text(p)}
                    name = p.name or names.get(p.tool_call_id)
                    if name:
                        msg["tool_name"] = name
                    out.append(msg)
            continue
        msg = {"role": _ROLE_OUT[m.role], "content": "".join(p.text for p in m.content if isinstance(p, ir.TextPart))}
        images = [_image(p) for p in m.content if isinstance(p, ir.ImagePart)]
        if images:
            msg["images"] = images
        if any(isinstance(p, ir.FilePart) for p in m.content):
            raise BadRequestError(
                "Ollama's /api/chat takes text and images only, not files", status_code=400, provider="ollama"
            )
        if m.role == "assistant":
            thinking = "".join(p.text for p in m.content if isinstance(p, ir.ReasoningPart))
            if thinking:
                msg["thinking"] = thinking
            calls = []
            for c in m.tool_calls:
                names[c.id] = c.name
                args = loads_lenient(c.arguments or "{}")
                calls.append({"id": c.id, "function": {"name": c.name, "arguments": args if args is not None else {}}})
            if calls:
                msg["tool_calls"] = calls
        out.append(msg)
    return out


def _result_text(p: ir.ToolResultPart) -> str:
    return p.text


def _image(p: ir.ImagePart) -> str:
    """Ollama takes images as bare base64; it fetches nothing, so a URL cannot be sent."""
    if p.data:
        return p.data
    split = split_data_url(p.url or "")
    if split is None:
        raise BadRequestError(
            "Ollama's /api/chat takes images inline (base64 or a data: URL), not by URL",
            status_code=400,
            provider="ollama",
            param="image_url",
        )
    return split[1]


def _map_tools(req: ir.Request) -> list[dict[str, Any]]:
    if not req.tools:
        return []
    choice = req.tool_choice
    if choice is not None and choice.mode == "none":
        return []  # Ollama has no tool_choice; offering no tools is what "none" means
    if choice is not None and choice.mode in ("required", "tool"):
        raise _unsupported("tool_choice", req.model)
    # a choice narrowed to some tools (OpenAI's allowed_tools in auto mode): Ollama is offered only those
    allowed = set(choice.allowed) if choice is not None and choice.allowed else None
    out = []
    for t in req.tools:
        if allowed is not None and t.name not in allowed:
            continue
        if t.builtin is not None:
            raise _unsupported("tools", req.model)
        fn: dict[str, Any] = {"name": t.name, "parameters": t.parameters or {"type": "object", "properties": {}}}
        if t.description:
            fn["description"] = t.description
        out.append({"type": "function", "function": fn})
    return out


def _format(rf: ir.ResponseFormat | None) -> str | dict[str, Any] | None:
    if rf is None or rf.type == "text":
        return None
    if rf.type == "json_object" or rf.schema is None:
        return "json"
    return rf.schema


def _think(req: ir.Request, model: str) -> bool | str | None:
    """``reasoning_effort`` as Ollama's ``think``: levels for gpt-oss (the only family that takes them), else on/off."""
    effort = req.reasoning_effort
    if effort is None:
        return None
    if effort == "none":
        return False
    if "gpt-oss" in model:
        return {"minimal": "low", "xhigh": "high"}.get(effort, effort)
    return True


def _unsupported(field: str, model: str) -> UnsupportedParamsError:
    exc = UnsupportedParamsError(
        f"ollama/{model} does not support the parameter '{field}' (Ollama's /api/chat has no such field)",
        status_code=400,
        provider="llmswitch",
        model=model,
        param=field,
        error_type="invalid_request_error",
        code="unsupported_params",
        should_retry=False,
    )
    exc.params = (field,)
    return exc


# ---------------------------------------------------------------- answers


def decode_response(body: dict[str, Any]) -> ir.Response:
    msg = body.get("message") or {}
    parts: list[ir.Part] = []
    if msg.get("thinking"):
        parts.append(ir.ReasoningPart(text=str(msg["thinking"])))
    if msg.get("content"):
        parts.append(ir.TextPart(text=str(msg["content"])))
    parts.extend(map_tool_calls_in(msg.get("tool_calls") or [], 0))
    native = body.get("done_reason")
    return ir.Response(
        id=response_id(body),
        model=str(body.get("model") or ""),
        choices=[
            ir.Choice(
                parts=parts,
                finish_reason=finish_reason_in(native, any(isinstance(p, ir.ToolCallPart) for p in parts)),
                native_finish_reason=native,
                logprobs=logprobs_in(body.get("logprobs")),
            )
        ],
        usage=map_usage_in(body),
    )


def logprobs_in(raw: Any) -> Any:
    """Ollama's list of ``{token, logprob, bytes, top_logprobs}`` is OpenAI's ``logprobs.content``."""
    return {"content": raw} if isinstance(raw, list) else raw


def map_tool_calls_in(calls: list[Any], first: int) -> list[ir.ToolCallPart]:
    """Ollama's calls (arguments as objects) with ids; ``first`` numbers them across a stream's lines."""
    out = []
    for k, tc in enumerate(calls):
        fn = tc.get("function") or {}
        args = fn.get("arguments")
        text = args if isinstance(args, str) else dumps(args if args is not None else {}).decode()
        index = first + k
        # older Ollama versions send no id; the position in the turn is stable, so it names the call
        out.append(
            ir.ToolCallPart(id=str(tc.get("id") or f"call_{index}"), name=str(fn.get("name") or ""), arguments=text)
        )
    return out


def finish_reason_in(native: str | None, called_tools: bool) -> ir.FinishReason | None:
    if native is None:
        return None
    reason = _FINISH_REASON_MAP.get(native, "stop")
    return "tool_calls" if called_tools and reason == "stop" else reason


def map_usage_in(body: dict[str, Any]) -> ir.Usage | None:
    if "prompt_eval_count" not in body and "eval_count" not in body:
        return None
    return ir.Usage(
        input_tokens=int(body.get("prompt_eval_count") or 0), output_tokens=int(body.get("eval_count") or 0)
    )


def response_id(body: dict[str, Any]) -> str:
    """Ollama's answers carry no id; its timestamp (nanoseconds) tells one answer from another."""
    return f"ollama-{body.get('created_at') or ''}"
