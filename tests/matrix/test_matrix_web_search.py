"""A provider's web search (issue 14, section 3), asked for in each client's own way, reaches every family
in that family's own way, or the parameter policy refuses or drops it.

- OpenAI clients (and ``llmswitch.completion``): ``web_search_options``, which OpenAI's API takes only
  for its search models (the ``s-openai`` deployment here serves ``gpt-4o-search-preview``);
- Anthropic clients: the ``web_search`` server tool (``web_search_20250305``);
- google-genai clients: the ``googleSearch`` tool.

What the upstream received is judged by the provider's published spec (OpenAI, Anthropic) or documented
request rules (Gemini, Ollama).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from harness import (
    KEYS,
    Ask,
    FakeUpstream,
    Seen,
    ServedGateway,
    ask,
    dropped,
    gateway_config,
    the_request,
)

import llmswitch
from llmswitch.testing import Reply

QUESTION = "Who won the match last night?"
SEARCH_MODEL = "gpt-4o-search-preview"
LONDON = {"city": "London", "country": "GB", "timezone": "Europe/London"}


@pytest.fixture(scope="module")
def gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    """The matrix's deployments, and ``s-openai``/``sd-openai``: an OpenAI search model (refusing / dropping)."""
    db = tmp_path_factory.mktemp("websearch") / "keys.db"
    text = gateway_config(upstream, str(db))
    rows = "".join(
        f"""  - model_name: {name}
    litellm_params:
      model: openai/{SEARCH_MODEL}
      api_base: "{upstream.openai_base}"
      api_key: {KEYS["openai"]}{extra}
"""
        for name, extra in (("s-openai", ""), ("sd-openai", "\n      drop_params: true"))
    )
    with ServedGateway(text.replace("general_settings:", rows + "general_settings:", 1)) as served:
        yield served


def search_ask(
    openai_options: dict[str, Any] | None = None,
    anthropic_tool: dict[str, Any] | None = None,
    google_search: dict[str, Any] | None = None,
) -> Ask:
    """The question with each client's own ask for web search (with the given settings)."""
    messages = [{"role": "user", "content": QUESTION}]
    return Ask(
        openai={"messages": messages, "web_search_options": openai_options or {}},
        anthropic={
            "max_tokens": 256,
            "messages": messages,
            "tools": [{"type": "web_search_20250305", "name": "web_search", **(anthropic_tool or {})}],
        },
        gemini={"contents": QUESTION, "config": {"tools": [{"google_search": google_search or {}}]}},
    )


def ask_search(client: str, group: str, request: Ask, up: FakeUpstream, gw: ServedGateway, **kw: Any) -> Seen:
    """``ask``, with the SDK calling the search model itself for an ``s-`` group."""
    if client == "sdk" and group.startswith(("s-", "sd-")):
        kwargs = json.loads(json.dumps(request.openai))
        try:
            r = llmswitch.completion(
                f"openai/{SEARCH_MODEL}",
                api_base=up.openai_base,
                api_key=KEYS["openai"],
                num_retries=0,
                drop_params=group.startswith("sd-") or None,
                **kwargs,
            )
        except llmswitch.APIStatusError as exc:
            return Seen(status=exc.status_code, error=f"{getattr(exc, 'param', None)}|{exc}")
        dropped_params = ", ".join(r._hidden_params["dropped_params"])
        return Seen(text=r.choices[0].message.content or "", headers={"x-llmswitch-dropped-params": dropped_params})
    return ask(client, group, request, gw=gw, up=up, **kw)


# the caller's own name for its web search, as a refusal names it
ASKED_AS = {
    "openai": "web_search_options",
    "sdk": "web_search_options",
    "anthropic": "tools[0]",
    "gemini": "tools[0].googleSearch",
}
CLIENTS = tuple(ASKED_AS)
SEARCHING = {"s-openai": "openai", "m-anthropic": "anthropic", "m-gemini": "gemini"}


def searched_as(family: str, body: dict[str, Any]) -> Any:
    """The web search in a request the upstream received (None: there is none)."""
    if family == "openai":
        assert "tools" not in body
        return body.get("web_search_options")
    tools = body.get("tools") or []
    return tools[0] if len(tools) == 1 else tools or None


EXPECTED = {
    "openai": {},
    "anthropic": {"type": "web_search_20250305", "name": "web_search"},
    "gemini": {"googleSearch": {}},
}


@pytest.mark.parametrize("group", list(SEARCHING))
@pytest.mark.parametrize("client", CLIENTS)
def test_every_clients_web_search_reaches_every_family_in_its_own_form(
    gw: ServedGateway, up: FakeUpstream, client: str, group: str
) -> None:
    up.script(Reply(text="The home side won."))
    seen = ask_search(client, group, search_ask(), up, gw)
    assert seen.status == 200, seen.error
    assert seen.text == "The home side won."
    family = SEARCHING[group]
    assert searched_as(family, the_request(up, family).json) == EXPECTED[family]
    assert dropped(seen) == set()


@pytest.mark.parametrize("family", ["openai", "ollama"])
@pytest.mark.parametrize("client", CLIENTS)
def test_a_deployment_without_web_search_refuses_it_or_drops_it(
    gw: ServedGateway, up: FakeUpstream, client: str, family: str
) -> None:
    """gpt-4o-mini is no search model, and Ollama has no web search: a 400 naming the caller's own field
    before any upstream call, or with drop_params an answer without the search, reported."""
    seen = ask_search(client, f"m-{family}", search_ask(), up, gw)
    assert seen.status == 400
    assert ASKED_AS[client] in seen.error
    assert up.requests == []
    up.script(Reply(text="I cannot search."))
    seen = ask_search(client, f"d-{family}", search_ask(), up, gw)
    assert seen.status == 200, seen.error
    assert dropped(seen) == {ASKED_AS[client]}
    body = the_request(up, family).json
    assert "web_search_options" not in body and not body.get("tools")


