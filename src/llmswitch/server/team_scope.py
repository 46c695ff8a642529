"""Who may call an admin route, and over what: the master key (everything) or a team admin (one team).

A team admin, as LiteLLM has it, is a user with role ``admin`` in a team's ``members_with_roles``. Here
such a user acts through a key of that team: a key whose ``team_id`` is the team and whose ``user_id``
is one of its admins. Every admin route that a team admin may use reads or changes only that team's
keys, users and spend; naming another team (or a key or user outside it) is refused with a 403 that
says why, so the limit holds for scripts as well as for the dashboard.

    >>> scope = admin_scope(gw, request)           # doctest: +SKIP
    >>> team_id = scope.team_filter(request.query.get("team_id"))  # None for the master key: every team

Membership is read from the gateway's in-memory teams (:class:`~llmswitch.server.subjects.SubjectCache`),
so a change made through ``/team/update`` on this gateway applies at once, and on others at their next
refresh (a second by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmswitch.errors import PermissionDeniedError

if TYPE_CHECKING:
    from llmswitch.server import http
    from llmswitch.server.app import Gateway
    from llmswitch.server.auth import Principal

ADMIN_ROLE = "admin"


def refused(message: str, param: str | None = None) -> PermissionDeniedError:
    """A 403 in the OpenAI error shape, saying why."""
    return PermissionDeniedError(
        message, status_code=403, provider="llmswitch", error_type="permission_error", param=param
    )


@dataclass(frozen=True, slots=True)
class AdminScope:
    """The caller of an admin route: the master key (``team_id`` is ``None``) or the admin of one team."""

    principal: Principal
    team_id: str | None = None

    @property
    def is_master(self) -> bool:
        return self.team_id is None

    def require_master(self, what: str) -> None:
        """Refuse a team admin a route only the master key may use (``what`` names it in the message)."""
        if self.team_id is not None:
            raise refused(f"{what} needs the master key; a team admin's key manages only its own team's keys")

    def team_filter(self, asked: str | None, param: str = "team_id") -> str | None:
        """The team a read is limited to: what the master key asked for (``None``: every team), or the
        team admin's own team, which it may name or leave out; any other team is refused."""
        if self.team_id is None:
            return asked
        if asked is not None and asked != self.team_id:
            raise refused(
                f"this key is an admin of team {self.team_id!r} only; it may not read or change team {asked!r}",
                param=param,
            )
        return self.team_id

    def check_key(self, rec: Any, param: str = "key") -> None:
        """Refuse a team admin a key that is not of its team."""
        if self.team_id is not None and getattr(rec, "team_id", None) != self.team_id:
            raise refused(f"this key is an admin of team {self.team_id!r} only; that key is not of this team", param)


def team_admin_of(gw: Gateway, principal: Principal) -> str | None:
    """The team this principal administers: its key's team, when the key's user is an admin there."""
    rec = principal.record
    team_id, user_id = getattr(rec, "team_id", None), getattr(rec, "user_id", None)
    if principal.is_master or not team_id or not user_id:
        return None
    team = gw.subjects.get("team", team_id)
    if team is None or team.blocked:
        return None
    admins = (m.get("user_id") for m in team.members_with_roles if m.get("role") == ADMIN_ROLE)
    return team_id if user_id in admins else None


def admin_scope(gw: Gateway, request: http.Request) -> AdminScope:
    """Authenticate an admin route's caller: the master key, or a team admin's key (else a 401 or 403)."""
    principal: Principal = gw.keys.authenticate(gw.key_of(request))
    request.state["principal"] = principal
    if principal.is_master:
        return AdminScope(principal)
    team_id = team_admin_of(gw, principal)
    if team_id is None:
        raise refused(
            "this route needs the master key or a team admin's key (a key of a team whose user has role "
            "'admin' in the team's members_with_roles)"
        )
    return AdminScope(principal, team_id)


def scope_key_fields(gw: Gateway, scope: AdminScope, fields: dict[str, Any]) -> None:
    """What a team admin may set on a key of its team: the team stays its own, the user is one of the
    team's members, and the key's spend (what its budget counts) is the master key's to reset."""
    if scope.team_id is None:
        return
    if "team_id" in fields:
        scope.team_filter(fields["team_id"])
    fields["team_id"] = scope.team_id
    if "spend" in fields:
        raise refused("only the master key may set a key's spend", param="spend")
    user_id = fields.get("user_id")
    if user_id is not None:
        team = gw.subjects.get("team", scope.team_id)
        if team is None or all(m.get("user_id") != user_id for m in team.members_with_roles):
            raise refused(f"user {user_id!r} is not a member of team {scope.team_id!r}", param="user_id")
