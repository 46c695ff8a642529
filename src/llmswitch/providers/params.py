"""What each provider's API accepts, and the policy for a request carrying what it does not.

Every provider states the parameters it takes (:data:`ACCEPTS`, one row per provider and per
OpenAI-compatible preset whose documented API differs). A parameter the chosen deployment cannot take
is, in this order:

1. **mapped** where it has a meaning there: a thinking budget (Anthropic's ``thinking``, Gemini's
   ``thinkingBudget``) becomes an OpenAI ``reasoning_effort`` bucket (``dialects.thinking``); an
   Anthropic caller's adaptive thinking and ``output_config.effort`` an effort or a dynamic budget;
   Mistral's seed is ``random_seed``;
2. **dropped and reported** with ``drop_params`` (per call, per deployment, or LiteLLM's
   ``litellm_settings.drop_params``), or when listed in ``additional_drop_params``;
3. otherwise **refused**: :class:`~llmswitch.errors.UnsupportedParamsError`, a 400 naming the
   caller's own field and the deployment, before any upstream call.

Parameters are named as the IR names them (OpenAI's names; ``thinking_budget`` for a thinking
budget). Extras (body keys the IR has no field for) are checked too: written for another provider's
format they mean nothing to this one; from an OpenAI caller they pass to OpenAI-compatible servers
(vendor parameters) but to Anthropic and Gemini only if those APIs have them. ``user`` and
``metadata`` are the gateway's own (spend tracking) and never refused. A provider with no row here
(a third-party one) takes every parameter; another format's extras still mean nothing to it.

    >>> req = ir.Request(model="m", messages=[], top_k=40, temperature=0.2)
    >>> out, dropped = apply(req, "openai", model="gpt-4o", deployment="main", drop=True)
    >>> (out.top_k, out.temperature, dropped)
    (None, 0.2, ('top_k',))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import msgspec

from llmswitch import ir
from llmswitch.dialects import (
    anthropic_messages,
    bedrock_converse,
    gemini_request,
    ollama_chat,
    openai_request,
    web_search,
)
from llmswitch.dialects.content_support import (
    choice_without_narrowing,
    unsupported_content,
    unsupported_tool_choice,
    without,
)
from llmswitch.dialects.drop_params import CALL_KEYS
from llmswitch.dialects.openai_tools import unsupported_custom_tools, without_custom_tools
from llmswitch.dialects.thinking import DYNAMIC, effort_for_budget
from llmswitch.errors import UnsupportedParamsError

# IR request fields the policy looks at, and when each counts as asked for: a value that is every
# API's default (one choice, no logprobs, parallel tool calls allowed) asks nothing of the target
_ASKED: dict[str, Callable[[Any], bool]] = {
    "temperature": lambda v: v is not None,
    "top_p": lambda v: v is not None,
    "top_k": lambda v: v is not None,
    "max_tokens": lambda v: v is not None,
    "stop": lambda v: bool(v),
    "seed": lambda v: v is not None,
    "n": lambda v: v is not None and v > 1,
    "presence_penalty": lambda v: v is not None,
    "frequency_penalty": lambda v: v is not None,
    "logit_bias": lambda v: bool(v),
    "logprobs": lambda v: v is True,
    "top_logprobs": lambda v: v is not None,
    "reasoning_effort": lambda v: v is not None,
    "thinking_budget": lambda v: v is not None,
    "parallel_tool_calls": lambda v: v is False,
    "response_format": lambda v: v is not None,
    "tools": lambda v: bool(v),
    "tool_choice": lambda v: v is not None,
}
PARAMS = frozenset(_ASKED)


class Accepts(NamedTuple):
    """One provider's API: the IR parameters it takes, and the extras."""

    params: frozenset[str]
    # top-level body keys it takes from an OpenAI caller's extras; None: any (OpenAI-compatible
    # servers take vendor parameters the IR has no name for)
    extras: frozenset[str] | None = None
    # extras it is known to refuse even so
    rejects: frozenset[str] = frozenset()
    # IR parameter -> the API's own body key for it
    renames: Mapping[str, str] = {}


