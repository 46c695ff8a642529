"""``GET /key/list?search=<text>``: keys whose alias, masked name, user, team or models contain ``text``.

An llmswitch addition to LiteLLM's ``/key/list`` (the dashboard's search box uses it). Matching is
case-insensitive, on the gateway's in-memory copy of every key (the one authentication reads, fresh
within a second), so a search over tens of thousands of keys costs no database query; the result
is ordered and paged as the store's list is (oldest first).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmswitch.server.app import Gateway


def _text_of(rec: Any) -> str:
    parts = [rec.key_alias, rec.key_name, rec.user_id, rec.team_id, *rec.models]
    return " ".join(p for p in parts if p).lower()


def search_keys(gw: Gateway, text: str, *, user_id: str | None = None, team_id: str | None = None) -> list[Any]:
    """The keys matching ``text`` (and ``user_id``/``team_id`` when given), oldest first."""
    wanted = text.lower()
    found = [
        rec
        for rec in gw.keys.records()
        if (user_id is None or rec.user_id == user_id)
        and (team_id is None or rec.team_id == team_id)
        and wanted in _text_of(rec)
    ]
    found.sort(key=lambda rec: (rec.created_at, rec.token_hash))
    return found
