"""A provider's own web search, asked for in one dialect and sent in another's, pure.

Three ways to ask, one meaning:

- OpenAI: the ``web_search_options`` body key (``user_location.approximate``, ``search_context_size``),
  taken by OpenAI's search models (``gpt-4o-search-preview``, ``gpt-5-search-api`` …) and OpenRouter;
- Anthropic: the ``web_search`` server tool (``{"type": "web_search_20250305", "name": "web_search"}``,
  with ``user_location``, ``allowed_domains``, ``blocked_domains``, ``max_uses``);
- Gemini: the ``googleSearch`` tool (``{"googleSearch": {}}``).

:func:`take` finds the ask in a request (an OpenAI caller's ``web_search_options`` extra, or a web-search
builtin tool); :func:`place` writes it in the target's format, and names the caller's fields that the
target has no place for (the parameter policy in ``llmswitch.providers.params`` then refuses or drops
them). A target with no web search at all gets the whole ask named.

    >>> s = Search(where="web_search_options", dialect="openai_chat",
    ...            native={"user_location": {"type": "approximate", "approximate": {"country": "GB"}}})
    >>> placed = place(s, "anthropic_messages", provider="anthropic", model="claude-sonnet-4-5")
    >>> placed.tools[0].builtin
    {'type': 'web_search_20250305', 'name': 'web_search', 'user_location': {'type': 'approximate', 'country': 'GB'}}
"""

from __future__ import annotations

from typing import Any, NamedTuple

from llmswitch import ir
from llmswitch.dialects._json import invalid

OPTIONS_KEY = "web_search_options"
ANTHROPIC_TOOL = "web_search_20250305"
_GEMINI_KEYS = ("googleSearch", "google_search")
# OpenAI-compatible providers whose Chat Completions take web_search_options for any model
ANY_MODEL = frozenset(("openrouter",))
# OpenAI's own API takes it only for its search models
SEARCH_MODEL_PROVIDERS = frozenset(("openai", "azure"))
# Gemini deployments whose googleSearch takes excludeDomains (Vertex AI's; the Gemini API's has none)
EXCLUDE_DOMAINS = frozenset(("vertex_ai",))
# Anthropic tool fields that say nothing to the search itself
_ANTHROPIC_FORM = frozenset(("type", "name", "cache_control"))


class Search(NamedTuple):
    """A request's ask for web search: the caller's name for it, the format it was written in, and itself."""

    where: str
    dialect: str
    native: dict[str, Any]


class Placed(NamedTuple):
    """The ask in the target's format: tools to add, body keys to add, and the caller's fields left out."""

    tools: list[ir.Tool]
    extra: dict[str, Any]
    unsupported: list[str]


def is_search_tool(t: ir.Tool) -> bool:
    b = t.builtin
    if b is None:
        return False
    kind = b.get("type")
    return (isinstance(kind, str) and kind.startswith("web_search_")) or any(k in b for k in _GEMINI_KEYS)


def take(
    tools: list[ir.Tool] | None, extra: dict[str, Any] | None, caller: str | None
) -> tuple[Search | None, list[ir.Tool] | None, dict[str, Any] | None]:
    """The web-search ask of a request, and its tools and extras without it (None when it has none)."""
    if extra and isinstance(extra.get(OPTIONS_KEY), dict) and caller in (None, "openai_chat"):
        rest = {k: v for k, v in extra.items() if k != OPTIONS_KEY}
        return Search(OPTIONS_KEY, "openai_chat", extra[OPTIONS_KEY]), tools, rest
    for i, t in enumerate(tools or ()):
        if is_search_tool(t) and t.builtin is not None:
            b = t.builtin
            if "type" in b:
                search = Search(f"tools[{i}]", "anthropic_messages", b)
            else:
                key = next(k for k in _GEMINI_KEYS if k in b)
                value = b[key]
                search = Search(f"tools[{i}].googleSearch", "gemini", value if isinstance(value, dict) else {})
            rest_tools = [x for j, x in enumerate(tools or ()) if j != i]
            return search, rest_tools, extra
    return None, tools, extra


