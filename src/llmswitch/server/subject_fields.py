"""The request fields of LiteLLM's user and team API, checked, and the records as that API shows them.

Every check names the field it refused (an OpenAI-format 400 with ``param`` set), so a script that
sends a wrong value learns which one; nothing a client sends reaches the store unchecked.

    >>> subject_fields({"team_alias": "Research", "rpm_limit": 60}, TEAM)
    {'alias': 'Research', 'rpm_limit': 60}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from llmswitch.dialects._json import invalid
from llmswitch.errors import BadRequestError
from llmswitch.server import http
from llmswitch.server.amounts import render_cost
from llmswitch.store import SubjectKind, SubjectRecord, add_duration, parse_duration
from llmswitch.store.records import has_nul

INT64_MAX = 2**63 - 1
_LIMITS = ("rpm_limit", "tpm_limit", "max_parallel_requests")
# What /user/* and /team/* act on, besides the id and alias. A LiteLLM field not listed here (per-model
# limits, a soft budget, tags, members, ...) is refused by name: answering 200 while ignoring a limit
# would leave an admin believing a control is in place that is not.
SUBJECT_FIELDS = frozenset({"models", "max_budget", "spend", *_LIMITS, "metadata", "blocked", "budget_duration"})
# /user/new also makes the user's first key, and takes that key's fields
USER_NEW_FIELDS = frozenset({"auto_create_key", "key_alias", "duration"})


def refuse_unsupported(body: dict[str, Any], accepted: frozenset[str]) -> None:
    """A 400 naming every field of ``body`` this gateway does not act on, so none is ignored silently.

    >>> refuse_unsupported({"models": [], "soft_budget": 1}, SUBJECT_FIELDS)
    Traceback (most recent call last):
    llmswitch.errors.BadRequestError: unsupported field(s): soft_budget
    """
    unknown = [name for name in body if name not in accepted]
    if unknown:
        names = ", ".join(unknown)
        raise BadRequestError(
            f"unsupported field(s): {names}",
            status_code=400,
            provider="llmswitch",
            param=names,
            error_type="invalid_request_error",
        )


@dataclass(frozen=True)
class SubjectAPI:
    """How LiteLLM's API names one kind of subject: ``team_id``/``team_alias``/``team_ids``, or the user's."""

    kind: SubjectKind

    @property
    def id_field(self) -> str:
        return f"{self.kind}_id"

    @property
    def alias_field(self) -> str:
        return f"{self.kind}_alias"

    @property
    def ids_field(self) -> str:
        return f"{self.kind}_ids"

    def accepted(self, *, new: bool) -> frozenset[str]:
        """The fields ``/{kind}/new`` (``new``) or ``/{kind}/update`` acts on; any other is refused.

        ``/team/new`` takes ``auto_create_key`` too, but only ``false``: a team never gets a key of its own,
        and scripts written for ``/user/new`` send it (``true`` is refused by name in :mod:`admin_teams`).
        """
        if not new:
            extra: frozenset[str] = frozenset()
        elif self.kind == "user":
            extra = USER_NEW_FIELDS
        else:
            extra = frozenset({"auto_create_key"})
        if self.kind == "team":  # LiteLLM's team guardrails (kept in the team's metadata) and members
            extra |= {"guardrails", "members_with_roles"}
        return SUBJECT_FIELDS | {self.id_field, self.alias_field} | extra


TEAM = SubjectAPI("team")
USER = SubjectAPI("user")


def subject_id(value: Any, field: str) -> str:
    """A user or team id from a request: a non-empty string without NUL characters."""
    if not isinstance(value, str) or not value:
        raise invalid(field, "a non-empty string id is required")
    if "\x00" in value:
        raise invalid(field, "must not contain NUL characters")
    return value


def query_id(request: http.Request, field: str) -> str:
    """An id from the query string. As LiteLLM does, a ``+`` stays a ``+`` (e-mail addresses used as ids,
    ``a+b@example.com``) instead of becoming a space."""
    value = request.query.get(field)
    if value and " " in value:
        for part in request.query_string.decode("latin-1").split("&"):
            name, _, raw = part.partition("=")
            if unquote(name) == field:
                value = unquote(raw)
                break
    return subject_id(value, field)


def subject_fields(body: dict[str, Any], api: SubjectAPI, *, now: datetime | None = None) -> dict[str, Any]:
    """The record fields a request sets, checked: its alias, models, budget, limits, metadata, blocked.

    ``budget_duration`` also sets ``budget_reset_at`` (one duration from ``now``). The caller refuses
    fields outside :meth:`SubjectAPI.accepted` first (:func:`refuse_unsupported`).
    """
    out: dict[str, Any] = {}
    if api.alias_field in body:
        out["alias"] = _optional_text(body[api.alias_field], api.alias_field)
    if "models" in body:
        out["models"] = _models(body["models"])
    if "max_budget" in body:
        out["max_budget"] = None if body["max_budget"] is None else _amount(body["max_budget"], "max_budget")
    if "spend" in body:
        out["spend"] = _amount(body["spend"], "spend")
    for name in _LIMITS:
        if name in body:
            out[name] = _limit(body[name], name)
    if "metadata" in body:
        out["metadata"] = _metadata(body["metadata"])
    if "blocked" in body:
        if not isinstance(body["blocked"], bool):
            raise invalid("blocked", "must be true or false")
        out["blocked"] = body["blocked"]
    if api.kind == "team" and "members_with_roles" in body:
        out["members_with_roles"] = team_members(body["members_with_roles"])
    if "budget_duration" in body:
        duration = body["budget_duration"]
        out["budget_duration"] = duration
        out["budget_reset_at"] = None if duration is None else reset_time(duration, now or datetime.now(UTC))
    return out


def reset_time(duration: Any, now: datetime) -> datetime:
    """When a budget with this ``budget_duration`` next resets; a 400 naming the field if it is unusable."""
    try:
        parse_duration(duration)
        return add_duration(now, duration)
    except (ValueError, OverflowError) as exc:
        raise invalid("budget_duration", f"{duration!r} is not a usable duration ({exc})") from exc


def team_members(value: Any) -> list[dict[str, str]]:
    """LiteLLM's ``members_with_roles``: ``[{"user_id": "ana", "role": "admin"}, ...]``, one entry per user."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid("members_with_roles", 'must be a list of {"user_id": ..., "role": "admin" or "user"}')
    members: dict[str, str] = {}
    for member in value:
        if not isinstance(member, dict) or not set(member) <= {"user_id", "role"}:
            raise invalid("members_with_roles", 'each member must be {"user_id": ..., "role": "admin" or "user"}')
        user_id, role = member.get("user_id"), member.get("role", "user")
        if not isinstance(user_id, str) or not user_id or "\x00" in user_id:
            raise invalid("members_with_roles", "each member needs a non-empty user_id")
        if role not in ("admin", "user"):
            raise invalid("members_with_roles", f"role must be 'admin' or 'user', got {role!r}")
        members[user_id] = role
    return [{"user_id": user_id, "role": role} for user_id, role in members.items()]


