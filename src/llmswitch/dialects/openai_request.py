"""OpenAI Chat Completions requests as a client writes them -> IR, validated, naming the field.

Used for the SDK's own keywords and the gateway's OpenAI routes (``openai_chat.decode_request``):
types, enums and ranges are checked here, at the edge, before anything is routed.
"""

from __future__ import annotations

from typing import Any

from llmswitch import ir
from llmswitch.dialects._json import invalid
from llmswitch.dialects.drop_params import CALL_KEYS, read_drop_params
from llmswitch.dialects.openai_messages import map_messages_in
from llmswitch.dialects.openai_tools import tool_choice_in, tool_name

SAMPLING_KEYS = (
    "temperature",
    "top_p",
    "seed",
    "n",
    "presence_penalty",
    "frequency_penalty",
    "logprobs",
    "top_logprobs",
    "top_k",
)
_RANGES = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
}
_KNOWN_KEYS = frozenset(
    (
        "model",
        "messages",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "user",
        "metadata",
        "reasoning_effort",
        "thinking",
        "logit_bias",
        "functions",
        "function_call",
        "top_k",
        *SAMPLING_KEYS,
        *CALL_KEYS,
    )
)

# IR request fields -> what an OpenAI caller called them, where the names differ (for errors)
FIELD_NAMES = {"thinking_budget": "thinking"}


_BASE_KEYS = frozenset(("model", "messages"))
_INT_KEYS = ("seed", "n", "top_logprobs", "top_k")


def decode_request(body: dict[str, Any]) -> ir.Request:
    """A Chat Completions request body (from a client or the SDK's keywords) as an IR request.

    Raises BadRequestError naming the field for anything malformed.
    """
    if not isinstance(body, dict):
        raise invalid("body", "the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model", "a model name (string) is required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages", "a non-empty list of messages is required")
    req = ir.Request(model=model, messages=map_messages_in(messages))
    # only the keys the body has are looked at: most requests carry two or three settings of dozens
    rest = body.keys() - _BASE_KEYS
    if rest:
        _settings_in(body, rest, req)
    return req


def _settings_in(body: dict[str, Any], rest: set[str], req: ir.Request) -> None:
    if "stream" in rest:
        req.stream = _opt(body, "stream", bool) or False
    so = body.get("stream_options")
    if so is not None:
        if not isinstance(so, dict):
            raise invalid("stream_options", "must be an object")
        req.include_usage = bool(so.get("include_usage"))
    if "tools" in rest or "functions" in rest:
        req.tools = _tools_in(body)
        if body.get("tools") is None and body.get("functions") is not None:
            req.legacy_functions = True
    if "tool_choice" in rest or "function_call" in rest:
        key = "tool_choice" if "tool_choice" in body else "function_call"
        req.tool_choice = tool_choice_in(body.get(key), key)
    if "parallel_tool_calls" in rest:
        req.parallel_tool_calls = _opt(body, "parallel_tool_calls", bool)
        if req.tool_choice is not None and req.parallel_tool_calls is not None:
            req.tool_choice.parallel = req.parallel_tool_calls
    if "response_format" in rest:
        req.response_format = _response_format_in(body.get("response_format"))
    for key, (low, high) in _RANGES.items():
        if key in rest:
            v = _number(body, key)
            if v is not None and not low <= v <= high:
                raise invalid(key, f"{v:g} is out of range; it must be between {low:g} and {high:g}")
            setattr(req, key, v)
    for key in _INT_KEYS:
        if key in rest:
            setattr(req, key, _opt(body, key, int))
    if req.n is not None and req.n < 1:
        raise invalid("n", "must be at least 1")
    if req.top_logprobs is not None and not 0 <= req.top_logprobs <= 20:
        raise invalid("top_logprobs", "must be between 0 and 20")
    if "logprobs" in rest:
        req.logprobs = _opt(body, "logprobs", bool)
    mt_key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    mt = body.get(mt_key)
    if mt is not None:
        if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
            raise invalid(mt_key, "must be a positive integer")
        req.max_tokens = mt
    stop = body.get("stop")
    if stop is not None:
        if isinstance(stop, str):
            req.stop = [stop]
        elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
            req.stop = stop or None
        else:
            raise invalid("stop", "must be a string or a list of strings")
    if "user" in rest:
        req.user = _opt(body, "user", str)
    if "metadata" in rest:
        req.metadata = _opt(body, "metadata", dict)
    if "logit_bias" in rest:
        req.logit_bias = _opt(body, "logit_bias", dict)
    effort = body.get("reasoning_effort")
    if effort is not None:
        if effort not in ("none", "minimal", "low", "medium", "high", "xhigh"):
            raise invalid("reasoning_effort", f"{effort!r} is not one of none, minimal, low, medium, high, xhigh")
        req.reasoning_effort = effort
    if not CALL_KEYS.isdisjoint(rest):
        read_drop_params(body, req)
    thinking = body.get("thinking")
    unknown = rest - _KNOWN_KEYS
    extra = {k: v for k, v in body.items() if k in unknown} if unknown else {}  # in the body's order
    if isinstance(thinking, dict) and isinstance(thinking.get("budget_tokens"), int):
        req.thinking_budget = thinking["budget_tokens"]
    elif isinstance(thinking, dict) and thinking.get("type") == "disabled":
        req.thinking_budget = 0
    elif thinking is not None:
        # a vendor's own switch (DeepSeek's {"type": "enabled"}): pass it on as written
        extra["thinking"] = thinking
    req.extra = extra or None


def _opt(body: dict[str, Any], key: str, kind: type) -> Any:
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
        raise invalid(key, f"expected {kind.__name__}, got {type(v).__name__}")
    return v


def _number(body: dict[str, Any], key: str) -> float | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise invalid(key, f"expected a number, got {type(v).__name__}")
    return float(v)


def _tools_in(body: dict[str, Any]) -> list[ir.Tool] | None:
    raw = body.get("tools")
    if raw is None and body.get("functions") is not None:
        raw = [{"type": "function", "function": f} for f in body["functions"]]
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise invalid("tools", "must be a list")
    tools = []
    for i, t in enumerate(raw):
        if not isinstance(t, dict):
            raise invalid(f"tools[{i}]", "must be an object")
        if t.get("type", "function") != "function" or "function" not in t:
            # a provider-native tool (web search, code execution …) or a custom one, passed through as is
            name = tool_name(t) or t.get("name") or t.get("type") or "builtin"
            tools.append(ir.Tool(name=str(name), builtin=t))
            continue
        fn = t["function"]
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise invalid(f"tools[{i}].function.name", "a function name (string) is required")
        params = fn.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise invalid(f"tools[{i}].function.parameters", "must be a JSON schema object")
        tools.append(
            ir.Tool(
                name=fn["name"],
                description=fn.get("description"),
                parameters=params,
                strict=fn.get("strict"),
                cache_control=t.get("cache_control"),
            )
        )
    return tools


def _response_format_in(raw: Any) -> ir.ResponseFormat | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("type") not in ("text", "json_object", "json_schema"):
        raise invalid("response_format", "must have type 'text', 'json_object' or 'json_schema'")
    if raw["type"] != "json_schema":
        return ir.ResponseFormat(type=raw["type"])
    js = raw.get("json_schema")
    if not isinstance(js, dict) or not isinstance(js.get("schema", {}), dict):
        raise invalid("response_format.json_schema", "must be an object with a 'schema'")
    return ir.ResponseFormat(
        type="json_schema",
        schema=js.get("schema"),
        name=js.get("name"),
        strict=js.get("strict"),
        description=js.get("description"),
    )