# ---------------------------------------------------------------- settings: mapped where the target has them


def test_an_openai_location_becomes_anthropics(gw: ServedGateway, up: FakeUpstream) -> None:
    up.script(Reply(text="ok"))
    options = {"user_location": {"type": "approximate", "approximate": LONDON}}
    seen = ask("openai", "m-anthropic", search_ask(openai_options=options), gw=gw)
    assert seen.status == 200, seen.error
    tool = the_request(up, "anthropic").json["tools"][0]
    assert tool == {
        "type": "web_search_20250305",
        "name": "web_search",
        "user_location": {"type": "approximate", **LONDON},
    }


def test_anthropics_location_becomes_openais_and_its_domain_filter_is_refused_or_dropped(
    gw: ServedGateway, up: FakeUpstream
) -> None:
    """Chat Completions' web_search_options has no domain filter and no cap on searches."""
    tool = {"user_location": {"type": "approximate", **LONDON}, "max_uses": 3, "blocked_domains": ["example.com"]}
    seen = ask("anthropic", "s-openai", search_ask(anthropic_tool=tool), gw=gw)
    assert seen.status == 400
    assert "tools[0].max_uses" in seen.error and "tools[0].blocked_domains" in seen.error
    up.script(Reply(text="ok"))
    seen = ask("anthropic", "sd-openai", search_ask(anthropic_tool=tool), gw=gw)
    assert seen.status == 200, seen.error
    assert dropped(seen) == {"tools[0].max_uses", "tools[0].blocked_domains"}
    sent = the_request(up, "openai").json["web_search_options"]
    assert sent == {"user_location": {"type": "approximate", "approximate": LONDON}}


@pytest.mark.parametrize(
    ("client", "request_", "field", "group", "family"),
    [
        (
            "openai",
            search_ask(openai_options={"user_location": {"type": "approximate", "approximate": LONDON}}),
            "web_search_options.user_location",
            "gemini",
            "gemini",
        ),
        (
            "openai",
            search_ask(openai_options={"search_context_size": "high"}),
            "web_search_options.search_context_size",
            "anthropic",
            "anthropic",
        ),
        (
            "anthropic",
            search_ask(anthropic_tool={"allowed_domains": ["bbc.co.uk"]}),
            "tools[0].allowed_domains",
            "gemini",
            "gemini",
        ),
        (
            "gemini",
            search_ask(
                google_search={
                    "time_range_filter": {"start_time": "2026-01-01T00:00:00Z", "end_time": "2026-02-01T00:00:00Z"}
                }
            ),
            "tools[0].googleSearch.timeRangeFilter",
            "anthropic",
            "anthropic",
        ),
    ],
    ids=[
        "openai-location-to-gemini",
        "openai-context-size-to-anthropic",
        "anthropic-domains-to-gemini",
        "gemini-time-range-to-anthropic",
    ],
)
def test_a_setting_the_target_has_no_place_for_is_refused_or_dropped(
    gw: ServedGateway, up: FakeUpstream, client: str, request_: Ask, field: str, group: str, family: str
) -> None:
    seen = ask(client, f"m-{group}", request_, gw=gw)
    assert seen.status == 400 and field in seen.error, seen.error
    assert up.requests == []
    up.script(Reply(text="ok"))
    seen = ask(client, f"d-{group}", request_, gw=gw)
    assert seen.status == 200, seen.error
    assert dropped(seen) == {field}
    assert searched_as(family, the_request(up, family).json) == EXPECTED[family]


def test_a_gemini_callers_search_beside_its_functions_reaches_anthropic_as_two_tools(
    gw: ServedGateway, up: FakeUpstream
) -> None:
    up.script(Reply(text="ok"))
    decl = {
        "name": "get_score",
        "description": "A match's score",
        "parameters": {"type": "OBJECT", "properties": {"team": {"type": "STRING"}}},
    }
    request_ = Ask(
        gemini={"contents": QUESTION, "config": {"tools": [{"function_declarations": [decl], "google_search": {}}]}}
    )
    seen = ask("gemini", "m-anthropic", request_, gw=gw)
    assert seen.status == 200, seen.error
    tools = the_request(up, "anthropic").json["tools"]
    assert [t.get("type") for t in tools] == [None, "web_search_20250305"]
    assert tools[0]["name"] == "get_score"


def test_same_dialect_web_search_goes_as_written(gw: ServedGateway, up: FakeUpstream) -> None:
    """Anthropic to Anthropic: every field of the tool, as the caller wrote it."""
    tool = {"max_uses": 2, "allowed_domains": ["bbc.co.uk"], "user_location": {"type": "approximate", "country": "GB"}}
    up.script(Reply(text="ok"))
    seen = ask("anthropic", "m-anthropic", search_ask(anthropic_tool=tool), gw=gw)
    assert seen.status == 200, seen.error
    assert the_request(up, "anthropic").json["tools"] == [{"type": "web_search_20250305", "name": "web_search", **tool}]


def test_a_malformed_location_is_a_400_naming_it(gw: ServedGateway, up: FakeUpstream) -> None:
    seen = ask("openai", "m-anthropic", search_ask(openai_options={"user_location": "London"}), gw=gw)
    assert seen.status == 400
    assert "web_search_options.user_location" in seen.error
    assert up.requests == []
