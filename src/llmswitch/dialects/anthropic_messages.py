"""Anthropic Messages, both directions, as pure functions over dicts.

Client side (llmswitch calling Anthropic): ``encode_request`` (IR -> body), ``decode_response``
(body -> IR), ``StreamDecoder`` (in ``anthropic_stream``), ``decode_error`` (in ``anthropic_errors``).
Server side (an Anthropic SDK calling the gateway): ``decode_request`` (body -> IR, validated),
``encode_response`` (IR -> body), ``StreamEncoder``, ``encode_error``.

What the translation decides, and why:
- System and developer messages move to the top-level ``system`` (a string, or text blocks when one
  carries ``cache_control``); tool results become ``tool_result`` blocks of a user turn, placed first
  as the API demands; consecutive turns of one role merge.
- ``max_tokens`` is required: a modest per-model default (``_MAX_TOKENS``) when the caller gives
  none, because Anthropic reserves output-token rate limit up front from ``max_tokens``.
- ``reasoning_effort`` / ``thinking_budget`` become ``thinking.budget_tokens`` (raised to the API's
  1024 minimum, with ``max_tokens`` raised above it); with thinking on, ``temperature`` and
  ``top_k`` are not sent and ``top_p`` only within 0.95-1, as the API requires.
- ``json_schema`` uses native ``output_config.format`` on models that have it; otherwise, and for
  ``json_object`` (with a permissive object schema), the model is made to call one tool,
  :data:`RESPONSE_TOOL`, whose input is returned as the message text with finish reason ``stop``.
- Reasoning keeps its signature; redacted reasoning and Anthropic-only blocks (server tools, web
  search results …) are kept as IR parts and sent back unchanged, as a tool loop with thinking needs.
- Gemini's dynamic thinking budget (-1) becomes :data:`~llmswitch.dialects.thinking.DYNAMIC_BUDGET`.
- Sent nowhere, because Anthropic has no such thing: ``seed``, ``n`` (> 1 is refused), penalties,
  ``logit_bias``, ``logprobs`` (the gateway and the SDK refuse or drop them first, by the policy in
  ``llmswitch.providers.params``); stop sequences that are only whitespace (the API rejects them).
"""

from __future__ import annotations

from typing import Any

from llmswitch import ir
from llmswitch.dialects._json import invalid
from llmswitch.dialects.anthropic_content import (
    RESPONSE_TOOL,
    block_in,
    block_out,
    content_in,
    finish_reason_in,
    map_messages_in,
    map_messages_out,
    map_usage_in,
    map_usage_out,
    response_blocks,
    stop_reason_out,
    with_cache,
)
from llmswitch.dialects.anthropic_errors import decode_error, encode_error
from llmswitch.dialects.anthropic_models import max_tokens_of, model_version, native_structured, thinking_capable
from llmswitch.dialects.drop_params import CALL_KEYS, read_drop_params
from llmswitch.dialects.thinking import DYNAMIC, DYNAMIC_BUDGET

__all__ = [
    "RESPONSE_TOOL",
    "block_in",
    "block_out",
    "decode_error",
    "decode_request",
    "decode_response",
    "encode_error",
    "encode_request",
    "encode_response",
    "finish_reason_in",
    "map_messages_in",
    "map_messages_out",
    "map_usage_in",
    "map_usage_out",
    "model_version",
    "required_betas",
]

_RESPONSE_TOOL_DESCRIPTION = "Give your complete final answer as this tool's input, which must match its schema."

_EFFORT_BUDGET = {"minimal": 1024, "low": 2048, "medium": 4096, "high": 8192, "xhigh": 16384}
_MIN_BUDGET = 1024
# ---------------------------------------------------------------- IR -> Anthropic request (client side)


def _thinking_budget(req: ir.Request, version: tuple[str, int, int] | None) -> int | None:
    """Budget tokens to think with; 0 to say thinking is off; None to say nothing."""
    if req.thinking_budget == DYNAMIC:
        # Gemini's "the model decides": Anthropic needs a number; a documented default stands in
        return DYNAMIC_BUDGET
    if req.thinking_budget is not None:
        return req.thinking_budget
    if req.reasoning_effort is None or req.reasoning_effort == "none" or not thinking_capable(version):
        return None  # an effort meant for any model is not an error for a model that cannot think
    if req.tool_choice is not None and req.tool_choice.mode in ("required", "tool"):
        # an effort is a preference, a forced tool a requirement, and the API refuses the two together
        return None
    return _EFFORT_BUDGET[req.reasoning_effort]


