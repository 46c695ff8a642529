"""Gemini ``generateContent`` request bodies <-> IR requests, for ``gemini`` (which re-exports both).

``encode_request`` builds what llmswitch sends to Gemini; ``decode_request`` reads what a Gemini
client sends the gateway, validating it and naming the field it rejects. Fields are read in the
REST API's camelCase or the snake_case the google-genai SDK sometimes sends (its ``thinkingConfig``
arrives as ``thinking_budget`` / ``include_thoughts``). Whatever the IR has no field for
(``safetySettings``, ``cachedContent``, ``responseModalities`` …) is kept in ``Request.extra``, so a
Gemini client talking to Gemini through the gateway loses nothing.
"""

from __future__ import annotations

from typing import Any, cast

from llmswitch import ir
from llmswitch.dialects import gemini_schema
from llmswitch.dialects._json import invalid
from llmswitch.dialects.drop_params import CALL_KEYS, read_drop_params
from llmswitch.dialects.gemini_messages import get, map_messages_in, map_messages_out
from llmswitch.dialects.thinking import DYNAMIC

# reasoning_effort -> thinkingBudget (tokens). 24576 is the largest budget every Gemini 2.5 model
# takes; xhigh asks for 2.5 Pro's maximum.
THINKING_BUDGETS: dict[str, int] = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
}
# reasoning_effort -> thinkingLevel for Gemini 3, which cannot turn thinking off
_LEVELS = {"none": "MINIMAL", "minimal": "MINIMAL", "low": "LOW", "medium": "MEDIUM", "high": "HIGH", "xhigh": "HIGH"}

# generationConfig fields <-> IR request fields, for the ones that map one to one
_SAMPLING = (
    ("temperature", "temperature"),
    ("topP", "top_p"),
    ("topK", "top_k"),
    ("maxOutputTokens", "max_tokens"),
    ("stopSequences", "stop"),
    ("seed", "seed"),
    ("candidateCount", "n"),
    ("presencePenalty", "presence_penalty"),
    ("frequencyPenalty", "frequency_penalty"),
    ("responseLogprobs", "logprobs"),
    ("logprobs", "top_logprobs"),
)

# IR request fields -> what a Gemini caller called them (for errors)
FIELD_NAMES = {
    **{attr: f"generationConfig.{wire}" for wire, attr in _SAMPLING},
    "thinking_budget": "generationConfig.thinkingConfig.thinkingBudget",
    "reasoning_effort": "generationConfig.thinkingConfig.thinkingLevel",
    "response_format": "generationConfig.responseSchema",
    "tool_choice": "toolConfig",
}
# top-level keys generateContent takes beyond the IR's fields, as extras from any caller (both spellings)
EXTRA_KEYS = frozenset(
    (
        *("safetySettings", "cachedContent", "labels", "generationConfig", "toolConfig"),
        *("safety_settings", "cached_content", "generation_config", "tool_config"),
    )
)

# ---------------------------------------------------------------- IR -> Gemini request (client side)


def encode_request(req: ir.Request, *, model: str) -> dict[str, Any]:
    """The ``generateContent`` body for a request (the model goes in the URL, not the body)."""
    system, contents = map_messages_out(req.messages)
    body: dict[str, Any] = {"contents": contents}
    if system is not None:
        body["systemInstruction"] = system
    if req.tools:
        tools = _tools_out(req.tools)
        if tools:
            body["tools"] = tools
        if req.tool_choice is not None:
            body["toolConfig"] = {"functionCallingConfig": _tool_choice_out(req.tool_choice)}
    gc: dict[str, Any] = {}
    for wire, attr in _SAMPLING:
        v = getattr(req, attr)
        if v is not None:
            gc[wire] = v
    rf = req.response_format
    if rf is not None and rf.type != "text":
        gc["responseMimeType"] = "application/json"
        if rf.type == "json_schema" and rf.schema:
            if _as_json_schema(rf.provider_specific):
                gc["responseJsonSchema"] = rf.schema
            else:
                gc["responseSchema"] = gemini_schema.to_gemini(rf.schema, ordering=True)
    thinking = _thinking_out(req, model)
    if thinking is not None:
        gc["thinkingConfig"] = thinking
    extra = dict(req.extra or {})
    for key in ("generationConfig", "generation_config"):
        if isinstance(extra.get(key), dict):
            gc = _merge(gc, extra.pop(key))
    if gc:
        body["generationConfig"] = gc
    body.update(extra)
    return body