def can_search(dialect: str, provider: str, model: str, known: bool) -> bool:
    """Whether a deployment has a web search (``known``: the provider's API is one llmswitch states)."""
    if dialect in ("anthropic_messages", "gemini"):
        return True
    if dialect != "openai_chat":
        return False
    if provider in SEARCH_MODEL_PROVIDERS:
        return "search" in model.rsplit("/", 1)[-1].lower()
    return provider in ANY_MODEL or not known


def place(s: Search, dialect: str, *, provider: str, model: str, known: bool = True) -> Placed:
    """``s`` as ``dialect`` writes it, for ``provider``'s ``model``."""
    if not can_search(dialect, provider, model, known):
        return Placed([], {}, [s.where])
    if s.dialect == dialect:
        if dialect == "openai_chat":
            return Placed([], {OPTIONS_KEY: s.native}, [])
        builtin = s.native if dialect == "anthropic_messages" else {"googleSearch": s.native}
        return Placed([_tool(builtin)], {}, [])
    ask, unsupported = _read(s)
    if dialect == "anthropic_messages":
        tool: dict[str, Any] = {"type": ANTHROPIC_TOOL, "name": "web_search"}
        for key in ("max_uses", "allowed_domains", "blocked_domains"):
            if key in ask:
                tool[key] = ask.pop(key)
        if "user_location" in ask:
            tool["user_location"] = {"type": "approximate", **ask.pop("user_location")}
        return Placed([_tool(tool)], {}, unsupported + [_name(s, k) for k in ask])
    if dialect == "gemini":
        search: dict[str, Any] = {}
        if provider in EXCLUDE_DOMAINS and "blocked_domains" in ask:
            search["excludeDomains"] = ask.pop("blocked_domains")
        return Placed([_tool({"googleSearch": search})], {}, unsupported + [_name(s, k) for k in ask])
    options: dict[str, Any] = {}
    if "user_location" in ask:
        options["user_location"] = {"type": "approximate", "approximate": ask.pop("user_location")}
    if "search_context_size" in ask:
        options["search_context_size"] = ask.pop("search_context_size")
    return Placed([], {OPTIONS_KEY: options}, unsupported + [_name(s, k) for k in ask])


def _tool(builtin: dict[str, Any]) -> ir.Tool:
    return ir.Tool(name="web_search" if "type" in builtin else "googleSearch", builtin=builtin)


# the common fields, by the names Anthropic and OpenAI give them
_FIELD_OF: dict[str, dict[str, str]] = {
    "openai_chat": {"user_location": "user_location", "search_context_size": "search_context_size"},
    "anthropic_messages": {
        "user_location": "user_location",
        "max_uses": "max_uses",
        "allowed_domains": "allowed_domains",
        "blocked_domains": "blocked_domains",
    },
    "gemini": {"excludeDomains": "blocked_domains", "exclude_domains": "blocked_domains"},
}


def _read(s: Search) -> tuple[dict[str, Any], list[str]]:
    """The ask's common fields (a location as ``{city, region, country, timezone}``), and the caller's
    fields that have no common meaning."""
    ask: dict[str, Any] = {}
    unsupported: list[str] = []
    names = _FIELD_OF[s.dialect]
    for key, value in s.native.items():
        if value is None or (s.dialect == "anthropic_messages" and key in _ANTHROPIC_FORM):
            continue
        common = names.get(key)
        if common is None:
            unsupported.append(f"{s.where}.{key}")
        elif common == "user_location":
            loc = value.get("approximate") if s.dialect == "openai_chat" and isinstance(value, dict) else value
            if not isinstance(loc, dict):
                raise invalid(f"{s.where}.{key}", "must be an approximate location object")
            fields = {k: v for k, v in loc.items() if k != "type" and v is not None}
            if fields:
                ask[common] = fields
        else:
            ask[common] = value
    return ask, unsupported


def _name(s: Search, common: str) -> str:
    """The caller's name for a common field the target cannot take."""
    own = next((k for k, v in _FIELD_OF[s.dialect].items() if v == common), common)
    return f"{s.where}.{own}"