# function-tool fields only Anthropic has (examples of input, tool search, fine-grained streaming,
# programmatic calling): kept for Anthropic, meaningless to the others
TOOL_FIELDS = ("input_examples", "defer_loading", "eager_input_streaming", "allowed_callers")


def _tool_out(t: ir.Tool, strict_ok: bool) -> dict[str, Any]:
    if t.builtin is not None:
        return t.builtin
    schema = t.parameters if t.parameters is not None else {"type": "object", "properties": {}}
    if "type" not in schema:
        schema = {"type": "object", **schema}
    out: dict[str, Any] = {"name": t.name}
    if t.description:
        out["description"] = t.description
    out["input_schema"] = schema
    if t.strict is not None and strict_ok:
        out["strict"] = t.strict
    out.update((t.provider_specific or {}).get("anthropic") or {})
    return with_cache(out, t.cache_control)


def _tool_choice_out(req: ir.Request) -> dict[str, Any] | None:
    tc = req.tool_choice
    parallel = tc.parallel if tc is not None and tc.parallel is not None else req.parallel_tool_calls
    if tc is None:
        choice: dict[str, Any] | None = {"type": "auto"} if parallel is False else None
    elif tc.mode == "tool":
        choice = {"type": "tool", "name": tc.name}
    else:
        choice = {"type": {"auto": "auto", "required": "any", "none": "none"}[tc.mode]}
    if choice is not None and parallel is False and choice["type"] != "none":
        choice["disable_parallel_tool_use"] = True
    return choice


def _thinking(
    req: ir.Request, version: tuple[str, int, int] | None, default_max_tokens: int | None
) -> tuple[int, dict[str, Any] | None]:
    """``max_tokens`` and the ``thinking`` parameter, the budget kept below ``max_tokens`` as required."""
    default, ceiling = max_tokens_of(version)
    answer = req.max_tokens if req.max_tokens is not None else default_max_tokens or default
    budget = _thinking_budget(req, version)
    if budget == 0:
        return answer, {"type": "disabled"}
    if not budget:
        return answer, None
    budget, max_tokens = max(budget, _MIN_BUDGET), answer
    if budget >= max_tokens:
        # thinking counts toward max_tokens: leave the caller's answer room on top of the budget
        max_tokens = budget + max(answer, _MIN_BUDGET)
        if ceiling is not None and max_tokens > ceiling:
            max_tokens = ceiling
            budget = max(_MIN_BUDGET, min(budget, ceiling - _MIN_BUDGET))
    return max_tokens, {"type": "enabled", "budget_tokens": budget}


def _tools(
    req: ir.Request, version: tuple[str, int, int] | None, thinking: bool, system: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None, dict[str, Any] | None]:
    """``tools``, ``tool_choice`` and ``output_config``, with the response format folded in."""
    tools = [_tool_out(t, native_structured(version)) for t in req.tools or ()]
    choice = _tool_choice_out(req)
    rf = req.response_format
    if rf is None or rf.type == "text":
        return tools, choice, None
    if rf.type == "json_schema" and rf.schema is not None and native_structured(version):
        return tools, choice, {"format": {"type": "json_schema", "schema": rf.schema}}
    schema = rf.schema if rf.type == "json_schema" and rf.schema is not None else {"type": "object"}
    description = rf.description or _RESPONSE_TOOL_DESCRIPTION
    tools.append({"name": RESPONSE_TOOL, "description": description, "input_schema": schema})
    keep = {"disable_parallel_tool_use": True} if choice and choice.get("disable_parallel_tool_use") else {}
    if thinking:
        # the API refuses forced tool use while thinking: ask for the tool in words instead
        system.append({"type": "text", "text": f"Give your final answer by calling the {RESPONSE_TOOL} tool."})
        return tools, {"type": "auto", **keep}, None
    if choice is None or choice["type"] in ("auto", "none"):
        own_tools = len(tools) > 1 and (choice is None or choice["type"] == "auto")
        # with tools of its own the model may still call them first, but must end with the answer tool
        choice = {"type": "any", **keep} if own_tools else {"type": "tool", "name": RESPONSE_TOOL}
    return tools, choice, None