def _thinking_out(req: ir.Request, model: str) -> dict[str, Any] | None:
    if req.thinking_budget is not None:
        budget = req.thinking_budget
    elif req.reasoning_effort is not None:
        if model.split("/")[-1].startswith("gemini-3"):
            return {"thinkingLevel": _LEVELS[req.reasoning_effort], "includeThoughts": True}
        budget = THINKING_BUDGETS[req.reasoning_effort]
    else:
        return None
    return {"thinkingBudget": budget, "includeThoughts": True} if budget != 0 else {"thinkingBudget": 0}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _tools_out(tools: list[ir.Tool]) -> list[dict[str, Any]]:
    declarations: list[dict[str, Any]] = []
    native: list[dict[str, Any]] = []
    for t in tools:
        if t.builtin is not None:
            # Gemini's own tools ({"googleSearch": {}} …) go as they are; another provider's typed
            # builtin ({"type": "web_search_…"}) means nothing to Gemini
            if "type" not in t.builtin:
                native.append(t.builtin)
            continue
        d: dict[str, Any] = {"name": t.name}
        if t.description:
            d["description"] = t.description
        if _as_json_schema(t.provider_specific) and t.parameters is not None:
            d["parametersJsonSchema"] = t.parameters  # Gemini's caller wrote JSON Schema: it goes back as is
            declarations.append(d)
            continue
        params = gemini_schema.to_gemini(t.parameters) if t.parameters else {}
        # Gemini rejects an OBJECT without properties: a function without parameters sends none
        if params.get("properties"):
            d["parameters"] = params
        declarations.append(d)
    return ([{"functionDeclarations": declarations}] if declarations else []) + native


def _json_schema_marker() -> dict[str, dict[str, Any]]:
    """Marks a schema a Gemini caller wrote as JSON Schema, to send it back to Gemini as such (a new dict
    each time: the IR's dicts are the request's own)."""
    return {"gemini": {"json_schema": True}}


def _as_json_schema(provider_specific: dict[str, dict[str, Any]] | None) -> bool:
    """Whether a schema came from a Gemini caller as JSON Schema (``parametersJsonSchema``, ``responseJsonSchema``)."""
    return bool(((provider_specific or {}).get("gemini") or {}).get("json_schema"))


def _tool_choice_out(tc: ir.ToolChoice) -> dict[str, Any]:
    if tc.mode == "tool":
        return {"mode": "ANY", "allowedFunctionNames": [tc.name]}
    out: dict[str, Any] = {"mode": {"auto": "AUTO", "required": "ANY", "none": "NONE"}[tc.mode]}
    if tc.allowed and tc.mode in ("auto", "required"):
        # narrowed to some functions: ANY must call one of them; VALIDATED may answer in words instead
        out["mode"] = "ANY" if tc.mode == "required" else "VALIDATED"
        out["allowedFunctionNames"] = list(tc.allowed)
    return out


# ---------------------------------------------------------------- Gemini request -> IR (server side)