# OpenAI Chat Completions (api.openai.com, Azure): no top_k; a thinking budget is mapped to an effort,
# and a vendor's own ``thinking`` switch (DeepSeek's) is refused
_OPENAI = PARAMS - {"top_k", "thinking_budget"}
# OpenAI-compatible servers that also document top_k (vLLM, Together, Fireworks, OpenRouter)
_OPENAI_TOP_K = _OPENAI | {"top_k"}
_OLLAMA_NATIVE = _OPENAI_TOP_K - {"logit_bias", "n", "parallel_tool_calls"}
# OpenAI's own body keys (spoken answers, predicted outputs, storage, tiers, web search)
_OPENAI_ONLY = frozenset(
    ("store", "service_tier", "prediction", "modalities", "audio", "web_search_options", "safety_identifier")
)

ACCEPTS: dict[str, Accepts] = {
    "openai": Accepts(_OPENAI, rejects=frozenset({"thinking"})),
    "azure": Accepts(_OPENAI, rejects=frozenset({"thinking"})),
    "anthropic": Accepts(
        frozenset(
            (
                *("temperature", "top_p", "top_k", "max_tokens", "stop", "reasoning_effort", "thinking_budget"),
                *("tools", "tool_choice", "parallel_tool_calls", "response_format"),
            )
        ),
        extras=anthropic_messages.EXTRA_KEYS,
    ),
    "gemini": Accepts(PARAMS - {"logit_bias", "parallel_tool_calls"}, extras=gemini_request.EXTRA_KEYS),
    # console.groq.com/docs/openai: logprobs, logit_bias and top_logprobs unsupported, n must be 1
    "groq": Accepts(_OPENAI - {"logprobs", "top_logprobs", "logit_bias", "n"}),
    # api-docs.deepseek.com: no n, seed or logit_bias; thinking is its own {"type": "enabled"} (an extra)
    "deepseek": Accepts(_OPENAI - {"n", "seed", "logit_bias"}),
    # docs.mistral.ai: no logit_bias or logprobs; the seed is called random_seed
    "mistral": Accepts(_OPENAI - {"logit_bias", "logprobs", "top_logprobs"}, renames={"seed": "random_seed"}),
    # Ollama's /api/chat (docs.ollama.com/api/chat): sampling options, format, think, logprobs; no n,
    # logit_bias or parallel_tool_calls (tool_choice: only "auto", or "none" as no tools; see dialects.ollama_chat)
    "ollama_chat": Accepts(_OLLAMA_NATIVE, extras=ollama_chat.EXTRA_KEYS),
    # ollama/ is the native API, or under an api_base ending in /v1 the OpenAI-compatible one
    # (docs.ollama.com/api/openai-compatibility: no logit_bias, n or logprobs): what both take
    # (vendor extras pass, as to any OpenAI-compatible server, but OpenAI's own fields have no meaning in
    # either API)
    "ollama": Accepts(_OLLAMA_NATIVE - {"top_k", "logprobs", "top_logprobs"}, rejects=_OPENAI_ONLY),
    "xai": Accepts(_OPENAI),
    "hosted_vllm": Accepts(_OPENAI_TOP_K),
    "together_ai": Accepts(_OPENAI_TOP_K),
    "fireworks_ai": Accepts(_OPENAI_TOP_K),
    "openrouter": Accepts(_OPENAI_TOP_K),
    # llama-cpp-python's create_chat_completion (llmswitch.local.requests): one choice, no logprobs
    # (they need the model loaded with logits for every token), no reasoning switch; its own sampling knobs
    "llamacpp": Accepts(
        _OPENAI_TOP_K - {"n", "logprobs", "top_logprobs", "reasoning_effort"},
        extras=frozenset(
            ("min_p", "typical_p", "repeat_penalty", "tfs_z", "mirostat_mode", "mirostat_tau", "mirostat_eta")
        ),
    ),
}

# Vertex AI serves Gemini's API: what Gemini takes, it takes
ACCEPTS["vertex_ai"] = ACCEPTS["gemini"]
# Bedrock's Converse API (docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html):
# inferenceConfig's four, tools, and top_k / Anthropic's thinking through additionalModelRequestFields
ACCEPTS["bedrock"] = Accepts(
    frozenset(("temperature", "top_p", "top_k", "max_tokens", "stop", "thinking_budget", "tools", "tool_choice")),
    extras=bedrock_converse.EXTRA_KEYS,
)