def _sampling(req: ir.Request, version: tuple[str, int, int] | None, thinking: bool) -> dict[str, Any]:
    if thinking:
        # thinking is incompatible with temperature and top_k, and takes top_p only within 0.95-1
        return {"top_p": req.top_p} if req.top_p is not None and 0.95 <= req.top_p <= 1 else {}
    out: dict[str, Any] = {}
    if req.temperature is not None:
        out["temperature"] = req.temperature
    # Claude 4.1+ refuses temperature and top_p together; temperature is the one callers mean
    if req.top_p is not None and not (req.temperature is not None and version and version[1:] >= (4, 1)):
        out["top_p"] = req.top_p
    if req.top_k is not None:
        out["top_k"] = req.top_k
    return out


def encode_request(req: ir.Request, *, model: str, default_max_tokens: int | None = None) -> dict[str, Any]:
    """The body to POST to ``/v1/messages`` for this request.

    >>> req = ir.Request(model="m", messages=[ir.Message(role="user", content=[ir.TextPart("hi")])])
    >>> encode_request(req, model="claude-sonnet-4-5")["max_tokens"]
    8192
    """
    if req.n is not None and req.n > 1:
        raise invalid("n", "Anthropic returns one choice per request")
    version = model_version(model)
    system, turns = map_messages_out(req.messages)
    max_tokens, thinking = _thinking(req, version, default_max_tokens)
    thinks = thinking is not None and thinking["type"] == "enabled"
    tools, choice, output_config = _tools(req, version, thinks, system)
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens}
    if system:
        # a string unless a block carries more than text (cache_control, citations)
        body["system"] = system[0]["text"] if len(system) == 1 and set(system[0]) == {"type", "text"} else system
    body["messages"] = turns
    if thinking is not None:
        body["thinking"] = thinking
    if tools:
        body["tools"] = tools
        if choice is not None:
            body["tool_choice"] = choice
    if output_config is not None:
        body["output_config"] = output_config
    body.update(_sampling(req, version, thinks))
    stops = [s for s in req.stop or () if s.strip()]
    if stops:
        body["stop_sequences"] = stops
    user = req.user or (req.metadata or {}).get("user_id")
    if isinstance(user, str) and user:
        body["metadata"] = {"user_id": user}
    if req.stream:
        body["stream"] = True
    for k, v in (req.extra or {}).items():
        # output_config may hold both our format and a caller's effort; anything else is the caller's word
        body[k] = body[k] | v if k == "output_config" and isinstance(v, dict) and k in body else v
    return body


# top-level parameters only the beta Messages API takes, and the header value that unlocks each
_BETA_FOR_KEY = {
    "output_format": "structured-outputs-2025-11-13",
    "context_management": "context-management-2025-06-27",
    "mcp_servers": "mcp-client-2025-04-04",
}


def required_betas(body: dict[str, Any]) -> list[str]:
    """The ``anthropic-beta`` values this body needs (features the API still gates behind a header)."""
    betas = []
    if any(
        _uses_file(b) for t in body.get("messages") or () if isinstance(t.get("content"), list) for b in t["content"]
    ):
        betas.append("files-api-2025-04-14")
    for key, beta in _BETA_FOR_KEY.items():
        if key in body:
            betas.append(beta)
    return betas


def _uses_file(block: Any) -> bool:
    if not isinstance(block, dict):
        return False
    if isinstance(block.get("source"), dict) and block["source"].get("type") == "file":
        return True
    return isinstance(block.get("content"), list) and any(_uses_file(b) for b in block["content"])


# ---------------------------------------------------------------- Anthropic request -> IR (server side)


def _number(body: dict[str, Any], key: str) -> float | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise invalid(key, f"expected a number, got {type(v).__name__}")
    return float(v)


def _int(body: dict[str, Any], key: str, minimum: int = 0, where: str = "") -> int | None:
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
        raise invalid(f"{where}{key}", f"must be an integer >= {minimum}")
    return v