def _optional_text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(field, "must be a string")
    if "\x00" in value:
        raise invalid(field, "must not contain NUL characters")
    return value


def _models(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
        raise invalid("models", "must be a list of model names")
    if any("\x00" in m for m in value):
        raise invalid("models", "model names must not contain NUL characters")
    return value


def _amount(value: Any, field: str) -> float:
    # JSON cannot say NaN, but 1e999 decodes to infinity
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise invalid(field, "must be a non-negative number")
    return float(value)


def _limit(value: Any, field: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64_MAX):
        raise invalid(field, f"must be an integer between 0 and {INT64_MAX}")
    return value


def _metadata(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid("metadata", "must be an object")
    if has_nul(value):
        raise invalid("metadata", "must not contain NUL characters")
    return value


def subject_info(rec: SubjectRecord, api: SubjectAPI) -> dict[str, Any]:
    """A user or team as LiteLLM's API shows it (``team_id``, ``team_alias``, … or the user's names)."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    info: dict[str, Any] = {
        api.id_field: rec.id,
        api.alias_field: rec.alias,
        "models": rec.models,
        "max_budget": render_cost(rec.max_budget),
        "budget_duration": rec.budget_duration,
        "budget_reset_at": iso(rec.budget_reset_at),
        "rpm_limit": rec.rpm_limit,
        "tpm_limit": rec.tpm_limit,
        "max_parallel_requests": rec.max_parallel_requests,
        "metadata": rec.metadata,
        "blocked": rec.blocked,
        "spend": render_cost(rec.spend),
        "created_at": iso(rec.created_at),
        "updated_at": iso(rec.updated_at),
    }
    if api.kind == "team":
        info["members_with_roles"] = rec.members_with_roles
    return info