# OpenAI extras at their default value: they ask nothing of any provider (clients send them anyway)
_ASKS_NOTHING: dict[str, tuple[Any, ...]] = {
    "store": (False,),
    "modalities": (["text"],),
    "service_tier": ("auto", "default"),
}

_ANYTHING = Accepts(PARAMS)

_FIELD_NAMES: dict[str | None, Mapping[str, str]] = {
    None: openai_request.FIELD_NAMES,
    "anthropic_messages": anthropic_messages.FIELD_NAMES,
    "gemini": gemini_request.FIELD_NAMES,
}


_MISSING: dict[str, tuple[tuple[str, Callable[[Any], bool]], ...]] = {}


def _missing(provider: str, accepts: Accepts) -> tuple[tuple[str, Callable[[Any], bool]], ...]:
    """The parameters ``provider`` does not take (usually two or three of them): only these are looked at."""
    found = _MISSING.get(provider)
    if found is None:
        found = _MISSING[provider] = tuple((n, asked) for n, asked in _ASKED.items() if n not in accepts.params)
    return found


def caller_field(name: str, dialect: str | None) -> str:
    """What a caller writing ``dialect`` calls the IR parameter ``name`` (an extra's key is its own)."""
    return _FIELD_NAMES.get(dialect, {}).get(name, name)


def apply(
    req: ir.Request,
    provider: str,
    *,
    model: str,
    deployment: str,
    drop: bool = False,
    additional: Iterable[str] = (),
    dialect: str | None = None,
) -> tuple[ir.Request, tuple[str, ...]]:
    """``req`` as ``provider`` can take it, and the caller's names of what was dropped.

    ``drop`` and ``additional`` are the deployment's (and the router's) settings; the request's own
    ``drop_params`` / ``additional_drop_params`` add to them. ``dialect`` is the provider's wire format
    (an extra written in it is always its own). Raises :class:`UnsupportedParamsError`.
    """
    accepts = ACCEPTS.get(provider)
    more = list(additional) + list(req.additional_drop_params or ())
    content = unsupported_content(req, dialect) if dialect is not None and req.messages else []
    choice = unsupported_tool_choice(req, dialect) if dialect is not None else None
    custom = unsupported_custom_tools(req, dialect) if dialect is not None else []
    # a web search is put back in the target's format below; with no format named it is left as it is
    search, tools, extra = (
        web_search.take(req.tools, req.extra, req.client_dialect)
        if dialect is not None
        else (None, req.tools, req.extra)
    )
    if accepts is None:
        # a provider without a row takes every parameter; another format's extras still mean nothing to it
        foreign = req.extra and req.extra_dialect not in (None, dialect)
        if not more and not content and choice is None and not custom and not foreign and search is None:
            return _without_settings(req), ()
        accepts = _ANYTHING
    changes: dict[str, Any] = {}
    if search is not None:
        # taken out here, put back at the end in the target's own format (or refused or dropped)
        changes["tools"] = tools or None
    extra = dict(extra) if extra else None
    dropped: list[str] = []
    refused: list[str] = []
    drop = drop or bool(req.drop_params)
    caller = req.client_dialect
    if more:
        _drop_listed(req, more, caller, changes, extra, dropped)
    if extra and req.extra_dialect == "anthropic_messages" != dialect:
        _map_anthropic_thinking(req, extra, changes)
    _map_thinking(req, accepts, changes)
    for name, asked in _missing(provider, accepts):
        if asked(_now(req, changes, name)):
            (dropped if drop else refused).append(caller_field(name, caller))
            changes[name] = None
    if extra:
        for key in list(extra):
            if not _extra_ok(key, extra[key], req.extra_dialect, accepts, dialect):
                if req.extra_dialect is None and extra[key] in _ASKS_NOTHING.get(key, ()):
                    del extra[key]  # OpenAI's default, said out loud: nothing to send, nothing lost
                    continue
                names = _extra_names(key, extra[key])
                (dropped if drop else refused).extend(names)
                del extra[key]
    for name, key in accepts.renames.items():
        value = changes.get(name, getattr(req, name))
        if value is not None:
            extra = {**(extra or {}), key: value}
            changes[name] = None
    if content:
        # documents, audio and options the target's format cannot carry: refused or dropped like parameters
        (dropped if drop else refused).extend(f.field for f in content)
        changes["messages"] = without(req, content).messages
    if choice is not None and req.tool_choice is not None and dialect is not None:
        # with drop_params the choice stays, over every tool (Anthropic's "any" for a required choice),
        # or for Ollama, with no choice to make, the tools it was to choose from are offered
        (dropped if drop else refused).append(choice)
        changes["tool_choice"] = choice_without_narrowing(req.tool_choice, dialect)
    if custom:
        # OpenAI's custom tools (free-form input) have no counterpart in another API
        (dropped if drop else refused).extend(custom)
        changes.update(without_custom_tools(msgspec.structs.replace(req, **changes) if changes else req))
    if search is not None and search.where in more:
        dropped.append(search.where)  # additional_drop_params names it
    elif search is not None and dialect is not None:
        placed = web_search.place(search, dialect, provider=provider, model=model, known=provider in ACCEPTS)
        (dropped if drop else refused).extend(placed.unsupported)
        if placed.tools:
            changes["tools"] = [*(changes.get("tools") or ()), *placed.tools]
        if placed.extra:
            extra = {**(extra or {}), **placed.extra}
            if req.extra_dialect not in (None, dialect):
                changes["extra_dialect"] = dialect  # what is left is in the target's format now
    if refused:
        raise _unsupported(refused, provider, model, deployment)
    if (extra or None) != req.extra:
        changes["extra"] = extra or None
    return _without_settings(req, changes), tuple(dropped)