def _tools_in(raw: Any) -> list[ir.Tool] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise invalid("tools", "must be a list")
    tools = []
    for i, t in enumerate(raw):
        where = f"tools[{i}]"
        if not isinstance(t, dict):
            raise invalid(where, "must be an object")
        if t.get("type") not in (None, "custom"):
            # a server tool (web_search_20250305, code_execution …): passed through as is
            tools.append(ir.Tool(name=str(t.get("name") or t["type"]), builtin=t))
            continue
        name, schema = t.get("name"), t.get("input_schema")
        if not isinstance(name, str) or not name:
            raise invalid(f"{where}.name", "a tool name (string) is required")
        if not isinstance(schema, dict):
            raise invalid(f"{where}.input_schema", "a JSON schema object is required")
        desc, strict = t.get("description"), t.get("strict")
        own = {k: t[k] for k in TOOL_FIELDS if k in t}
        tools.append(
            ir.Tool(
                name=name,
                description=desc if isinstance(desc, str) else None,
                parameters=schema,
                strict=strict if isinstance(strict, bool) else None,
                cache_control=t.get("cache_control"),
                provider_specific={"anthropic": own} if own else None,
            )
        )
    return tools


def _tool_choice_in(raw: Any) -> ir.ToolChoice | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("type") not in ("auto", "any", "tool", "none"):
        raise invalid("tool_choice", "must be {'type': 'auto' | 'any' | 'tool' | 'none'}")
    parallel = False if raw.get("disable_parallel_tool_use") is True else None
    if raw["type"] == "tool":
        if not isinstance(raw.get("name"), str) or not raw["name"]:
            raise invalid("tool_choice.name", "the name of the tool to use is required")
        return ir.ToolChoice(mode="tool", name=raw["name"], parallel=parallel)
    mode = {"auto": "auto", "any": "required", "none": "none"}[raw["type"]]
    return ir.ToolChoice(mode=mode, parallel=parallel)  # type: ignore[arg-type]


_KNOWN_KEYS = frozenset(
    (
        *("model", "messages", "system", "max_tokens", "stream", "tools", "tool_choice", "thinking"),
        *("output_config", "output_format", "temperature", "top_p", "top_k", "stop_sequences", "metadata"),
    )
)
# parameters with no IR meaning, passed through to Anthropic in ``extra`` (the beta API's list)
_PASS_THROUGH = frozenset(
    (
        *("cache_control", "container", "context_management", "inference_geo", "mcp_servers", "service_tier"),
        *("speed", "user_profile_id"),
    )
)
# top-level keys the Messages API takes beyond the IR's fields, as extras from any caller
EXTRA_KEYS = _PASS_THROUGH | {"thinking", "output_config", "output_format"}
# IR request fields -> what an Anthropic caller called them, where the names differ (for errors)
FIELD_NAMES = {
    "stop": "stop_sequences",
    "thinking_budget": "thinking",
    "user": "metadata.user_id",
    "parallel_tool_calls": "tool_choice.disable_parallel_tool_use",
    "response_format": "output_config.format",
}


