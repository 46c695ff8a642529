"""Web search asked for in one dialect and sent in another's (``dialects.web_search``), through the
parameter policy (``providers.params.apply``): the pure mapping, table by table."""

from __future__ import annotations

from typing import Any

import pytest

from llmswitch import errors, ir
from llmswitch.dialects import anthropic_messages, gemini, openai_chat
from llmswitch.providers import params

LONDON = {"city": "London", "country": "GB"}
MESSAGES = [{"role": "user", "content": "news?"}]


def openai_caller(options: dict[str, Any]) -> ir.Request:
    return openai_chat.decode_request({"model": "m", "messages": MESSAGES, "web_search_options": options})


def anthropic_caller(tool: dict[str, Any]) -> ir.Request:
    body = {
        "model": "m",
        "max_tokens": 9,
        "messages": MESSAGES,
        "tools": [{"type": "web_search_20250305", "name": "web_search", **tool}],
    }
    req = anthropic_messages.decode_request(body)
    req.client_dialect = req.extra_dialect = "anthropic_messages"
    return req


def gemini_caller(search: dict[str, Any]) -> ir.Request:
    req = gemini.decode_request(
        {"contents": [{"role": "user", "parts": [{"text": "news?"}]}], "tools": [{"googleSearch": search}]}, model="m"
    )
    req.client_dialect = req.extra_dialect = "gemini"
    return req


TARGETS = {
    "openai": ("openai", "gpt-4o-search-preview", "openai_chat"),
    "anthropic": ("anthropic", "claude-sonnet-4-5", "anthropic_messages"),
    "gemini": ("gemini", "gemini-2.5-flash", "gemini"),
    "vertex": ("vertex_ai", "gemini-2.5-flash", "gemini"),
}


def sent(req: ir.Request, target: str, drop: bool = False) -> tuple[dict[str, Any], tuple[str, ...]]:
    provider, model, dialect = TARGETS[target]
    out, dropped = params.apply(req, provider, model=model, deployment="d", drop=drop, dialect=dialect)
    if dialect == "openai_chat":
        body = openai_chat.encode_request(out, model=model)
    elif dialect == "anthropic_messages":
        body = anthropic_messages.encode_request(out, model=model)
    else:
        body = gemini.encode_request(out, model=model)
    return body, dropped


@pytest.mark.parametrize(
    ("req", "target", "key", "value"),
    [
        (
            openai_caller({"user_location": {"type": "approximate", "approximate": LONDON}}),
            "anthropic",
            "tools",
            [{"type": "web_search_20250305", "name": "web_search", "user_location": {"type": "approximate", **LONDON}}],
        ),
        (openai_caller({}), "gemini", "tools", [{"googleSearch": {}}]),
        (
            anthropic_caller({"user_location": {"type": "approximate", **LONDON}}),
            "openai",
            "web_search_options",
            {"user_location": {"type": "approximate", "approximate": LONDON}},
        ),
        (anthropic_caller({}), "gemini", "tools", [{"googleSearch": {}}]),
        (
            anthropic_caller({"blocked_domains": ["a.example"]}),
            "vertex",
            "tools",
            [{"googleSearch": {"excludeDomains": ["a.example"]}}],
        ),
        (gemini_caller({}), "openai", "web_search_options", {}),
        (
            gemini_caller({"excludeDomains": ["a.example"]}),
            "anthropic",
            "tools",
            [{"type": "web_search_20250305", "name": "web_search", "blocked_domains": ["a.example"]}],
        ),
        (
            gemini_caller({"timeRangeFilter": {"startTime": "2026-01-01T00:00:00Z"}}),
            "gemini",
            "tools",
            [{"googleSearch": {"timeRangeFilter": {"startTime": "2026-01-01T00:00:00Z"}}}],
        ),
    ],
    ids=[
        "openai-to-anthropic",
        "openai-to-gemini",
        "anthropic-to-openai",
        "anthropic-to-gemini",
        "anthropic-to-vertex",
        "gemini-to-openai",
        "gemini-to-anthropic",
        "gemini-to-gemini",
    ],
)
def test_web_search_in_the_targets_own_form(req: ir.Request, target: str, key: str, value: Any) -> None:
    body, dropped = sent(req, target)
    assert body[key] == value and dropped == ()
    if key != "tools":
        assert "tools" not in body


@pytest.mark.parametrize(
    ("req", "target", "field"),
    [
        (openai_caller({"search_context_size": "low"}), "anthropic", "web_search_options.search_context_size"),
        (
            openai_caller({"user_location": {"type": "approximate", "approximate": LONDON}}),
            "gemini",
            "web_search_options.user_location",
        ),
        (anthropic_caller({"max_uses": 2}), "openai", "tools[0].max_uses"),
        (anthropic_caller({"blocked_domains": ["a.example"]}), "gemini", "tools[0].blocked_domains"),
        (gemini_caller({"excludeDomains": ["a.example"]}), "openai", "tools[0].googleSearch.excludeDomains"),
    ],
)
def test_a_setting_with_no_place_is_refused_or_dropped(req: ir.Request, target: str, field: str) -> None:
    with pytest.raises(errors.UnsupportedParamsError) as exc:
        sent(req, target)
    assert exc.value.params == (field,)
    _, dropped = sent(req, target, drop=True)
    assert dropped == (field,)


@pytest.mark.parametrize(
    ("provider", "model", "searches"),
    [
        ("openai", "gpt-4o-mini", False),
        ("openai", "gpt-4o-mini-search-preview", True),
        ("azure", "my-deployment", False),
        ("openrouter", "anthropic/claude-sonnet-4.5", True),
        ("groq", "llama-3.3-70b-versatile", False),
        ("xai", "grok-4", False),
        ("my_own_server", "any", True),
    ],
)
def test_which_openai_compatible_deployments_search(provider: str, model: str, searches: bool) -> None:
    req = openai_caller({})
    if searches:
        out, _ = params.apply(req, provider, model=model, deployment="d", dialect="openai_chat")
        assert out.extra == {"web_search_options": {}}
    else:
        with pytest.raises(errors.UnsupportedParamsError) as exc:
            params.apply(req, provider, model=model, deployment="d", dialect="openai_chat")
        assert exc.value.params == ("web_search_options",)


def test_additional_drop_params_names_it() -> None:
    req = openai_caller({})
    req.additional_drop_params = ["web_search_options"]
    out, dropped = params.apply(req, "anthropic", model="claude", deployment="d", dialect="anthropic_messages")
    assert dropped == ("web_search_options",) and not out.tools and not out.extra