def _without_settings(req: ir.Request, changes: dict[str, Any] | None = None) -> ir.Request:
    if req.drop_params is not None or req.additional_drop_params is not None:
        changes = {**(changes or {}), "drop_params": None, "additional_drop_params": None}
    return msgspec.structs.replace(req, **changes) if changes else req


def _drop_listed(
    req: ir.Request,
    names: list[str],
    caller: str | None,
    changes: dict[str, Any],
    extra: dict[str, Any] | None,
    dropped: list[str],
) -> None:
    """``additional_drop_params``: by the IR's (OpenAI's) name or the caller's own, or an extra's key."""
    own = {caller_field(p, caller): p for p in PARAMS}
    aliases = {"thinking": "thinking_budget", "max_completion_tokens": "max_tokens"}
    for raw in names:
        name = own.get(raw) or aliases.get(raw) or raw
        if name in PARAMS:
            if name not in changes and _ASKED[name](getattr(req, name)):
                dropped.append(caller_field(name, caller))
                changes[name] = None
        elif name in ("user", "metadata"):
            if getattr(req, name) is not None:
                dropped.append(caller_field(name, caller))
                changes[name] = None
        elif extra is not None and raw in extra:
            dropped.extend(_extra_names(raw, extra.pop(raw)))


def _now(req: ir.Request, changes: dict[str, Any], name: str) -> Any:
    return changes[name] if name in changes else getattr(req, name)


def _map_thinking(req: ir.Request, accepts: Accepts, changes: dict[str, Any]) -> None:
    """A thinking budget to a target without budgets but with efforts becomes an effort bucket."""
    budget = _now(req, changes, "thinking_budget")
    if budget is None or "thinking_budget" in accepts.params or "reasoning_effort" not in accepts.params:
        return
    changes["thinking_budget"] = None
    if _now(req, changes, "reasoning_effort") is None:
        # 0 (thinking off) sends nothing: a model that cannot reason does not, and OpenAI's reasoning
        # models have no off switch every one of them takes
        effort = effort_for_budget(budget)
        if effort is not None:
            changes["reasoning_effort"] = effort


# Anthropic's effort levels as IR efforts ("max" is past the highest other providers have)
_ANTHROPIC_EFFORTS: dict[Any, ir.ReasoningEffort] = {
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "xhigh",
    "max": "xhigh",
}