def decode_request(body: dict[str, Any]) -> ir.Request:
    """An Anthropic Messages request body as an IR request; BadRequestError naming the field if malformed."""
    if not isinstance(body, dict):
        raise invalid("body", "the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model", "a model name (string) is required")
    max_tokens = _int(body, "max_tokens")
    if max_tokens is None:
        raise invalid("max_tokens", "is required")
    unknown = sorted(set(body) - _KNOWN_KEYS - _PASS_THROUGH - CALL_KEYS)
    if unknown:
        # as Anthropic would: refused here rather than after a wasted upstream call
        raise invalid(unknown[0], "is not a parameter of the Messages API")
    req = ir.Request(model=model, messages=map_messages_in(body.get("messages"), body.get("system")))
    req.max_tokens = max_tokens
    read_drop_params(body, req)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid("stream", "must be a boolean")
    req.stream = req.include_usage = bool(stream)  # Anthropic streams always report usage
    req.tools = _tools_in(body.get("tools"))
    req.tool_choice = _tool_choice_in(body.get("tool_choice"))
    if req.tool_choice is not None and req.tool_choice.parallel is False:
        req.parallel_tool_calls = False
    extra = {k: v for k, v in body.items() if k not in _KNOWN_KEYS and k not in CALL_KEYS}
    thinking = body.get("thinking")
    if thinking is not None:
        kind = thinking.get("type") if isinstance(thinking, dict) else None
        if kind == "enabled":
            req.thinking_budget = _int(thinking, "budget_tokens", _MIN_BUDGET, "thinking.")
            if req.thinking_budget is None:
                raise invalid("thinking.budget_tokens", "is required when thinking is enabled")
        elif kind == "disabled":
            req.thinking_budget = 0
        elif kind == "adaptive":
            extra["thinking"] = thinking  # no IR equivalent: passed through to Anthropic as is
        else:
            raise invalid("thinking.type", "must be 'enabled', 'disabled' or 'adaptive'")
    oc = body.get("output_config")
    if oc is not None and not isinstance(oc, dict):
        raise invalid("output_config", "must be an object")
    fmt = (oc or {}).get("format") or body.get("output_format")
    if fmt is not None:
        if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
            raise invalid("output_config.format", "must be {'type': 'json_schema', 'schema': {...}}")
        req.response_format = ir.ResponseFormat(type="json_schema", schema=fmt["schema"])
    rest = {k: v for k, v in (oc or {}).items() if k != "format"}
    if rest:
        extra["output_config"] = rest
    req.temperature, req.top_p = _number(body, "temperature"), _number(body, "top_p")
    req.top_k = _int(body, "top_k")
    stop = body.get("stop_sequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise invalid("stop_sequences", "must be a list of strings")
        req.stop = stop or None
    meta = body.get("metadata")
    if meta is not None:
        if not isinstance(meta, dict) or not isinstance(meta.get("user_id", ""), str | None):
            raise invalid("metadata", "must be an object with an optional string 'user_id'")
        req.user = meta.get("user_id") or None
    req.extra = extra or None
    return req


# ---------------------------------------------------------------- Anthropic response -> IR (client side)


def decode_response(body: dict[str, Any]) -> ir.Response:
    """An Anthropic ``message`` body as an IR response."""
    parts, answered = content_in(body.get("content") or [])
    native = body.get("stop_reason")
    finish = finish_reason_in(native)
    if answered and finish == "tool_calls" and not any(isinstance(p, ir.ToolCallPart) for p in parts):
        finish = "stop"
    usage = body.get("usage")
    u = map_usage_in(usage) if isinstance(usage, dict) else None
    if u is not None:
        u.service_tier = None  # a whole answer carries it as the response's service_tier (streams: in usage)
    return ir.Response(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        choices=[
            ir.Choice(
                parts=parts,
                finish_reason=finish,
                native_finish_reason=native,
                provider_specific={"stop_sequence": body["stop_sequence"]} if body.get("stop_sequence") else None,
            )
        ],
        usage=u,
        service_tier=usage.get("service_tier") if isinstance(usage, dict) else None,
        provider_specific={k: body[k] for k in ("container", "stop_details") if body.get(k) is not None} or None,
    )


# ---------------------------------------------------------------- IR -> Anthropic response (server side)


def encode_response(resp: ir.Response) -> dict[str, Any]:
    """An IR response as an Anthropic ``message`` body (the first choice: Anthropic has one)."""
    c = resp.choices[0] if resp.choices else ir.Choice()
    out: dict[str, Any] = {
        "id": resp.id,
        "type": "message",
        "role": "assistant",
        "model": resp.model,
        "content": [b for p in c.parts for b in response_blocks(p)],
        "stop_reason": stop_reason_out(c.finish_reason, c.native_finish_reason),
        "stop_sequence": (c.provider_specific or {}).get("stop_sequence"),
        "usage": map_usage_out(resp.usage or ir.Usage()),
    }
    if resp.service_tier in ("standard", "priority", "batch"):  # Anthropic's values; OpenAI's "default" is not
        out["usage"]["service_tier"] = resp.service_tier
    for k, v in (resp.provider_specific or {}).items():
        if k in ("container", "stop_details"):
            out[k] = v
    return out