_KNOWN_KEYS = ("contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "model")


def decode_request(body: dict[str, Any], *, model: str, stream: bool = False) -> ir.Request:
    """A ``generateContent`` body (the model from the URL path) as an IR request.

    Raises BadRequestError naming the field for anything malformed.
    """
    if not isinstance(body, dict):
        raise invalid("body", "the request body must be a JSON object")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise invalid("contents", "a non-empty list of contents is required")
    req = ir.Request(model=model, messages=map_messages_in(contents, get(body, "systemInstruction")))
    read_drop_params(body, req)
    req.stream = stream
    req.include_usage = stream  # Gemini reports usage on every streamed chunk
    tools = body.get("tools")
    if tools is not None:
        req.tools = _tools_in(tools)
    tc = get(body, "toolConfig")
    if tc is not None:
        req.tool_choice = _tool_choice_in(tc)
    # what the IR has no field for (safetySettings, cachedContent, labels …) rides along verbatim
    extra = {k: v for k, v in body.items() if _camel(k) not in _KNOWN_KEYS and k not in CALL_KEYS}
    native_tc = _tool_config_extra(tc)
    if native_tc is not None:
        extra["toolConfig"] = native_tc
    gc = get(body, "generationConfig")
    if gc is not None:
        rest = _generation_config_in(gc, req)
        if rest:
            extra["generationConfig"] = rest
    req.extra = extra or None
    return req


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(w.title() for w in rest)


def _drop(d: dict[str, Any], *camel: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if _camel(k) not in camel}


def _tools_in(raw: Any) -> list[ir.Tool]:
    if not isinstance(raw, list):
        raise invalid("tools", "must be a list")
    out: list[ir.Tool] = []
    for i, t in enumerate(raw):
        if not isinstance(t, dict):
            raise invalid(f"tools[{i}]", "must be an object")
        decls = get(t, "functionDeclarations")
        if decls is None:
            out.append(ir.Tool(name=next(iter(t), "builtin"), builtin=t))
            continue
        # Gemini's own tools may share the object with the declarations ({"functionDeclarations": [...],
        # "codeExecution": {}}): each is kept as a tool of its own
        out.extend(ir.Tool(name=k, builtin={k: v}) for k, v in t.items() if _camel(k) != "functionDeclarations")
        if not isinstance(decls, list):
            raise invalid(f"tools[{i}].functionDeclarations", "must be a list")
        for j, d in enumerate(decls):
            where = f"tools[{i}].functionDeclarations[{j}]"
            if not isinstance(d, dict) or not isinstance(d.get("name"), str) or not d["name"]:
                raise invalid(f"{where}.name", "a function name (string) is required")
            params = d.get("parameters")
            raw_schema = get(d, "parametersJsonSchema")
            if params is not None and not isinstance(params, dict):
                raise invalid(f"{where}.parameters", "must be a schema object")
            schema = (
                raw_schema if isinstance(raw_schema, dict) else gemini_schema.from_gemini(params) if params else None
            )
            native = _json_schema_marker() if isinstance(raw_schema, dict) else None
            out.append(
                ir.Tool(name=d["name"], description=d.get("description"), parameters=schema, provider_specific=native)
            )
    return out


def _tool_choice_in(raw: Any) -> ir.ToolChoice | None:
    fcc = get(raw, "functionCallingConfig") if isinstance(raw, dict) else None
    if fcc is None:
        return None
    mode = fcc.get("mode", "AUTO") if isinstance(fcc, dict) else None
    if not isinstance(mode, str) or mode.upper() not in ("AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED"):
        raise invalid("toolConfig.functionCallingConfig.mode", "must be AUTO, ANY, NONE or VALIDATED")
    mode = mode.upper()
    names = get(fcc, "allowedFunctionNames")
    if mode == "ANY" and isinstance(names, list) and len(names) == 1 and isinstance(names[0], str):
        return ir.ToolChoice(mode="tool", name=names[0])
    narrowing = mode in ("ANY", "VALIDATED") and isinstance(names, list)
    allowed = [n for n in names if isinstance(n, str)] if narrowing else None
    return ir.ToolChoice(
        mode="required" if mode == "ANY" else "none" if mode == "NONE" else "auto", allowed=allowed or None
    )


def _tool_config_extra(tc: Any) -> dict[str, Any] | None:
    """The whole ``toolConfig`` when it says more than a tool choice can (VALIDATED mode, retrievalConfig …):
    kept verbatim for Gemini, and a field other providers refuse or drop by the parameter policy."""
    if not isinstance(tc, dict):
        return None
    fcc = get(tc, "functionCallingConfig")
    mode = str(fcc.get("mode", "AUTO")).upper() if isinstance(fcc, dict) else "AUTO"
    more = {_camel(k) for k in tc} - {"functionCallingConfig"}
    more |= {_camel(k) for k in fcc} - {"mode", "allowedFunctionNames"} if isinstance(fcc, dict) else set()
    # VALIDATED over some functions is OpenAI's allowed_tools in auto mode (a tool choice); over all of
    # them it has no counterpart
    return tc if more or (mode == "VALIDATED" and not get(fcc, "allowedFunctionNames")) else None


def _generation_config_in(gc: Any, req: ir.Request) -> dict[str, Any]:
    """Fill the request from ``generationConfig``; return the fields the IR has no place for."""
    if not isinstance(gc, dict):
        raise invalid("generationConfig", "must be an object")
    rest = dict(gc)
    for wire, attr in _SAMPLING:
        v = get(gc, wire)
        rest = _drop(rest, wire)
        if v is None:
            continue
        where = f"generationConfig.{wire}"
        if attr == "stop":
            if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
                raise invalid(where, "must be a list of strings")
        elif attr == "logprobs":
            if not isinstance(v, bool):
                raise invalid(where, "must be a boolean")
        elif isinstance(v, bool) or not isinstance(v, int | float):
            raise invalid(where, f"expected a number, got {type(v).__name__}")
        elif attr in ("max_tokens", "seed", "n", "top_logprobs", "top_k"):
            if v != int(v) or (attr in ("max_tokens", "n") and v < 1):
                raise invalid(
                    where, "must be a positive integer" if attr in ("max_tokens", "n") else "must be an integer"
                )
            v = int(v)
        else:
            v = float(v)
        setattr(req, attr, v)
    mime, schema, json_schema = get(gc, "responseMimeType"), get(gc, "responseSchema"), get(gc, "responseJsonSchema")
    if mime == "application/json" or (mime is None and (schema or json_schema)):
        rest = _drop(rest, "responseMimeType", "responseSchema", "responseJsonSchema")
        if isinstance(json_schema, dict):
            req.response_format = ir.ResponseFormat(
                type="json_schema", schema=json_schema, provider_specific=_json_schema_marker()
            )
        elif isinstance(schema, dict):
            req.response_format = ir.ResponseFormat(type="json_schema", schema=gemini_schema.from_gemini(schema))
        else:
            req.response_format = ir.ResponseFormat(type="json_object")
    elif mime == "text/plain" and schema is None:
        rest = _drop(rest, "responseMimeType")
    thinking = get(gc, "thinkingConfig")
    if thinking is not None:
        rest = _drop(rest, "thinkingConfig")
        left = _thinking_in(thinking, req)
        if left:
            rest["thinkingConfig"] = left
    return rest


def _thinking_in(tc: Any, req: ir.Request) -> dict[str, Any]:
    if not isinstance(tc, dict):
        raise invalid("generationConfig.thinkingConfig", "must be an object")
    budget, level, include = get(tc, "thinkingBudget"), get(tc, "thinkingLevel"), get(tc, "includeThoughts")
    if budget is not None:
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < DYNAMIC:
            raise invalid(
                "generationConfig.thinkingConfig.thinkingBudget", "must be an integer (-1 for a dynamic budget)"
            )
        req.thinking_budget = budget
    if level is not None:
        effort = str(level).lower()
        if effort not in _LEVELS:
            raise invalid("generationConfig.thinkingConfig.thinkingLevel", f"{level!r} is not a thinking level")
        req.reasoning_effort = cast(ir.ReasoningEffort, effort)
    thinking_on = (budget is not None and budget != 0) or level is not None
    # the IR asks for thoughts whenever thinking is on; say so when the client asked otherwise
    if include is not None and bool(include) != thinking_on:
        return {"includeThoughts": bool(include)}
    return {}