def _map_anthropic_thinking(req: ir.Request, extra: dict[str, Any], changes: dict[str, Any]) -> None:
    """An Anthropic caller's adaptive thinking and ``output_config.effort``, bound for another provider:
    an effort, or without one a dynamic budget (the model decides), mapped on from there as any other."""
    oc = extra.get("output_config")
    effort = _ANTHROPIC_EFFORTS.get(oc.get("effort")) if isinstance(oc, dict) else None
    if effort is not None and _now(req, changes, "reasoning_effort") is None:
        changes["reasoning_effort"] = effort
        rest = {k: v for k, v in oc.items() if k != "effort"}  # type: ignore[union-attr]
        if rest:
            extra["output_config"] = rest
        else:
            del extra["output_config"]
    thinking = extra.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "adaptive":
        del extra["thinking"]
        if _now(req, changes, "reasoning_effort") is None and _now(req, changes, "thinking_budget") is None:
            changes["thinking_budget"] = DYNAMIC


def _extra_ok(key: str, value: Any, written_for: str | None, accepts: Accepts, dialect: str | None) -> bool:
    if written_for is not None:
        return written_for == dialect  # another provider's own field means nothing here
    if key in CALL_KEYS or key in accepts.rejects:
        return False
    if accepts.extras is None:
        return True
    if key == "service_tier":
        # Anthropic has one, with its own values; OpenAI's "flex", "priority" … it refuses
        return value in ("auto", "standard_only")
    return key in accepts.extras


def _extra_names(key: str, value: Any) -> list[str]:
    """The caller's names for an extra: what is left of a Gemini ``generationConfig`` field by field
    (``generationConfig.responseModalities``, ``generationConfig.thinkingConfig.includeThoughts``)."""
    if key not in ("generationConfig", "generation_config") or not isinstance(value, dict) or not value:
        return [key]
    names: list[str] = []
    for k, v in value.items():
        if isinstance(v, dict) and v:
            names.extend(f"generationConfig.{k}.{kk}" for kk in v)
        else:
            names.append(f"generationConfig.{k}")
    return names


def _unsupported(fields: list[str], provider: str, model: str, deployment: str) -> UnsupportedParamsError:
    listed = ", ".join(f"'{f}'" for f in fields)
    noun = "parameter" if len(fields) == 1 else "parameters"
    target = f"{provider}/{model}"
    where = target if deployment == target else f"{deployment!r} ({target})"
    exc = UnsupportedParamsError(
        f"{where} does not support the {noun} {listed}. To drop unsupported parameters, send "
        "drop_params: true (or set drop_params on the deployment or in litellm_settings).",
        status_code=400,
        provider="llmswitch",
        model=model,
        param=fields[0],
        error_type="invalid_request_error",
        code="unsupported_params",
        should_retry=False,
    )
    exc.params = tuple(fields)
    return exc


# ---------------------------------------------------------------- the fast path


_blockers: dict[tuple[str, frozenset[str]], frozenset[str]] = {}


def passthrough_blockers(provider: str, additional: frozenset[str] = frozenset()) -> frozenset[str]:
    """Top-level keys of an OpenAI body that the policy must see before ``provider`` gets it.

    A body with none of them is relayed as it is (the fast path); one with any takes the full path,
    where :func:`apply` maps, drops or refuses. Computed once per provider and drop list.
    """
    key = (provider, additional)
    found = _blockers.get(key)
    if found is None:
        accepts = ACCEPTS.get(provider)
        # the legacy functions are answered as function_call whoever serves them: always the full path
        keys = set(CALL_KEYS) | set(additional) | {"functions", "function_call"}
        if accepts is not None:
            keys |= accepts.rejects | set(accepts.renames)
            for name in PARAMS - accepts.params:
                keys.add(caller_field(name, None))
                if name == "max_tokens":
                    keys.add("max_completion_tokens")
            if provider not in web_search.ANY_MODEL:
                keys.add(web_search.OPTIONS_KEY)  # which models can search is the policy's to say
        found = _blockers[key] = frozenset(keys)
    return found
